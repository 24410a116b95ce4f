"""The dashboard's inbox (`offboard.web.inbox`): what waits for one person, each entry linking
to the place on the workspace where it is dealt with; "You're clear" only when nothing does.

`everything_for_alice` gives alice (admin, owner of every case) one of each kind of item:
a closing case waiting for approvals, a client dispute and a new acknowledgement, overdue and
due-soon steps, a closure receipt the mail server refused, access still live after the end."""

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from offboard.accounts.models import Membership
from offboard.web.inbox import build_inbox
from tests.factories import close_with_approvals, settle_everything
from tests.portal.conftest import BASE, deliver_work, upload_files
from tests.smtp import free_port

KINDS = ("approvals", "disputes", "answers", "overdue", "due_soon", "receipts", "access")


def member(actor: Any) -> Membership:
    return Membership.objects.select_related("org", "user").get(user=actor.user, org=actor.org)


def hrefs(inbox: Any, key: str) -> list[str]:
    return [e.href for e in inbox.section(key).entries]


def another_case(case: Any, cast: dict[str, Any]) -> Any:
    from offboard.cases.services import open_case

    return open_case(
        actor=cast["alice"],
        client=case.client,
        contracts=list(case.contracts.all()),
        trigger="non_renewal",
        trigger_date=case.trigger_date,
        owner_id=cast["alice"].user.pk,
        playbook_version=case.playbook_version,
        allow_duplicate=True,
    )


def closing_case(case: Any, cast: dict[str, Any]) -> Any:
    """Another of alice's cases, settled and in closing: it waits for two approvals."""
    from offboard.cases.services import enter_closing

    settled = settle_everything(another_case(case, cast), cast)
    return enter_closing(actor=cast["alice"], case=settled)


def failed_receipt_case(case: Any, cast: dict[str, Any], settings: Any) -> Any:
    """Another of alice's cases, closed; its receipt refused by a mail server that is down."""
    from offboard.notifications import receipts

    closed = close_with_approvals(settle_everything(another_case(case, cast), cast), cast)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    assert receipts.process_pending()["failed"] == 1
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return closed


def client_answers(case: Any, cast: dict[str, Any]) -> dict[str, Any]:
    """Work delivered on `case`, a portal link sent to Nina; she disputes a deliverable, then
    acknowledges a handover item — both after alice last touched the case."""
    from offboard.portal.selectors import manifest, manifest_digest
    from offboard.portal.services import acknowledge_items, dispute_item, issue_portal_link

    work = deliver_work(case, cast, upload_files(cast["alice"]))
    nina = case.client.contacts.get(email="nina@northwind.example")
    link = issue_portal_link(actor=cast["alice"], case=work, contact=nina, base_url=BASE).link
    report = work.deliverables.order_by("id").first()
    handover = work.handover_items.order_by("id").first()
    seen = {"ip": "127.0.0.1", "user_agent": "test"}
    dispute_item(
        link=link,
        item=f"deliverable:{report.pk}",
        comment="The March figures are missing from the report.",
        manifest_sha256=manifest_digest(manifest(work)),
        **seen,
    )
    acknowledge_items(
        link=link,
        items=[f"handover_item:{handover.pk}"],
        typed_name="Nina North",
        confirmed=True,
        manifest_sha256=manifest_digest(manifest(work)),
        **seen,
    )
    return {"report": report, "handover": handover, "link": link}


def inbox_day(case: Any, user: Any) -> dt.date:
    """A day after the case's end date on which the user has a step overdue and one due within
    the week."""
    from offboard.cases.models import Step

    open_steps = Step.objects.filter(case=case, owner=user, status__in=["pending", "in_progress"])
    dues = sorted(set(open_steps.values_list("due_date", flat=True)))
    for day in (case.effective_end_date + dt.timedelta(days=n) for n in range(1, 120)):
        if any(d < day for d in dues) and any(day <= d <= day + dt.timedelta(days=7) for d in dues):
            return day
    raise AssertionError(f"no day with both overdue and due-soon steps: {dues}")


def everything_for_alice(case: Any, cast: dict[str, Any], settings: Any) -> dict[str, Any]:
    found = client_answers(case, cast)
    found["closing"] = closing_case(case, cast)
    found["closed"] = failed_receipt_case(case, cast, settings)
    found["today"] = inbox_day(case, cast["alice"].user)
    return found


@pytest.fixture
def busy(case, cast, settings):
    return everything_for_alice(case, cast, settings)


# --- each kind, with its link --------------------------------------------------------------------


