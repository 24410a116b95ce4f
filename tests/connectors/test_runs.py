"""Connector runs in the background: requested in one transaction with their job, run by the
job engine's claim, one at a time per connection, idempotent when repeated or re-driven."""

import datetime as dt
import json
from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from offboard.accounts.models import Membership
from offboard.accounts.services import deactivate_member
from offboard.cases.models import AccessGrant
from offboard.cases.services import activate_case, update_register_item
from offboard.connectors import runs as connector_runs
from offboard.connectors import services
from offboard.connectors.models import ConnectorRun
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import PermissionDenied, ValidationFailed
from offboard.jobs.worker import JobRunner
from offboard.ledger.models import LedgerEntry
from tests.connectors.peers import ScimServer
from tests.connectors.test_services import connection, grant


@pytest.fixture
def started(case: Any, alice: Actor) -> Any:
    return case if case.state == "active" else activate_case(actor=alice, case=case)


def run_jobs() -> int:
    return JobRunner().run_ready()


def jobs() -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(task_path=connector_runs.TASK).order_by("enqueued_at", "id")
    )


def types(org: Any) -> list[str]:
    return [
        json.loads(bytes(e.body))["type"]
        for e in LedgerEntry.objects.filter(org=org).order_by("index")
    ]


def test_a_requested_run_is_on_record_with_its_job_and_the_worker_revokes_and_reads_back(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    alice, bob = cast["alice"], cast["bob"]
    ann = scim_server.user(f"ann@{domain}")
    team = scim_server.group(f"{domain}-team", [ann])
    scim_server.user(f"ben@{domain}")
    conn = connection(alice, scim_server.url, scim_server.token)
    g1, g2 = grant(bob, started, f"ann@{domain}"), grant(bob, started, f"ben@{domain}")

    run = connector_runs.request_run(actor=bob, case=started, connection=conn, grants=[g1, g2])
    assert (run.state, run.total, run.done, run.grant_ids) == ("queued", 2, 0, [g1.pk, g2.pk])
    assert types(alice.org)[-1] == "connector.run_requested"
    (job,) = jobs()
    assert job.args_kwargs["args"] == [run.pk]

    assert run_jobs() >= 1
    run.refresh_from_db()
    assert run.state == "done" and run.done == 2 and run.attempts == 1 and not run.error
    assert [r["observation"] for r in run.results] == ["absent", "absent"]
    assert [r["outcome"] for r in run.results] == ["revoked", "revoked"]
    assert scim_server.members(team) == []
    for g in (g1, g2):
        g.refresh_from_db()
        assert g.status == "revoked" and g.verification_level == "observed"
    assert types(alice.org)[-4:] == [
        "connector.revoked",
        "connector.verified",
        "connector.revoked",
        "connector.verified",
    ]
    last = json.loads(bytes(LedgerEntry.objects.filter(org=alice.org).order_by("-index")[0].body))
    assert last["actor"]["username"] == "bob"  # the requester, not a system account

    # A duplicate job finds the run finished and does nothing.
    before = LedgerEntry.objects.filter(org=alice.org).count()
    assert connector_runs.execute(run.pk) is None
    assert LedgerEntry.objects.filter(org=alice.org).count() == before


def test_refused_requests_write_nothing(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    alice = cast["alice"]
    scim_server.user(f"cy@{domain}")
    conn = connection(alice, scim_server.url, scim_server.token)
    g = grant(alice, started, f"cy@{domain}")
    keep = grant(alice, started, f"cy2@{domain}")
    update_register_item(
        actor=alice,
        item=keep,
        values={"planned_action": "keep", "keep_reason": "the client keeps its own admin"},
    )
    before = (LedgerEntry.objects.count(), ConnectorRun.objects.count(), len(jobs()))

    with pytest.raises(PermissionDenied):
        connector_runs.request_run(actor=cast["erin"], case=started, connection=conn, grants=[g])
    with pytest.raises(ValidationFailed, match="planned action"):
        connector_runs.request_run(actor=alice, case=started, connection=conn, grants=[keep])
    with pytest.raises(ValidationFailed, match="not on case"):
        connector_runs.request_run(
            actor=alice, case=started, connection=conn, grants=[AccessGrant(pk=g.pk + 1000)]
        )
    with pytest.raises(ValidationFailed, match="at least one"):
        connector_runs.request_run(actor=alice, case=started, connection=conn, grants=[])
    with pytest.raises(ValidationFailed, match="plan_sha256"):
        connector_runs.request_run(
            actor=alice, case=started, connection=conn, grants=[g], plan_sha256="nope"
        )
    assert (LedgerEntry.objects.count(), ConnectorRun.objects.count(), len(jobs())) == before

    connector_runs.request_run(actor=alice, case=started, connection=conn, grants=[g])
    with pytest.raises(ValidationFailed, match="queued; wait for it"):
        connector_runs.request_run(actor=alice, case=started, connection=conn, grants=[g])
    other = grant(alice, started, f"cy3@{domain}")
    services.disable_connection(actor=alice, connection=conn)
    with pytest.raises(ValidationFailed, match="disabled"):
        connector_runs.request_run(actor=alice, case=started, connection=conn, grants=[other])


def test_one_run_at_a_time_per_connection(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    alice = cast["alice"]
    scim_server.user(f"di@{domain}")
    scim_server.user(f"ed@{domain}")
    conn = connection(alice, scim_server.url, scim_server.token)
    first = connector_runs.request_run(
        actor=alice, case=started, connection=conn, grants=[grant(alice, started, f"di@{domain}")]
    )
    second = connector_runs.request_run(
        actor=alice, case=started, connection=conn, grants=[grant(alice, started, f"ed@{domain}")]
    )
    assert connector_runs.claim(first.pk) is not None  # a worker holds the first...
    assert connector_runs.claim(first.pk) is None  # ...and no other worker can take it
    assert connector_runs.execute(second.pk) is None  # the connection is busy
    second.refresh_from_db()
    assert second.state == "queued"
    later = [j for j in jobs() if j.args_kwargs["args"] == [second.pk] and j.run_after]
    assert later, "the busy run is queued again for a few seconds later"

    # The first worker dies: its lease runs out, the sweep starts it again, it finishes.
    ConnectorRun.objects.filter(pk=first.pk).update(
        lease_until=clock.now() - dt.timedelta(seconds=1)
    )
    assert connector_runs.redrive() >= 1
    done = connector_runs.execute(first.pk)
    assert done is not None and done.state == "done" and done.attempts == 2
    assert done.results[0]["observation"] == "absent"
    assert connector_runs.execute(second.pk) is not None
    second.refresh_from_db()
    assert second.state == "done" and second.results[0]["observation"] == "absent"


def test_a_rerun_after_a_crash_is_idempotent(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    alice = cast["alice"]
    fay = scim_server.user(f"fay@{domain}")
    team = scim_server.group(f"{domain}-ops", [fay])
    conn = connection(alice, scim_server.url, scim_server.token)
    g = grant(alice, started, f"fay@{domain}")
    run = connector_runs.request_run(actor=alice, case=started, connection=conn, grants=[g])
    # The first attempt did its writes, then the worker was killed before it finished.
    services.run_revoke(
        actor=alice, case=started, grants=[g], connection=conn, idempotency_key=run.idempotency_key
    )
    ConnectorRun.objects.filter(pk=run.pk).update(
        state="running", attempts=1, lease_until=clock.now() - dt.timedelta(seconds=1)
    )
    done = connector_runs.execute(run.pk)
    assert done is not None and done.state == "done"
    assert {op["status"] for op in done.results[0]["operations"]} == {"already_absent"}
    assert done.results[0]["observation"] == "absent"
    assert scim_server.members(team) == []


def test_a_run_whose_requester_left_fails_in_words_and_changes_nothing(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    alice, bob = cast["alice"], cast["bob"]
    scim_server.user(f"gil@{domain}")
    conn = connection(alice, scim_server.url, scim_server.token)
    g = grant(bob, started, f"gil@{domain}")
    run = connector_runs.request_run(actor=bob, case=started, connection=conn, grants=[g])
    deactivate_member(actor=alice, membership=Membership.objects.get(user=bob.user))
    run_jobs()
    run.refresh_from_db()
    assert run.state == "failed" and "no longer an active member" in run.error
    g.refresh_from_db()
    assert g.status == "active"


def test_a_dead_server_leaves_the_grants_open_and_says_so(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    from tests.smtp import free_port

    alice = cast["alice"]
    conn = connection(alice, f"http://127.0.0.1:{free_port()}/v2", scim_server.token)
    services.update_connection(
        actor=alice, connection=conn, config={"url": conn.config["url"], "attempts": 1}
    )
    g = grant(alice, started, f"hal@{domain}")
    run = connector_runs.request_run(actor=alice, case=started, connection=conn, grants=[g])
    run_jobs()
    run.refresh_from_db()
    assert run.state == "done" and run.done == 1
    assert run.results[0]["outcome"] == "failed" and "network error" in run.results[0]["detail"]
    assert run.results[0]["observation"] is None
    g.refresh_from_db()
    assert g.status == "active" and g.verification_level == ""
