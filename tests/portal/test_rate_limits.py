"""The portal limits requests per IP address and per link (per minute, counted in the
database so that every web process sees the same counts): past either limit it answers 429
with Retry-After and a page that says what happened and what to do."""

import pytest
from django.db import connection
from django.test import Client

from offboard.ledger.models import LedgerEntry
from tests.portal.conftest import UA


@pytest.fixture
def limits(settings):
    settings.OFFBOARD_PORTAL_RATE_PER_IP = 5
    settings.OFFBOARD_PORTAL_RATE_PER_LINK = 8
    return settings


def browser(ip: str) -> Client:
    return Client(HTTP_USER_AGENT=UA, REMOTE_ADDR=ip)


def test_past_the_limit_per_ip_the_portal_answers_429_with_retry_after(limits, token):
    nina = browser("198.51.100.7")
    for _ in range(5):
        assert nina.get(f"/portal/{token}/").status_code == 200

    slowed = nina.get(f"/portal/{token}/")

    assert slowed.status_code == 429
    assert 1 <= int(slowed["Retry-After"]) <= 60
    page = slowed.content.decode()
    assert "Too many requests" in page and "minute" in page
    assert slowed["Cache-Control"] == "no-store"
    assert slowed["Referrer-Policy"] == "no-referrer"
    assert token not in page
    assert browser("198.51.100.8").get(f"/portal/{token}/").status_code == 200  # another address


def test_guessing_links_counts_against_the_address_too(limits, token):
    guesser = browser("203.0.113.66")
    for n in range(5):
        assert guesser.get(f"/portal/not-a-token-{n}/").status_code == 404

    assert guesser.get(f"/portal/{token}/").status_code == 429
    assert guesser.get("/portal/anything/else/at/all").status_code == 429


def test_past_the_limit_per_link_every_address_waits(limits, token):
    for n in range(8):
        assert browser(f"192.0.2.{n}").get(f"/portal/{token}/").status_code == 200

    assert browser("192.0.2.200").get(f"/portal/{token}/").status_code == 429


def test_a_refused_answer_writes_nothing(limits, token):
    nina = browser("198.51.100.9")
    for _ in range(5):
        nina.get(f"/portal/{token}/")
    before = LedgerEntry.objects.count()

    posted = nina.post(f"/portal/{token}/acknowledge/", {"all": "1", "typed_name": "Nina"})

    assert posted.status_code == 429
    assert "was not recorded" in posted.content.decode()
    assert LedgerEntry.objects.count() == before


def test_the_counts_live_in_the_database_for_every_process(limits, token):
    """Another web process's requests are rows like ours: they count here too."""
    from offboard.portal import ratelimit

    ratelimit.hit(f"ip:{'198.51.100.10'}", limit=5)  # as another process would, via the table
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM portal_rate_count")
        assert cursor.fetchone()[0] >= 1
    nina = browser("198.51.100.10")
    for _ in range(4):
        assert nina.get(f"/portal/{token}/").status_code == 200

    assert nina.get(f"/portal/{token}/").status_code == 429


def test_a_limit_of_zero_turns_the_limit_off(settings, token):
    settings.OFFBOARD_PORTAL_RATE_PER_IP = 0
    settings.OFFBOARD_PORTAL_RATE_PER_LINK = 0
    nina = browser("198.51.100.11")
    for _ in range(40):
        assert nina.get(f"/portal/{token}/").status_code == 200