def test_alice_sees_each_kind_of_item_linking_to_where_it_is_dealt_with(case, cast, busy):
    inbox = build_inbox(member(cast["alice"]), today=busy["today"])
    assert not inbox.clear and [s.key for s in inbox.waiting] == list(KINDS)
    ref = case.ref
    assert hrefs(inbox, "approvals") == [f"/cases/{busy['closing'].ref}/#approvals"]
    [dispute] = inbox.section("disputes").entries
    assert dispute.href == f"/cases/{ref}/#deliverables-{busy['report'].pk}"
    assert "by Nina North" in dispute.detail and "March figures are missing" in dispute.detail
    [answer] = inbox.section("answers").entries
    assert answer.href == f"/cases/{ref}/#portal"
    assert answer.what == "Nina North acknowledged 1 item"
    assert busy["handover"].name in answer.detail
    assert hrefs(inbox, "receipts") == [f"/cases/{busy['closed'].ref}/#receipt"]
    [receipt] = inbox.section("receipts").entries
    assert "nina@northwind.example" in receipt.what and "did not answer" in receipt.detail
    grants = case.access_grants.filter(status="active", planned_action__in=["revoke", "transfer"])
    assert sorted(hrefs(inbox, "access")) == sorted(
        f"/cases/{ref}/#access_grants-{g.pk}" for g in grants
    )
    steps = case.steps.filter(owner=cast["alice"].user, status__in=["pending", "in_progress"])
    today = busy["today"]
    overdue = [s for s in steps if s.due_date < today]
    soon = [s for s in steps if today <= s.due_date <= today + dt.timedelta(days=7)]
    assert sorted(hrefs(inbox, "overdue")) == sorted(f"/cases/{ref}/#step-{s.pk}" for s in overdue)
    assert sorted(hrefs(inbox, "due_soon")) == sorted(f"/cases/{ref}/#step-{s.pk}" for s in soon)


def test_the_dashboard_never_says_clear_while_anything_waits(case, cast, busy):
    """The reported bug: "Nothing at risk / You're clear" beside a dispute, an overdue step and
    an approval waiting for this user."""
    from unittest import mock

    from django.utils import timezone

    web = Client()
    web.force_login(cast["alice"].user)
    noon = timezone.make_aware(dt.datetime.combine(busy["today"], dt.time(12)), dt.UTC)
    with mock.patch("offboard.core.clock.now", return_value=noon):
        body = web.get("/").content.decode()
    assert "You’re clear" not in body and "Nothing at risk" not in body
    for title in ("Approvals waiting for you", "Disputed by the client", "Your overdue steps"):
        assert title in body
    assert f'href="/cases/{busy["closing"].ref}/#approvals"' in body
    assert f'href="/cases/{case.ref}/#deliverables-{busy["report"].pk}"' in body


def test_someone_with_nothing_waiting_is_clear_and_another_organization_sees_nothing(
    case, cast, busy, mallory
):
    erin = build_inbox(member(cast["erin"]), today=busy["today"])  # the auditor owns nothing
    assert erin.clear and erin.total == 0
    outsider = build_inbox(member(mallory), today=busy["today"])  # an admin, of Globex
    assert outsider.clear
    web = Client()
    web.force_login(mallory.user)
    body = web.get("/").content.decode()
    assert "You’re clear" in body and case.ref not in body and "Northwind" not in body


# --- the rules of each list ----------------------------------------------------------------------


def test_approvals_wait_for_each_eligible_approver_until_enough_are_in(case, cast):
    from offboard.cases.services import approve_case
    from offboard.cases.state import fresh, state_digest

    closing = closing_case(case, cast)
    waiting = {n: hrefs(build_inbox(member(cast[n])), "approvals") for n in cast}
    mine = [f"/cases/{closing.ref}/#approvals"]
    # The policy takes managers and admins; finance approves elsewhere, auditors never.
    assert waiting == {
        "alice": mine,
        "bob": mine,
        "carol": mine,
        "dave": [],
        "erin": [],
        "oscar": [],
    }
    digest = state_digest(fresh(closing))
    approve_case(actor=cast["bob"], case=closing, decision="approved", state_digest_seen=digest)
    assert hrefs(build_inbox(member(cast["bob"])), "approvals") == []  # bob has decided
    assert hrefs(build_inbox(member(cast["carol"])), "approvals") == mine  # one of two is in
    approve_case(actor=cast["carol"], case=closing, decision="approved", state_digest_seen=digest)
    assert hrefs(build_inbox(member(cast["alice"])), "approvals") == []  # enough: alice closes


def test_a_rejected_closure_waits_for_changes_not_approvals(case, cast):
    from offboard.cases.services import approve_case
    from offboard.cases.state import fresh, state_digest

    closing = closing_case(case, cast)
    approve_case(
        actor=cast["bob"],
        case=closing,
        decision="rejected",
        state_digest_seen=state_digest(fresh(closing)),
        comment="The settlement is not paid",
    )
    assert hrefs(build_inbox(member(cast["carol"])), "approvals") == []


