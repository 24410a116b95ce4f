"""The calendar's cast: Acme's case for Northwind Traders (owned by alice, its steps owned by
the cast by role), alice's feed, and helpers that fetch a feed and read it with an
independent iCalendar parser."""

from typing import Any

import pytest
from django.test import Client

BASE = "https://offboard.acme.example"


def member(actor: Any) -> Any:
    from offboard.accounts.models import Membership

    return Membership.objects.select_related("org", "user").get(org=actor.org, user=actor.user)


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/calendar/") and url.endswith(".ics"), url
    return url[len(BASE) :]


def token_of(url: str) -> str:
    return path_of(url).removeprefix("/calendar/").removesuffix(".ics")


def create_feed(actor: Any, of: Any = None) -> Any:
    from offboard.calendar.services import create_calendar_feed

    return create_calendar_feed(actor=actor, membership=member(of or actor), base_url=BASE)


def fetch(url: str) -> Any:
    return Client().get(path_of(url))


def parse(body: bytes) -> Any:
    """The feed as icalendar reads it (a parser we did not write)."""
    import icalendar

    return icalendar.Calendar.from_ical(body)


def events(body: bytes) -> dict[str, Any]:
    """VEVENTs by UID."""
    return {str(e["UID"]): e for e in parse(body).walk("VEVENT")}


@pytest.fixture
def alice_feed(alice: Any, case: Any) -> Any:
    return create_feed(alice)
