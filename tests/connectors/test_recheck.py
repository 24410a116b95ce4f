"""The re-check after closure (connectors/recheck.py) against the real SCIM server: a grant
revoked and read back absent by the connector, its case closed, read again once the
connection's interval has passed — an addendum event on the closed case, the case and the
grant unchanged; access that came back raises the alert (inbox, email, its event) until a
later read says absent; a disabled connection is skipped, a failed read retried next run."""

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from typer.testing import CliRunner

from offboard.accounts.models import Membership
from offboard.cases.models import AccessGrant
from offboard.cases.registers import REGISTERS, item_state
from offboard.cases.services import update_case
from offboard.cases.state import fresh, state_digest
from offboard.connectors import services
from offboard.connectors.base import Account, Observation, ObservationStatus
from offboard.connectors.models import Connection, LinkedAccount
from offboard.connectors.recheck import recheck, record_recheck
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict
from offboard.evidence.models import EvidenceFile
from offboard.jobs import schedule
from offboard.jobs.worker import JobRunner
from offboard.ledger.models import Checkpoint, LedgerEntry
from offboard.reminders.jobs import escalate
from offboard.web.inbox import build_inbox
from tests.connectors.peers import FaultProxy, ScimServer
from tests.connectors.test_services import assert_secret_nowhere, grant
from tests.factories import close_with_approvals, settle_everything
from tests.smtp import LocalSMTP

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DAY = dt.timedelta(days=1)


@pytest.fixture
def mail_server(settings: Any) -> Iterator[LocalSMTP]:
    server = LocalSMTP()
    server.up()
    server.configure(settings)
    try:
        yield server
    finally:
        server.down()


@dataclass
class Closed:
    case: Any
    grant: AccessGrant
    connection: Connection
    user_id: str  # the SCIM user the grant stands for
    group_id: str
    read_at: dt.datetime  # the read that made the grant observed


def closed_case(
    case: Any, cast: dict[str, Actor], scim_server: ScimServer, proxy: FaultProxy, domain: str
) -> Closed:
    """bob's case (alice is the admin): settled, one grant revoked and read back absent by the
    SCIM connector (through the fault proxy), then closed."""
    alice = cast["alice"]
    case = update_case(actor=alice, case=case, owner_id=cast["bob"].user.pk)
    case = settle_everything(case, cast)
    ann = scim_server.user(f"ann@{domain}")
    team = scim_server.group(f"{domain}-team", [ann])
    conn = services.create_connection(
        actor=alice,
        name="Directory",
        kind="scim",
        config={"url": proxy.url, "attempts": 1, "timeout": 5},
        secret=scim_server.token,
    )
    g = grant(alice, case, f"ann@{domain}")
    [run] = services.run_revoke(actor=alice, case=case, grants=[g], connection=conn)
    assert run.observed_absent
    case = close_with_approvals(fresh(case), cast)
    assert case.state == "closed"
    g.refresh_from_db()
    assert g.status == "revoked" and g.verification_level == "observed"
    assert g.verified_at is not None
    return Closed(case, g, conn, ann, team, g.verified_at)


@pytest.fixture
def closed(
    case: Any, cast: dict[str, Actor], scim_server: ScimServer, proxy: FaultProxy, domain: str
) -> Closed:
    return closed_case(case, cast, scim_server, proxy, domain)


def rechecks(case: Any) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(case=case, type="connector.rechecked").order_by("index"))


def reads_of(proxy: FaultProxy) -> int:
    return sum(1 for method, _, _ in proxy.seen if method == "GET")


def member(actor: Actor) -> Membership:
    return Membership.objects.select_related("org", "user").get(user=actor.user, org=actor.org)


def frozen(closed: Closed) -> tuple[Any, ...]:
    """What closure fixed: the case's state digest and row, the grant as registered."""
    case = fresh(closed.case)
    g = AccessGrant.objects.get(pk=closed.grant.pk)
    return (
        state_digest(case),
        case.state,
        case.updated_at,
        item_state(REGISTERS["access_grants"], g),
        g.updated_at,
        g.source_detail,
        sorted(g.evidence.values_list("sha256", flat=True)),
    )


def bring_back(scim_server: ScimServer, closed: Closed) -> None:
    """Someone re-activates the user and puts it back in its group."""
    scim_server.call(
        "PATCH",
        f"/Users/{closed.user_id}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": True}]},
    )
    scim_server.call(
        "PATCH",
        f"/Groups/{closed.group_id}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": closed.user_id}]}],
        },
    )