def test_a_dispute_stays_until_resolved_and_reaches_the_items_owner_too(case, cast):
    from offboard.cases.services import update_register_item

    answers = client_answers(case, cast)
    report = answers["report"]
    update_register_item(
        actor=cast["alice"], item=report, values={"owner_id": cast["oscar"].user.pk}
    )
    anchor = f"/cases/{case.ref}/#deliverables-{report.pk}"
    assert hrefs(build_inbox(member(cast["alice"])), "disputes") == [anchor]  # her case
    assert hrefs(build_inbox(member(cast["oscar"])), "disputes") == [anchor]  # his item
    assert hrefs(build_inbox(member(cast["bob"])), "disputes") == []
    update_register_item(actor=cast["oscar"], item=report, values={"status": "delivered"})
    assert hrefs(build_inbox(member(cast["alice"])), "disputes") == []


def test_an_answer_is_new_until_the_owner_next_acts_on_the_case(case, cast):
    from offboard.cases.services import mark_step_not_applicable

    client_answers(case, cast)
    assert len(build_inbox(member(cast["alice"])).section("answers").entries) == 1
    step = case.steps.filter(status="pending").order_by("position").first()
    mark_step_not_applicable(actor=cast["bob"], step=step, reason="Done by the client")
    assert len(build_inbox(member(cast["alice"])).section("answers").entries) == 1  # bob acted
    step = case.steps.filter(status="pending").order_by("position").first()
    mark_step_not_applicable(actor=cast["alice"], step=step, reason="Done by the client")
    assert build_inbox(member(cast["alice"])).section("answers").entries == []


def test_only_failed_receipts_of_cases_i_own_or_closed_are_listed(case, cast, settings):
    closed = failed_receipt_case(case, cast, settings)
    assert hrefs(build_inbox(member(cast["alice"])), "receipts") == [
        f"/cases/{closed.ref}/#receipt"
    ]
    assert hrefs(build_inbox(member(cast["bob"])), "receipts") == []  # bob approved, no more

    from offboard.notifications import receipts
    from offboard.notifications.services import retry_closure_receipt

    retry_closure_receipt(actor=cast["alice"], case=closed)
    receipts.process_pending()  # the mail server (locmem) accepts it now
    assert hrefs(build_inbox(member(cast["alice"])), "receipts") == []


def test_live_access_is_listed_for_the_case_owner_and_the_grants_owner_unless_waived(case, cast):
    from django.utils import timezone

    from offboard.cases.services import grant_waiver, update_register_item

    after_end = case.effective_end_date + dt.timedelta(days=3)
    grants = list(
        case.access_grants.filter(status="active", planned_action__in=["revoke", "transfer"])
    )
    assert len(grants) >= 2
    first, waived = grants[0], grants[1]
    update_register_item(
        actor=cast["alice"], item=first, values={"owner_id": cast["oscar"].user.pk}
    )
    grant_waiver(
        actor=cast["bob"],
        case=case,
        target_type="access_grant",
        target_id=waived.pk,
        justification="The client keeps our read-only seat for the audit",
        expires_at=timezone.now() + dt.timedelta(days=400),
    )
    alices = hrefs(build_inbox(member(cast["alice"]), today=after_end), "access")
    oscars = hrefs(build_inbox(member(cast["oscar"]), today=after_end), "access")
    assert f"/cases/{case.ref}/#access_grants-{first.pk}" in alices
    assert oscars == [f"/cases/{case.ref}/#access_grants-{first.pk}"]
    assert f"#access_grants-{waived.pk}" not in " ".join(alices)
    before_end = case.effective_end_date
    assert hrefs(build_inbox(member(cast["alice"]), today=before_end), "access") == []


# --- cost ------------------------------------------------------------------------------------------


def test_the_inbox_reads_a_fixed_number_of_queries_however_much_waits(
    case, cast, settings, django_assert_max_num_queries
):
    alice = member(cast["alice"])
    day = everything_for_alice(case, cast, settings)["today"]
    with django_assert_max_num_queries(10) as one_of_each:
        build_inbox(alice, today=day)
    closing_case(case, cast)  # more of every kind
    client_answers(another_case(case, cast), cast)
    failed_receipt_case(case, cast, settings)
    with django_assert_max_num_queries(10) as more:
        inbox = build_inbox(alice, today=day)
    assert len(inbox.section("approvals").entries) == 2
    assert len(inbox.section("disputes").entries) == 2
    assert len(inbox.section("receipts").entries) == 2
    assert len(more.captured_queries) == len(one_of_each.captured_queries)
