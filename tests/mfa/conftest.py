"""Second factors' fixtures: a pinned clock on a TOTP step boundary (codes are computed by
pyotp from the seed, as an authenticator app would), and members with factors enrolled."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from django.test import Client
from django.utils import timezone

from offboard.core import clock

PASSWORD = "correct horse 1"


@pytest.fixture
def timeline(cast: Any) -> Iterator[clock.Timeline]:
    """Now, pinned to the start of the next 30-second step (after the cast was made)."""
    now = int(timezone.now().timestamp())
    start = dt.datetime.fromtimestamp((now // 30 + 2) * 30, tz=dt.UTC)
    with clock.pinned(start) as t:
        yield t


def code_at(secret: str, at: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def enrol_totp(actor: Any, timeline: clock.Timeline) -> tuple[str, list[str]]:
    """Set up an authenticator app for `actor` (confirmed with the current code), then move
    to the next step so the sign-in's code is a fresh one. Returns (seed, recovery codes)."""
    from offboard.mfa.services import confirm_totp, start_totp_enrolment

    secret = start_totp_enrolment(actor=actor).secret
    enrolled = confirm_totp(actor=actor, code=code_at(secret, timeline.at))
    timeline.advance(seconds=30)
    return secret, enrolled.recovery_codes


def password_step(c: Client, username: str = "alice", **extra: str) -> Any:
    return c.post("/login/", {"username": username, "password": PASSWORD, **extra})


def signed_in(c: Client) -> bool:
    return "_auth_user_id" in c.session
