"""The daily digest, read from a real SMTP server: one email per person with their overdue and
due-soon steps, nothing to whoever has nothing due, never twice a day, an event on each case it
covers, and a one-click unsubscribe link that works without login (GET asks, POST stops)."""

from typing import Any

from django.test import Client

from offboard.ledger.models import LedgerEntry
from offboard.reminders.jobs import send_daily_digests
from offboard.reminders.models import Notice, Preference
from offboard.reminders.services import update_preferences
from tests.reminders.conftest import events, on, open_exit, to, unsubscribe_path
from tests.smtp import LocalSMTP


def test_each_person_gets_one_digest_of_their_overdue_and_due_soon_steps(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    with on(4) as now:
        counts = send_daily_digests(now)
    assert counts["sent"] == 3 and counts["failed"] == 0
    # alice: two overdue; bob: one due tomorrow; oscar: one in 3 days; dave: nothing yet.
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == [
        "alice@acme.example",
        "bob@acme.example",
        "oscar@acme.example",
    ]
    (alice,) = to(smtp.received, "alice")
    assert alice.message["Subject"] == "[Acme Digital] Your steps for 5 Mar 2027: 2 overdue"
    text = alice.text()
    print(text)
    assert "OVERDUE" in text and "DUE IN THE NEXT" not in text
    assert "Confirm" in text or "confirm" in text
    assert "due 3 Mar 2027, 2 days ago" in text and "due 4 Mar 2027, 1 day ago" in text
    assert f"/cases/{exit_case.ref}/#step-" in text
    assert "<li" in alice.html() and exit_case.ref in alice.html()
    (bob,) = to(smtp.received, "bob")
    assert "due 6 Mar 2027, in 1 day" in bob.text() and "OVERDUE" not in bob.text()
    assert bob.message["Subject"] == "[Acme Digital] Your steps for 5 Mar 2027: 1 due soon"
    # RFC 8058 one-click unsubscribe, and marked as automatic.
    assert alice.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert alice.message["Auto-Submitted"] == "auto-generated"
    # "We told them": one event on the case per person, naming them and the steps.
    recorded = events(exit_case, "reminder.digest_sent")
    assert len(recorded) == 3
    told = {e.data["to"]["username"]: e.data for e in recorded}
    assert [i["type"] for i in told["alice"]["items"]] == ["step", "step"]
    assert told["alice"]["message_id"] == alice.message["Message-ID"].strip()
    assert told["alice"]["recipients"] == ["Alice <alice@acme.example>"]
    assert recorded[0].actor["auth"] == "system"


def test_never_twice_a_day_and_again_the_next_day(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    with on(4) as now:
        send_daily_digests(now)
    with on(4, hour=15) as now:
        assert send_daily_digests(now) == {
            "queued": 0,
            "sent": 0,
            "dropped": 0,
            "failed": 0,
            "skipped": 0,
        }
    assert len(smtp.received) == 3
    with on(5) as now:
        assert send_daily_digests(now)["sent"] == 3
    assert len(smtp.received) == 6


def test_nothing_is_sent_when_nothing_is_due(
    smtp: LocalSMTP, cast: dict[str, Any], playbooks: Any, client_contract: Any
) -> None:
    with on(-30):
        open_exit(cast, playbooks, client_contract)
    with on(-20) as now:  # the first step is due in 22 days: beyond the 7-day horizon
        counts = send_daily_digests(now)
    assert counts["queued"] == counts["sent"] == 0
    assert smtp.received == [] and smtp.data_attempts == 0
    assert not Notice.objects.filter(kind="digest").exists()


def test_a_digest_covering_two_cases_records_one_event_on_each(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any], playbooks: Any, client_contract: Any
) -> None:
    with on(0, hour=10):
        second = open_exit(cast, playbooks, client_contract, allow_duplicate=True)
    with on(4) as now:
        send_daily_digests(now)
    (alice,) = to(smtp.received, "alice")
    assert exit_case.ref in alice.text() and second.ref in alice.text()
    assert "on 2 cases" in alice.text()
    first_event = events(exit_case, "reminder.digest_sent")
    second_event = events(second, "reminder.digest_sent")
    mine = [e for e in first_event + second_event if e.data["to"]["username"] == "alice"]
    assert len(mine) == 2
    assert {e.data["message_id"] for e in mine} == {alice.message["Message-ID"].strip()}
    assert all(e.data["cases_in_message"] == 2 for e in mine)


def test_preferences_are_respected(smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]) -> None:
    from offboard.accounts.models import Membership

    bob = cast["bob"]
    update_preferences(
        actor=bob,
        membership=Membership.objects.get(user=bob.user),
        values={"assignment": True, "deadline": True, "escalation": True},  # digest off
    )
    with on(4) as now:
        send_daily_digests(now)
    assert to(smtp.received, "bob") == []
    assert len(smtp.received) == 2
    assert Preference.objects.get(user=bob.user).digest is False


def test_the_unsubscribe_link_asks_on_get_and_stops_on_post(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    with on(4) as now:
        send_daily_digests(now)
    (bob,) = to(smtp.received, "bob")
    path = unsubscribe_path(bob)
    assert path in bob.text() and path in bob.html()
    browser = Client(enforce_csrf_checks=True)  # no login, and no CSRF token
    with on(4, hour=9):
        page = browser.get(path)
        assert page.status_code == 200
        assert b"Stop these emails?" in page.content
        assert b"bob@acme.example" in page.content and b"daily digest" in page.content
        assert page["Cache-Control"] == "private, no-store"
        # Following the link changed nothing: a link scanner cannot unsubscribe anyone.
        assert not Preference.objects.filter(user=cast["bob"].user).exists()
        done = browser.post(path)
        assert done.status_code == 200 and b"no more of these emails" in done.content
    pref = Preference.objects.get(user=cast["bob"].user)
    assert (pref.digest, pref.assignment, pref.deadline, pref.escalation) == (
        False,
        True,
        True,
        True,
    )
    (event,) = LedgerEntry.objects.filter(type="reminder_preferences.updated")
    assert event.actor["auth"] == "unsubscribe_link"
    assert event.data["old"] == {"digest": True}
    with on(5) as now:
        send_daily_digests(now)
    assert len(to(smtp.received, "bob")) == 1  # no more digests for bob
    assert len(to(smtp.received, "alice")) == 2
    again = browser.get(path)
    assert b"already receive none of these" in again.content


def test_the_one_click_post_of_a_mail_client_unsubscribes(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    with on(4) as now:
        send_daily_digests(now)
    (oscar,) = to(smtp.received, "oscar")
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(
        unsubscribe_path(oscar),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert Preference.objects.get(user=cast["oscar"].user).digest is False


def test_a_tampered_unsubscribe_link_changes_nothing(
    smtp: LocalSMTP, exit_case: Any, cast: dict[str, Any]
) -> None:
    with on(4) as now:
        send_daily_digests(now)
    path = unsubscribe_path(to(smtp.received, "bob")[0])
    forged = path.replace(":", "x:", 1)
    browser = Client()
    assert browser.get(forged).status_code == 404
    assert browser.post(forged).status_code == 404
    assert browser.post("/reminders/unsubscribe/WzEsMiwiZGlnZXN0Il0:abc/").status_code == 404
    assert not Preference.objects.exists()
