"""Assignment emails (queued with the opening, sent after commit), deadline reminders and
escalations, read from a real SMTP server; each recorded on its case, none sent twice."""

import datetime as dt
from typing import Any

from django.db import transaction

from offboard.cases.models import AccessGrant
from offboard.core import clock
from offboard.reminders.jobs import (
    escalate,
    run_due,
    send_assignments,
    send_deadline_reminders,
)
from offboard.reminders.models import Notice, PeriodicRun
from tests.reminders.conftest import at, events, on, open_exit, to
from tests.smtp import LocalSMTP


def test_opening_a_case_queues_the_assignment_emails_and_sends_them_after_commit(
    smtp: LocalSMTP, cast: dict[str, Any], playbooks: Any, client_contract: Any
) -> None:
    with on(0), transaction.atomic():
        case = open_exit(cast, playbooks, client_contract)
        assert smtp.received == []  # nothing sent inside the opening's transaction
    queued = Notice.objects.filter(kind="assignment", state="queued")
    # alice opened it: she is not told of her own steps; bob, oscar and dave are.
    assert sorted(n.user.username for n in queued) == ["bob", "dave", "oscar"]
    with on(0, hour=10):
        assert send_assignments()["sent"] == 3
        assert send_assignments()["sent"] == 0  # sent once
    (oscar,) = to(smtp.received, "oscar")
    assert oscar.message["Subject"].startswith(
        f"[Acme Digital] 11 steps assigned to you on {case.ref}"
    )
    assert "Deliver outstanding work" in oscar.text() or "deliver" in oscar.text().lower()
    assert oscar.message["Reply-To"] == "alice@acme.example"  # replies reach the case owner
    told = events(case, "reminder.assignment_sent")
    assert sorted(e.data["to"]["username"] for e in told) == ["bob", "dave", "oscar"]
    assert len(next(e for e in told if e.data["to"]["username"] == "oscar").data["items"]) == 11


def test_a_draft_tells_nobody_until_it_is_activated(
    smtp: LocalSMTP, cast: dict[str, Any], playbooks: Any, client_contract: Any
) -> None:
    from offboard.cases.services import activate_case

    with on(0):
        case = open_exit(cast, playbooks, client_contract, draft=True)
        assert not Notice.objects.exists()
        activate_case(actor=cast["bob"], case=case)
        send_assignments()
    # bob activated it: alice, oscar and dave are told, bob is not.
    assert sorted(m.rcpt_tos[0].split("@")[0] for m in smtp.received) == ["alice", "dave", "oscar"]


def test_deadline_reminders_go_to_the_case_owner_once_per_lead(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    Notice.objects.all().delete()  # the assignment emails are another test's
    # The end date is T+30: reminders 7 days and 1 day before it.
    with on(22) as now:
        assert send_deadline_reminders(now)["sent"] == 0
    with on(23) as now:
        assert send_deadline_reminders(now)["sent"] == 1
        assert send_deadline_reminders(now)["sent"] == 0
    with on(24) as now:
        assert send_deadline_reminders(now)["sent"] == 0  # within the same lead
    with on(29) as now:
        assert send_deadline_reminders(now)["sent"] == 1
    first, second = smtp.received
    assert first.rcpt_tos == ["alice@acme.example"]
    assert "effective end date on 31 Mar 2027 (in 7 days)" in first.message["Subject"]
    assert "(in 1 day)" in second.message["Subject"]
    told = events(exit_case, "reminder.deadline_sent")
    assert [e.data["items"][0]["key"] for e in told] == [
        f"case:{exit_case.pk}:effective_end_date:7",
        f"case:{exit_case.pk}:effective_end_date:1",
    ]


def test_an_overdue_step_goes_to_the_owner_then_to_the_managers(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    Notice.objects.all().delete()
    bob_step = exit_case.steps.get(owner=cast["bob"].user)  # due T+5
    with on(7) as now:  # 2 days late: not yet
        assert escalate(now)["sent"] == 1  # alice's own step due T+2 is 5 days late
    with on(8) as now:  # bob's step is 3 days late: to alice, the case owner
        assert escalate(now)["sent"] == 1
    owner_mails = to(smtp.received, "alice")
    assert len(owner_mails) == 2
    assert bob_step.title in owner_mails[1].text()
    assert "owned by bob" in owner_mails[1].text()
    assert owner_mails[1].message["Subject"].startswith("[Acme Digital] Escalation: 1 item needs")
    with on(9) as now:  # alice's step T+2 is 7 days late: to the managers, bob and carol
        escalate(now)
    assert len(to(smtp.received, "carol")) == 1
    assert "escalated to the managers" in to(smtp.received, "carol")[0].text().lower()
    with on(9, hour=12) as now:
        assert escalate(now)["sent"] == 0  # each item once per person and level
    reasons = [
        (e.data["to"]["username"], e.data["items"][0]["key"])
        for e in events(exit_case, "reminder.escalation_sent")
    ]
    assert ("carol", f"step:{exit_case.steps.get(key='confirm_notice').pk}:managers") in reasons


def test_a_playbook_step_sets_its_own_escalation_delays(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    Notice.objects.all().delete()
    exit_case.steps.exclude(owner=cast["bob"].user).update(status="done")
    bob_step = exit_case.steps.get(owner=cast["bob"].user)  # due T+5
    bob_step.escalate_owner_days, bob_step.escalate_managers_days = 1, 2
    bob_step.save(update_fields=["escalate_owner_days", "escalate_managers_days"])
    with on(5) as now:  # due today: not late
        assert escalate(now)["sent"] == 0
    with on(6) as now:  # a day late: its playbook says tell the owner now (the default: 3)
        assert escalate(now)["sent"] == 1
    assert len(to(smtp.received, "alice")) == 1
    with on(7) as now:  # two days late: the managers (the default: 7)
        escalate(now)
    assert len(to(smtp.received, "carol")) == 1


def test_access_live_after_the_end_date_goes_to_the_owner_and_admins_at_once(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    Notice.objects.all().delete()
    exit_case.steps.update(status="done")  # only the access is late
    grant = exit_case.access_grants.filter(
        status=AccessGrant.Status.ACTIVE, planned_action__in=("revoke", "transfer")
    ).first()
    assert grant is not None
    exit_case.access_grants.exclude(pk=grant.pk).update(status="revoked")
    with on(31) as now:  # the end date T+30 has passed
        assert escalate(now)["sent"] == 1  # alice: owner and the only admin
    (mail,) = smtp.received
    assert "ACCESS STILL LIVE AFTER THE END DATE" in mail.text()
    assert "Access still live after the end date" in mail.html()
    (event,) = events(exit_case, "reminder.escalation_sent")
    assert event.data["items"][0]["key"] == f"access:{grant.pk}"


def test_the_worker_runs_each_job_once_per_period(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any], settings: Any
) -> None:
    settings.OFFBOARD_DIGEST_HOUR = 7
    with on(4, hour=6) as now:
        done = run_due(now)
        assert "digest" not in done  # before the hour
        assert done["assignment"]["sent"] == 3
    with on(4, hour=7) as now:
        assert run_due(now)["digest"]["sent"] == 3
    with on(4, hour=8) as now:
        assert "digest" not in run_due(now)  # done for today, whichever worker did it
    assert PeriodicRun.objects.get(name="digest").period == at(4).date().isoformat()
    with clock.pinned(at(5, 7) + dt.timedelta(minutes=1)) as t:
        assert run_due(t.at)["digest"]["sent"] == 3
