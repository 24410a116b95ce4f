"""The client portal on a schedule: `portal_due` reminds a contact before their link's
deadline (once per window) and, after it, marks deemed accepted what they were reminded of."""

import datetime as dt
from typing import Any

from django.core import mail

from offboard.core import clock
from offboard.ledger.models import LedgerEntry
from offboard.portal.models import PortalReminder
from offboard.reminders.jobs import portal_due
from tests.portal.conftest import files, issued, nina, portal_case

__all__ = ["files", "issued", "nina", "portal_case"]


def test_reminders_before_the_deadline_then_deemed_acceptance(
    issued: Any, portal_case: Any, monkeypatch: Any, settings: Any
) -> None:
    link = issued.link
    mail.outbox.clear()

    def at(moment: dt.datetime) -> dt.datetime:
        monkeypatch.setattr(clock, "now", lambda: moment)
        return moment

    assert portal_due(at(link.created_at + dt.timedelta(hours=12)))["reminders"] == 0
    first = at(link.respond_by - dt.timedelta(days=7) + dt.timedelta(hours=1))
    assert portal_due(first)["reminders"] == 1
    assert portal_due(first + dt.timedelta(hours=1))["reminders"] == 0  # once per window
    second = at(link.respond_by - dt.timedelta(days=2) + dt.timedelta(hours=1))
    assert portal_due(second)["reminders"] == 1
    assert PortalReminder.objects.filter(link=link).count() == 2
    assert len(mail.outbox) == 2 and mail.outbox[0].to == ["Nina North <nina@northwind.example>"]
    reminder = LedgerEntry.objects.filter(type="portal_link.reminder_sent").first()
    assert reminder.actor["auth"] == "system" and reminder.actor["username"] == "alice"

    after = at(link.respond_by + dt.timedelta(hours=1))
    # By default silence is not acceptance: staff decide that (decision 0008).
    assert portal_due(after)["deemed"] == 0
    assert not LedgerEntry.objects.filter(type="portal.deemed_accepted").exists()
    settings.OFFBOARD_PORTAL_AUTO_DEEM = True  # an organization whose contracts say so
    assert portal_due(after)["deemed"] == 2  # the two delivered deliverables
    assert portal_case.deliverables.filter(status="deemed_accepted").count() == 2
    (deemed,) = LedgerEntry.objects.filter(type="portal.deemed_accepted")
    assert deemed.actor["auth"] == "system"
    assert portal_due(after + dt.timedelta(hours=1))["deemed"] == 0
