"""Settings → Reminders by email: each member sets their own choices (recorded as an event);
another organization's member sees and changes only their own."""

from typing import Any

from django.test import Client

from offboard.ledger.models import LedgerEntry
from offboard.reminders.models import Preference


def browser(actor: Any) -> Client:
    c = Client()
    c.force_login(actor.user)
    return c


def test_a_member_turns_reminders_on_and_off(cast: dict[str, Any]) -> None:
    web = browser(cast["oscar"])
    page = web.get("/settings/").content.decode()
    assert 'id="reminders"' in page and "Daily digest of my steps" in page
    assert page.count("checked") >= 4  # everything on by default
    response = web.post("/settings/reminders/", {"assignment": "on", "escalation": "on"})
    assert response.status_code == 302 and response["Location"].endswith("#reminders")
    pref = Preference.objects.get(user=cast["oscar"].user)
    assert (pref.assignment, pref.digest, pref.deadline, pref.escalation) == (
        True,
        False,
        False,
        True,
    )
    (event,) = LedgerEntry.objects.filter(type="reminder_preferences.updated")
    assert event.data["receives"] == {
        "assignment": True,
        "digest": False,
        "deadline": False,
        "escalation": True,
    }
    assert event.data["how"] == "settings" and event.actor["username"] == "oscar"
    shown = web.get(response["Location"]).content.decode()
    assert "Your reminder choices were saved." in shown
    assert 'name="digest">' in shown.replace(" checked", "")  # unticked now
    # The same choices again: nothing to record.
    web.post("/settings/reminders/", {"assignment": "on", "escalation": "on"})
    assert LedgerEntry.objects.filter(type="reminder_preferences.updated").count() == 1


def test_another_organizations_member_changes_only_their_own(
    cast: dict[str, Any], mallory: Any
) -> None:
    web = browser(mallory)
    page = web.get("/settings/").content.decode()
    assert "Acme Digital" not in page and "Globex Partners" in page
    web.post("/settings/reminders/", {})
    (pref,) = Preference.objects.all()
    assert pref.user == mallory.user and pref.org == mallory.org
    assert not Preference.objects.filter(org=cast["alice"].org).exists()
    (event,) = LedgerEntry.objects.filter(type="reminder_preferences.updated")
    assert event.org_id == mallory.org.pk


def test_anonymous_visitors_cannot_post_preferences(cast: dict[str, Any]) -> None:
    response = Client().post("/settings/reminders/", {})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Preference.objects.exists()