def take_away(scim_server: ScimServer, closed: Closed) -> None:
    scim_server.call(
        "PATCH",
        f"/Groups/{closed.group_id}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": f'members[value eq "{closed.user_id}"]'}],
        },
    )
    scim_server.call(
        "PATCH",
        f"/Users/{closed.user_id}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )


# --- absent: an addendum, nothing else ------------------------------------------------------------


def test_after_the_interval_the_read_is_appended_to_the_closed_case_which_does_not_change(
    closed: Closed, cast: dict[str, Actor], proxy: FaultProxy, mail_server: LocalSMTP
) -> None:
    before = frozen(closed)
    with clock.pinned(closed.read_at + dt.timedelta(days=29)) as timeline:
        reads = reads_of(proxy)
        summary = recheck()  # 29 days after the read: not due, nothing read
        assert (summary.read, summary.not_due) == (0, 1)
        assert reads_of(proxy) == reads and rechecks(closed.case) == []

        timeline.advance(days=2)  # 31 days
        summary = recheck()
        assert (summary.read, summary.absent, summary.present) == (1, 1, 0)
        assert reads_of(proxy) > reads
        [event] = rechecks(closed.case)

    assert frozen(closed) == before  # closed is final: the case and the grant as they were
    data = event.data
    assert data["observation"] == "absent" and data["after_closure"] is True
    assert data["connection_id"] == str(closed.connection.public_id)
    assert data["connector"]["kind"] == "scim" and data["connector"]["version"]
    assert data["grant"]["id"] == closed.grant.pk
    assert data["account"]["external_id"] == closed.user_id
    assert data["operation"] == "recheck" and data["scheduled"] is True
    assert data["job"] == "connector re-check" and data["alert"] is None
    assert data["interval_days"] == 30
    assert data["previous_observation"] == "absent"
    assert dt.datetime.fromisoformat(data["previous_read_at"]) == closed.read_at
    assert data["request_id"].startswith("req-")  # the provider's id, through the proxy
    assert len(data["request_sha256"]) == len(data["response_sha256"]) == 64
    assert "inactive" in data["detail"] and "in no group" in data["detail"]
    assert data["started_at"] and data["ended_at"]
    # The raw read is an evidence file the event names.
    evidence = EvidenceFile.objects.get(org=closed.case.org, sha256=data["evidence_sha256"])
    assert event.files == [evidence.sha256]
    # In the name of the member whose read it repeats (alice ran the revoke), by the system.
    assert (event.actor["username"], event.actor["auth"]) == ("alice", "system")
    # Absent: no alert, nothing in anyone's inbox, no email.
    assert LinkedAccount.objects.get(grant=closed.grant).present_since is None
    for who in ("alice", "bob"):
        assert build_inbox(member(cast[who])).section("access_back").entries == []
    assert mail_server.received == []


def test_the_next_recheck_is_due_an_interval_after_the_last_read(
    closed: Closed, cast: dict[str, Actor], proxy: FaultProxy
) -> None:
    services.update_connection(
        actor=cast["alice"], connection=closed.connection, recheck_interval_days=10
    )
    with clock.pinned(closed.read_at + dt.timedelta(days=11)) as timeline:
        assert recheck().read == 1
        timeline.advance(days=9)  # 9 days after that read
        assert recheck().read == 0 and len(rechecks(closed.case)) == 1
        timeline.advance(days=1, minutes=1)  # 10 days after it
        assert recheck().read == 1
    first, second = rechecks(closed.case)
    assert dt.datetime.fromisoformat(second.data["previous_read_at"]) == first.at


# --- present: the alert ------------------------------------------------------------------------------


def test_access_that_came_back_alerts_the_owner_and_admins_until_a_read_says_absent(
    closed: Closed,
    cast: dict[str, Actor],
    scim_server: ScimServer,
    proxy: FaultProxy,
    mail_server: LocalSMTP,
    settings: Any,
    caplog: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    case, bob = closed.case, cast["bob"]
    before = frozen(closed)
    bring_back(scim_server, closed)
    link = LinkedAccount.objects.get(grant=closed.grant)
    anchor = f"/cases/{case.ref}/#access_grants-{closed.grant.pk}"
    with clock.pinned(closed.read_at + dt.timedelta(days=31)) as timeline:
        summary = recheck()
        assert (summary.read, summary.present) == (1, 1)
        assert summary.back[0]["case"] == case.ref
        [event] = rechecks(case)
        assert event.data["observation"] == "present" and event.data["alert"] == "raised"
        assert "active" in event.data["detail"]

        # At once: the inbox of the owner (bob) and of the admin (alice), not of others.
        for who in ("bob", "alice"):
            [entry] = build_inbox(member(cast[who])).section("access_back").entries
            assert entry.href == anchor and entry.case_ref == case.ref
            assert "read present again in Directory" in entry.detail
        assert build_inbox(member(cast["oscar"])).section("access_back").entries == []
        web = Client()
        web.force_login(bob.user)
        page = web.get("/").content.decode()
        assert "Access back after closure" in page and f'href="{anchor}"' in page

        # ... and an email to each, through the reminders' outbox, on the record.
        assert sorted(m.rcpt_tos[0] for m in mail_server.received) == [
            "alice@acme.example",
            "bob@acme.example",
        ]
        mail = mail_server.received[0]
        assert "Alert: access came back after closure on " + case.ref in mail.message["Subject"]
        assert "ACCESS BACK AFTER THE CASE CLOSED" in mail.text()
        assert anchor in mail.text()
        sent = LedgerEntry.objects.filter(case=case, type="reminder.escalation_sent")
        assert sorted(e.data["to"]["username"] for e in sent) == ["alice", "bob"]
        for e in sent:
            [item] = e.data["items"]
            assert item["key"] == f"access_back:{link.pk}" and item["reason"] == "access_back"
            assert item["type"] == "access_back"

        # Read again at the next run (not after 30 days): still present, no second email, and
        # the escalation round finds it told already.
        timeline.advance(days=1)
        assert recheck().present == 1
        assert rechecks(case)[-1].data["alert"] == "standing"
        escalate(clock.now())
        assert len(mail_server.received) == 2

        # Someone takes it away again: the next read clears the alert.
        take_away(scim_server, closed)
        timeline.advance(days=1)
        summary = recheck()
        assert (summary.absent, len(summary.cleared)) == (1, 1)
        assert rechecks(case)[-1].data["alert"] == "cleared"
        for who in ("bob", "alice"):
            assert build_inbox(member(cast[who])).section("access_back").entries == []
        # ... and from then on every interval again.
        timeline.advance(days=29)
        assert recheck().read == 0
        timeline.advance(days=1, minutes=1)
        assert recheck().read == 1

    assert frozen(closed) == before  # all along, the closed case and its grant stayed put
    assert len(mail_server.received) == 2
    assert_secret_nowhere(case.org, scim_server.token, caplog, settings.MEDIA_ROOT)
    for received in mail_server.received:
        assert scim_server.token.encode() not in received.raw


def test_an_alert_whose_email_is_off_still_stands_in_the_inbox(
    closed: Closed, cast: dict[str, Actor], scim_server: ScimServer, mail_server: LocalSMTP
) -> None:
    from offboard.reminders.models import CHANNELS
    from offboard.reminders.services import update_preferences

    everything_but = {c: c != "escalation" for c in CHANNELS}
    update_preferences(actor=cast["bob"], membership=member(cast["bob"]), values=everything_but)
    bring_back(scim_server, closed)
    with clock.pinned(closed.read_at + dt.timedelta(days=31)):
        recheck()
        assert [m.rcpt_tos for m in mail_server.received] == [["alice@acme.example"]]
        assert len(build_inbox(member(cast["bob"])).section("access_back").entries) == 1


# --- skipped, failed, by hand, scheduled -----------------------------------------------------------


def test_a_disabled_connection_is_skipped_and_the_run_says_so(
    closed: Closed, cast: dict[str, Actor], proxy: FaultProxy
) -> None:
    services.disable_connection(actor=cast["alice"], connection=closed.connection)
    with clock.pinned(closed.read_at + dt.timedelta(days=31)):
        reads = reads_of(proxy)
        summary = recheck()
    assert summary.read == 0 and reads_of(proxy) == reads and rechecks(closed.case) == []
    [skipped] = summary.skipped
    assert skipped["connection"] == "Directory" and "disabled" in skipped["reason"]
    assert skipped["accounts"] == 1 and skipped["cases"] == [closed.case.ref]
    assert LinkedAccount.objects.get(grant=closed.grant).rechecked_at is None


def test_a_failed_read_is_recorded_indeterminate_and_tried_again_at_the_next_run(
    closed: Closed, proxy: FaultProxy, mail_server: LocalSMTP
) -> None:
    before = frozen(closed)
    with clock.pinned(closed.read_at + dt.timedelta(days=31)) as timeline:
        proxy.inject("status", 503, times=5)  # the system is down (attempts=1: no retry here)
        summary = recheck()
        assert (summary.read, summary.indeterminate) == (1, 1)
        [event] = rechecks(closed.case)
        assert event.data["observation"] == "indeterminate"
        assert event.data["next_due_at"] == "next run" and event.data["alert"] is None
        proxy.faults.clear()

        timeline.advance(days=1)  # the next run, not 30 days later
        summary = recheck()
        assert (summary.read, summary.absent) == (1, 1)
        assert rechecks(closed.case)[-1].data["previous_observation"] == "indeterminate"
    assert frozen(closed) == before
    assert mail_server.received == []  # a failed read is no alert


def test_the_daily_job_does_it_and_the_cli_does_it_by_hand(
    closed: Closed, cast: dict[str, Actor], monkeypatch: Any
) -> None:
    from django_tasks_db.models import DBTaskResult

    with clock.pinned(closed.read_at + dt.timedelta(days=31)) as timeline:
        assert "connector_recheck" in schedule.tick()
        JobRunner().run_ready()
        [job] = DBTaskResult.objects.filter(
            task_path="offboard.connectors.recheck.recheck_connectors"
        )
        assert job.status == "SUCCESSFUL"
        assert job.return_value["read"] == job.return_value["absent"] == 1
        assert "connector_recheck" not in schedule.tick(timeline.advance(hours=23))

        # By hand, with --now: read whatever the interval says, in the caller's name.
        monkeypatch.setenv("OFFBOARD_ORG", "acme")
        monkeypatch.setenv("OFFBOARD_USER", "oscar")
        from offboard.cli import app

        result = CliRunner().invoke(app, ["connector", "recheck", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["not_due"] == 1
        result = CliRunner().invoke(app, ["connector", "recheck", "--now", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["absent"] == 1
        text = CliRunner().invoke(app, ["connector", "recheck", "--now"])
        assert "Re-checked 1 account(s): 1 absent" in text.output
    by_hand = rechecks(closed.case)[-1]
    assert (by_hand.actor["username"], by_hand.actor["auth"]) == ("oscar", "cli")
    assert by_hand.data["scheduled"] is False and "job" not in by_hand.data
    assert len(rechecks(closed.case)) == 3


def test_an_open_case_is_not_rechecked(
    case: Any, cast: dict[str, Actor], scim_server: ScimServer, proxy: FaultProxy, domain: str
) -> None:
    alice = cast["alice"]
    from offboard.cases.services import activate_case

    started = case if case.state == "active" else activate_case(actor=alice, case=case)
    scim_server.user(f"ann@{domain}")
    conn = services.create_connection(
        actor=alice,
        name="Directory",
        kind="scim",
        config={"url": proxy.url},
        secret=scim_server.token,
    )
    g = grant(alice, started, f"ann@{domain}")
    [run] = services.run_revoke(actor=alice, case=started, grants=[g], connection=conn)
    assert run.observed_absent and LinkedAccount.objects.filter(grant=g).exists()
    with clock.pinned(clock.now() + dt.timedelta(days=60)):
        assert recheck(everything=True).read == 0
    # Recording a re-check is for closed cases only: an open one is read with run_verify.
    link = LinkedAccount.objects.get(grant=g)
    connector = services.open_connector(conn)
    seen = Observation(account=Account.from_dict(link.account), status=ObservationStatus.ABSENT)
    with pytest.raises(Conflict, match="closed cases only"):
        record_recheck(actor=alice, link=link, connector=connector, seen=seen, scheduled=False)
    connector.close()
    assert rechecks(started) == []
    assert LinkedAccount.objects.get(grant=g).rechecked_at is None


# --- the evidence pack ---------------------------------------------------------------------------


def test_a_pack_exported_after_the_recheck_verifies_and_lists_it_after_the_receipt(
    closed: Closed, cast: dict[str, Actor], scim_server: ScimServer, tmp_path: Path
) -> None:
    from offboard.notifications.receipt_email import closure_receipt_file
    from offboard.packs.export import iter_pack, start_export
    from offboard.packs.verify import verify_pack

    case = closed.case
    closure = Checkpoint.objects.get(case=case, reason="case_closed")
    receipt = closure_receipt_file(case, closure).encode()
    bring_back(scim_server, closed)
    with clock.pinned(closed.read_at + dt.timedelta(days=31)):
        assert recheck().present == 1
        plan = start_export(actor=cast["erin"], case=case)
        path = tmp_path / "pack.zip"
        path.write_bytes(b"".join(iter_pack(plan)))
    report = verify_pack(path, receipt=receipt)
    assert report.outcome == "verified", [c.as_dict() for c in report.checks if not c.ok]
    after = [row["type"] for row in report.after_receipt]
    assert "connector.rechecked" in after and "reminder.escalation_sent" in after
    assert after[-1] == "case.exported"
    # The pack's case.json is still the state the case was closed on.
    assert (
        plan.state_digest
        == LedgerEntry.objects.get(case=case, type="case.closed").data["state_digest"]
    )
