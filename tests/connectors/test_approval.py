"""A connection whose runs need a manager's approval: the run waits, touches nothing, and goes
only when a manager other than the requester approves it; a decline says why. Services, web
and API."""

from typing import Any

import pytest
from django.test import Client

from offboard.connectors import runs as connector_runs
from offboard.connectors import services
from offboard.connectors.models import ConnectorRun
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, PermissionDenied, ValidationFailed
from offboard.jobs.worker import JobRunner
from offboard.ledger.models import LedgerEntry
from tests.connectors.peers import ScimServer
from tests.connectors.test_runs import jobs, types
from tests.connectors.test_services import grant


@pytest.fixture
def started(case: Any, alice: Actor) -> Any:
    from offboard.cases.services import activate_case

    return case if case.state == "active" else activate_case(actor=alice, case=case)


def _held(alice: Actor, scim_server: ScimServer) -> Any:
    return services.create_connection(
        actor=alice,
        name="Guarded",
        kind="scim",
        config={"url": scim_server.url},
        secret=scim_server.token,
        requires_approval=True,
    )


def test_a_held_run_waits_and_goes_only_on_another_managers_approval(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    alice, bob, carol, oscar = cast["alice"], cast["bob"], cast["carol"], cast["oscar"]
    ann = scim_server.user(f"ann@{domain}")
    team = scim_server.group(f"{domain}-team", [ann])
    conn = _held(alice, scim_server)
    g = grant(oscar, started, f"ann@{domain}")

    run = connector_runs.request_run(actor=bob, case=started, connection=conn, grants=[g])
    assert run.state == "awaiting_approval" and jobs() == []
    assert connector_runs.execute(run.pk) is None  # a stray job does nothing
    assert scim_server.members(team) == [ann]

    with pytest.raises(PermissionDenied, match="another manager"):
        connector_runs.approve_run(actor=bob, run=run)  # not one's own
    with pytest.raises(PermissionDenied):
        connector_runs.approve_run(actor=oscar, run=run)  # operators may not approve
    with pytest.raises(ValidationFailed, match="why"):
        connector_runs.decline_run(actor=carol, run=run, reason="  ")
    assert ConnectorRun.objects.get(pk=run.pk).state == "awaiting_approval"

    approved = connector_runs.approve_run(actor=carol, run=run)
    assert approved.state == "queued" and approved.decided_by.user == carol.user
    assert types(alice.org)[-1] == "connector.run_approved"
    with pytest.raises(Conflict):
        connector_runs.approve_run(actor=alice, run=run)
    JobRunner().run_ready()
    run.refresh_from_db()
    assert run.state == "done" and run.results[0]["observation"] == "absent"
    assert scim_server.members(team) == []


def test_a_declined_run_changes_nothing_and_says_why(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    alice, oscar = cast["alice"], cast["oscar"]
    ben = scim_server.user(f"ben@{domain}")
    conn = _held(alice, scim_server)
    g = grant(oscar, started, f"ben@{domain}")
    run = connector_runs.request_run(actor=oscar, case=started, connection=conn, grants=[g])
    declined = connector_runs.decline_run(
        actor=alice, run=run, reason="The client asked us to keep Ben until Friday."
    )
    assert declined.state == "failed" and "keep Ben until Friday" in declined.error
    assert types(alice.org)[-1] == "connector.run_declined"
    assert scim_server.call("GET", f"/Users/{ben}")["active"] is True
    g.refresh_from_db()
    assert g.status == "active"
    # Declined, the grants may be asked for again.
    again = connector_runs.request_run(actor=oscar, case=started, connection=conn, grants=[g])
    assert again.state == "awaiting_approval"


def test_approval_from_the_run_page_and_the_api(
    cast: dict[str, Actor], started: Any, scim_server: ScimServer, domain: str
) -> None:
    from tests.api.conftest import Api, token_for

    alice, bob, oscar = cast["alice"], cast["bob"], cast["oscar"]
    scim_server.user(f"cy@{domain}")
    scim_server.user(f"di@{domain}")
    conn = _held(alice, scim_server)
    g1, g2 = grant(oscar, started, f"cy@{domain}"), grant(oscar, started, f"di@{domain}")
    run = connector_runs.request_run(actor=oscar, case=started, connection=conn, grants=[g1])
    page = f"/cases/{started.ref}/connectors/runs/{run.public_id}/"

    asker = Client()
    asker.force_login(oscar.user)
    html = asker.get(page).content.decode()
    assert "Waiting for a manager’s approval" in html and "Approve the run" not in html
    assert "hx-trigger" not in html  # nothing to refresh until someone decides
    assert asker.post(page + "approve").status_code == 403

    manager = Client()
    manager.force_login(bob.user)
    assert "Approve the run" in manager.get(page).content.decode()
    before = LedgerEntry.objects.count()
    assert manager.post(page + "approve").status_code == 302
    assert LedgerEntry.objects.count() == before + 1
    assert ConnectorRun.objects.get(pk=run.pk).state == "queued"
    assert manager.post(page + "approve").status_code == 422  # decided already

    other = connector_runs.request_run(actor=oscar, case=started, connection=conn, grants=[g2])
    base = f"/cases/{started.ref}/connector-runs/{other.public_id}"
    api = Api(token_for(bob))
    assert Api(token_for(oscar)).post(base + "/approve").status_code == 403
    empty = api.post(base + "/decline", {"reason": ""})
    assert empty.status_code == 422
    declined = api.post(base + "/decline", {"reason": "Wrong account."})
    assert declined.status_code == 200 and declined.json()["state"] == "failed"
    listed = api.get("/connections").json()["items"]
    assert listed[0]["requires_approval"] is True
