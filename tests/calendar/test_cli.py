"""`offboard calendar feed`: create a member's feed (the URL printed once) or revoke it."""

import json

import pytest
from typer.testing import CliRunner

from offboard.calendar.models import CalendarFeed
from offboard.calendar.selectors import feed_for_token
from offboard.cli import app
from offboard.ledger.models import LedgerEntry


@pytest.fixture(autouse=True)
def _no_ambient_identity(monkeypatch):
    for name in ("OFFBOARD_ORG", "OFFBOARD_USER", "OFFBOARD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def url_in(output: str) -> str:
    return next(w for w in output.split() if w.startswith("https://"))


def test_creating_prints_the_url_once_and_it_opens_the_feed(cast, case):
    result = run(
        "calendar", "feed", "--user", "bob", "--base-url", "https://offboard.acme.example"
    )  # the organization's only admin, alice, acts

    assert result.exit_code == 0, result.output
    url = url_in(result.output)
    assert url.startswith("https://offboard.acme.example/calendar/") and url.endswith(".ics")
    token = url.removesuffix(".ics").rsplit("/", 1)[1]
    feed = feed_for_token(token)
    assert feed is not None and feed.user == cast["bob"].user
    assert "only time the URL is shown" in result.output
    event = LedgerEntry.objects.get(type="calendar_feed.created")
    assert event.actor_user == cast["alice"].user and event.data["username"] == "bob"


def test_a_second_feed_replaces_the_first_and_says_so(cast):
    first = run("calendar", "feed", "--as", "oscar", "--json")
    second = run("calendar", "feed", "--as", "oscar", "--json")

    assert first.exit_code == 0 and second.exit_code == 0, second.output
    one, two = json.loads(first.output), json.loads(second.output)
    assert one["user"] == "oscar" and one["url"].startswith("http://127.0.0.1:8000/calendar/")
    assert two["replaced_feed_ids"] == [one["id"]]
    assert CalendarFeed.objects.filter(revoked_at=None).get().pk == two["id"]
    replaced = run("calendar", "feed", "--as", "oscar")
    assert "The previous feed's URL stopped working." in replaced.output


def test_revoking_stops_the_feed(cast):
    created = json.loads(run("calendar", "feed", "--user", "dave", "--json").output)
    result = run("calendar", "feed", "--user", "dave", "--revoke")

    assert result.exit_code == 0, result.output
    assert "Revoked the calendar feed of 'dave' in 'acme'." in result.output
    assert CalendarFeed.objects.get(pk=created["id"]).revoked_at is not None
    assert LedgerEntry.objects.filter(type="calendar_feed.revoked").count() == 1


def test_refusals_are_one_line_and_exit_1(cast, mallory):
    nothing = run("calendar", "feed", "--user", "dave", "--revoke", "--org", "acme")
    assert nothing.exit_code == 1
    assert nothing.output.strip() == "error: dave has no calendar feed to revoke: none is in use."

    other = run("calendar", "feed", "--as", "bob", "--user", "carol", "--org", "acme")
    assert other.exit_code == 1 and "may not do this (org.manage_members)" in other.output

    stranger = run("calendar", "feed", "--user", "mallory", "--org", "acme")
    assert stranger.exit_code == 1 and "No user 'mallory' in organization 'acme'" in stranger.output

    bad_url = run("calendar", "feed", "--org", "acme", "--base-url", "ftp://x")
    assert bad_url.exit_code == 1
    assert "--base-url: 'ftp://x' is not an http(s) URL" in bad_url.output
    assert not CalendarFeed.objects.exists()
