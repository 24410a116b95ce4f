"""Settings → Calendar feed: create (the address shown once, in a copy field), replace,
revoke, and what the card says."""

import re

import pytest
from django.test import Client

from offboard.calendar.models import CalendarFeed
from offboard.ledger.models import LedgerEntry


def logged_in(actor):
    c = Client()
    c.force_login(actor.user)
    return c


@pytest.fixture
def web(cast):
    return logged_in(cast["alice"])


def shown_url(body: str) -> str:
    found = re.search(
        r'id="new-feed-url" class="mono token-out" type="text" readonly value="([^"]+)"', body
    )
    assert found, "no feed address on the page"
    return found[1]


def card(body: str) -> str:
    return body.split('<section class="card" id="calendar"', 1)[1].split("</section>", 1)[0]


def test_the_card_explains_the_feed_and_offers_to_create_one(web):
    body = web.get("/settings/").content.decode()

    assert '<a href="#calendar">Calendar feed</a>' in body
    section = card(body)
    assert "Your calendar feed" in section and "No calendar feed." in section
    assert "each step you own" in section and "data-return deadline" in section
    assert "Only a hash is stored" in section
    assert 'action="/settings/calendar/"' in section and "Create calendar feed" in section
    assert "/settings/calendar/revoke" not in section


def test_creating_shows_the_address_once_and_it_works(web, cast, case):
    response = web.post("/settings/calendar/")
    body = response.content.decode()

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    url = shown_url(body)
    assert url.startswith("http://testserver/calendar/") and url.endswith(".ics")
    assert "it is shown once and cannot be recovered" in body
    feed = Client().get(url.removeprefix("http://testserver"))
    assert feed.status_code == 200 and b"BEGIN:VCALENDAR" in feed.content
    again = web.get("/settings/").content.decode()
    assert url not in again and 'id="new-feed-url"' not in again
    section = card(again)
    assert '<span class="badge active">active</span>' in section
    assert "Last read by a calendar app" in section
    assert "/settings/calendar/revoke" in section and "New address" in section
    event = LedgerEntry.objects.get(type="calendar_feed.created")
    assert event.data["username"] == "alice" and event.actor["auth"] == "session"


def test_a_new_address_replaces_the_old_one(web):
    first = shown_url(web.post("/settings/calendar/").content.decode())
    second = shown_url(web.post("/settings/calendar/").content.decode())

    assert first != second
    assert Client().get(first.removeprefix("http://testserver")).status_code == 404
    assert Client().get(second.removeprefix("http://testserver")).status_code == 200
    assert CalendarFeed.objects.filter(revoked_at=None).count() == 1


def test_revoking_stops_the_feed_and_the_card_says_there_is_none(web):
    url = shown_url(web.post("/settings/calendar/").content.decode())
    response = web.post("/settings/calendar/revoke")

    assert response.status_code == 302 and response["Location"].endswith("/settings/#calendar")
    assert Client().get(url.removeprefix("http://testserver")).status_code == 404
    assert "No calendar feed." in card(web.get("/settings/").content.decode())
    assert LedgerEntry.objects.filter(type="calendar_feed.revoked").count() == 1


def test_revoking_twice_says_why_and_writes_nothing(web):
    web.post("/settings/calendar/")
    web.post("/settings/calendar/revoke")
    before = LedgerEntry.objects.count()
    response = web.post("/settings/calendar/revoke")

    assert response.status_code == 409
    assert "alice has no calendar feed to revoke" in card(response.content.decode())
    assert LedgerEntry.objects.count() == before


def test_every_role_has_its_own_feed(cast):
    erin = logged_in(cast["erin"])  # an auditor: owns no work, but may subscribe all the same
    response = erin.post("/settings/calendar/")
    assert response.status_code == 200
    assert CalendarFeed.objects.get(revoked_at=None).user == cast["erin"].user


def test_the_address_uses_the_configured_base_url(web, settings):
    settings.OFFBOARD_BASE_URL = "https://offboard.acme.example"
    url = shown_url(web.post("/settings/calendar/").content.decode())
    assert url.startswith("https://offboard.acme.example/calendar/")


def test_the_actions_are_posts_for_members_only(web, cast):
    assert web.get("/settings/calendar/").status_code == 405
    assert web.get("/settings/calendar/revoke").status_code == 405
    anonymous = Client().post("/settings/calendar/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert not CalendarFeed.objects.exists()
