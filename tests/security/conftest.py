"""Helpers for the sign-in, session and password-reset tests: a browser-like client that signs
in through the login page, and the organization's events of one type."""

from typing import Any

import pytest
from django.test import Client

from offboard.ledger.models import LedgerEntry
from tests.smtp import smtp  # noqa: F401  (the real SMTP server fixture)

PASSWORD = "correct horse 1"  # tests/conftest.py's cast
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def browser(user_agent: str = CHROME_LINUX, ip: str = "203.0.113.7") -> Client:
    return Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)


def sign_in(c: Client, username: str, password: str = PASSWORD) -> Any:
    return c.post("/login/", {"username": username, "password": password})


def events(org: Any, type: str) -> list[dict[str, Any]]:
    import json

    rows = LedgerEntry.objects.filter(org=org, type=type).order_by("index")
    return [json.loads(bytes(e.body)) for e in rows]


@pytest.fixture
def throttled(settings: Any) -> None:
    """django-axes on, as in production (tests/conftest.py turns it off by default)."""
    settings.AXES_ENABLED = True
