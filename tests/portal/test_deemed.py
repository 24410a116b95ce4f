"""Reminders and deemed acceptance: only after the deadline, only with enough logged
reminders, citing them."""

import datetime as dt

import pytest
from django.core import mail

from offboard.core.errors import Conflict, PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry
from offboard.portal.models import PortalReminder
from offboard.portal.services import (
    EmailFailed,
    mark_deemed_accepted,
    revoke_portal_link,
    send_reminder,
)
from tests.portal.conftest import move_clock


def delivered(case):
    return list(case.deliverables.filter(status="delivered").order_by("id"))


def test_a_reminder_is_emailed_then_logged_with_the_items_awaited(issued, alice, portal_case):
    mail.outbox.clear()

    reminder = send_reminder(actor=alice, link=issued.link)

    (message,) = mail.outbox
    assert message.subject.startswith("Reminder:") and portal_case.ref in message.subject
    assert issued.url not in message.body  # the token is not kept, so never re-sent
    for d in delivered(portal_case):
        assert d.title in message.body
    event = LedgerEntry.objects.get(type="portal_link.reminder_sent")
    assert reminder.event_index == event.index
    assert event.data["message_id"] == reminder.message_id == message.extra_headers["Message-ID"]
    assert event.data["via"] == "locmem"
    assert {i["id"] for i in event.data["items"]} >= {d.pk for d in delivered(portal_case)}


def test_a_reminder_the_mail_server_refused_is_not_logged(issued, alice, settings):
    from tests.smtp import LocalSMTP

    LocalSMTP().configure(settings, timeout=2)  # nothing listens there

    with pytest.raises(EmailFailed, match="Nothing was recorded"):
        send_reminder(actor=alice, link=issued.link)

    assert not PortalReminder.objects.exists()
    assert not LedgerEntry.objects.filter(type="portal_link.reminder_sent").exists()


def test_no_reminder_through_a_revoked_link_or_by_an_operator(issued, alice, cast):
    with pytest.raises(PermissionDenied):
        send_reminder(actor=cast["oscar"], link=issued.link)
    revoke_portal_link(actor=alice, link=issued.link)
    with pytest.raises(Conflict, match="revoked"):
        send_reminder(actor=alice, link=issued.link)
    assert not PortalReminder.objects.exists()


def test_deemed_acceptance_is_refused_before_the_deadline(issued, bob, alice):
    send_reminder(actor=alice, link=issued.link)
    send_reminder(actor=alice, link=issued.link)

    with pytest.raises(Conflict) as exc:
        mark_deemed_accepted(actor=bob, link=issued.link)

    assert exc.value.code == "deadline_not_passed"
    assert not LedgerEntry.objects.filter(type="portal.deemed_accepted").exists()


def test_deemed_acceptance_is_refused_with_too_few_reminders(
    issued, bob, alice, portal_case, monkeypatch
):
    send_reminder(actor=alice, link=issued.link)
    move_clock(monkeypatch, dt.timedelta(days=15))

    with pytest.raises(Conflict) as exc:
        mark_deemed_accepted(actor=bob, link=issued.link)

    assert exc.value.code == "too_few_reminders"
    assert "at least 2 logged reminders" in exc.value.message
    assert "1 reminder" in exc.value.message
    assert [d.status for d in delivered(portal_case)] == ["delivered", "delivered"]


def test_deemed_acceptance_after_the_deadline_and_two_reminders_cites_them(
    issued, bob, alice, portal_case, monkeypatch
):
    first = send_reminder(actor=alice, link=issued.link)
    second = send_reminder(actor=alice, link=issued.link)
    move_clock(monkeypatch, dt.timedelta(days=15))
    targets = delivered(portal_case)

    marked = mark_deemed_accepted(actor=bob, link=issued.link)

    assert [d.pk for d in marked] == [d.pk for d in targets]
    for d in targets:
        d.refresh_from_db()
        assert d.status == "deemed_accepted" and d.accepted_at is not None
        assert f"#{first.event_index}, #{second.event_index}" in d.acceptance_note
        assert "did not respond by" in d.acceptance_note
    event = LedgerEntry.objects.get(type="portal.deemed_accepted")
    assert event.actor["username"] == "bob"
    assert event.data["reminder_events"] == [first.event_index, second.event_index]
    assert event.data["reminders_required"] == 2
    assert [i["id"] for i in event.data["items"]] == [d.pk for d in targets]
    from offboard.cases.gates import readiness_gates
    from offboard.cases.state import fresh

    gates = {g.code: g for g in readiness_gates(fresh(portal_case))}
    blocked = {o["id"] for o in gates["deliverables.not_accepted"].objects}
    assert not blocked & {d.pk for d in targets}  # deemed acceptance meets the gate


def test_deemed_acceptance_needs_a_manager_or_admin(issued, alice, cast, monkeypatch):
    send_reminder(actor=alice, link=issued.link)
    send_reminder(actor=alice, link=issued.link)
    move_clock(monkeypatch, dt.timedelta(days=15))

    for who in ("oscar", "dave", "erin"):
        with pytest.raises(PermissionDenied, match=r"portal\.deem"):
            mark_deemed_accepted(actor=cast[who], link=issued.link)


def test_only_items_the_reminders_named_can_be_deemed_accepted(
    issued, alice, bob, portal_case, monkeypatch
):
    from offboard.cases.services import update_register_item

    send_reminder(actor=alice, link=issued.link)
    send_reminder(actor=alice, link=issued.link)
    late = portal_case.deliverables.filter(status="pending").get()
    update_register_item(actor=alice, item=late, values={"status": "delivered"})
    move_clock(monkeypatch, dt.timedelta(days=15))

    with pytest.raises(Conflict, match=f"'{late.title}': 0 reminders"):
        mark_deemed_accepted(actor=bob, link=issued.link, deliverable_ids=[late.pk])
    with pytest.raises(ValidationFailed, match="no deliverable 999999"):
        mark_deemed_accepted(actor=bob, link=issued.link, deliverable_ids=[999999])


def test_a_disputed_deliverable_cannot_be_deemed_accepted(
    issued, alice, bob, portal_case, monkeypatch
):
    from offboard.portal.selectors import manifest, manifest_digest
    from offboard.portal.services import dispute_item

    send_reminder(actor=alice, link=issued.link)
    send_reminder(actor=alice, link=issued.link)
    target = delivered(portal_case)[0]
    dispute_item(
        link=issued.link,
        item=f"deliverable:{target.pk}",
        comment="Wrong figures in section 3",
        manifest_sha256=manifest_digest(manifest(portal_case)),
        ip=None,
        user_agent=None,
    )
    move_clock(monkeypatch, dt.timedelta(days=15))

    with pytest.raises(ValidationFailed, match="rejected"):
        mark_deemed_accepted(actor=bob, link=issued.link, deliverable_ids=[target.pk])


def test_a_link_revoked_before_its_deadline_allows_no_deemed_acceptance(
    issued, alice, bob, monkeypatch
):
    send_reminder(actor=alice, link=issued.link)
    send_reminder(actor=alice, link=issued.link)
    revoke_portal_link(actor=alice, link=issued.link)
    move_clock(monkeypatch, dt.timedelta(days=15))

    with pytest.raises(Conflict) as exc:
        mark_deemed_accepted(actor=bob, link=issued.link)
    assert exc.value.code == "link_revoked_early"
