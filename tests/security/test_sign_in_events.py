"""Every sign-in, failed sign-in and sign-out is in the member's organization's log, exactly
once per attempt, never with a password; failures cannot flood the log."""

import json
import logging

from django.test import Client

from offboard.accounts.signin import complete_sign_in
from offboard.ledger.models import LedgerEntry
from offboard.security.models import MemberSession
from offboard.security.selectors import failed_sign_ins_this_hour
from offboard.security.services import FAILED_SIGN_IN_EVENTS_PER_HOUR
from tests.security.conftest import CHROME_LINUX, PASSWORD, browser, events, sign_in

SIGN_IN_TYPES = (
    "member.signed_in",
    "member.sign_in_failed",
    "member.signed_out",
    "member.sign_in_failures_capped",
)


def _no_password_anywhere(*secrets: str) -> None:
    for entry in LedgerEntry.objects.all():
        body = bytes(entry.body).decode()
        for secret in secrets:
            assert secret not in body, entry.type


def test_a_sign_in_through_the_login_page_is_recorded_once(throttled, cast, org):
    c = browser()
    assert sign_in(c, "alice").status_code == 302
    [event] = events(org, "member.signed_in")
    assert event["data"]["username"] == "alice"
    assert event["data"]["method"] == "password" and event["data"]["second_factor"] is None
    assert event["data"]["session"]["device"] == "Chrome on Linux"
    assert event["actor"]["ip"] == "203.0.113.7"
    assert event["actor"]["user_agent"] == CHROME_LINUX
    assert event["actor"]["auth"] == "password" and event["actor"]["username"] == "alice"
    _no_password_anywhere(PASSWORD)


def test_complete_sign_in_tells_the_method_and_second_factor(rf, cast, org):
    from django.contrib.sessions.backends.db import SessionStore

    request = rf.post("/login/", REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT=CHROME_LINUX)
    request.session = SessionStore()
    complete_sign_in(
        request,
        cast["bob"].user,
        method="sso",
        second_factor="sso_mfa",
        details={"issuer": "https://id.example"},
    )
    [event] = events(org, "member.signed_in")
    assert event["data"]["method"] == "sso" and event["data"]["second_factor"] == "sso_mfa"
    assert event["data"]["details"] == {"issuer": "https://id.example"}
    assert event["actor"]["auth"] == "sso" and event["actor"]["ip"] == "198.51.100.4"
    session = MemberSession.objects.get(user=cast["bob"].user)
    assert session.method == "sso" and session.ip == "198.51.100.4"


def test_a_wrong_password_is_recorded_once_without_the_password(throttled, cast, org):
    c = browser()
    response = sign_in(c, "alice", "hunter2-not-it")
    assert response.status_code == 200
    [event] = events(org, "member.sign_in_failed")
    assert event["data"] == {
        "user_id": cast["alice"].user.pk,
        "username": "alice",
        "failures_this_hour": 1,
    }
    assert event["actor"]["role"] == "visitor" and event["actor"]["id"] is None
    assert event["actor"]["ip"] == "203.0.113.7"
    assert LedgerEntry.objects.get(type="member.sign_in_failed").actor_user is None
    _no_password_anywhere("hunter2-not-it")
    assert events(org, "member.signed_in") == []


def test_a_locked_out_attempt_is_recorded_once_too(throttled, cast, org):
    c = browser()
    for _ in range(5):
        sign_in(c, "alice", "wrong-one")
    assert sign_in(c, "alice", PASSWORD).status_code == 429  # locked: even the right password
    assert len(events(org, "member.sign_in_failed")) == 6
    assert events(org, "member.signed_in") == []


def test_an_unknown_username_is_in_no_log_and_its_warning_holds_no_secret(
    throttled, cast, org, other_org, caplog
):
    before = LedgerEntry.objects.count()
    with caplog.at_level(logging.WARNING, logger="offboard.security.services"):
        assert sign_in(browser(), "correct horse 1", "nobody-knows").status_code == 200
    assert LedgerEntry.objects.count() == before
    [line] = [r.getMessage() for r in caplog.records if "unknown username" in r.getMessage()]
    assert "203.0.113.7" in line
    assert "nobody-knows" not in line and "correct horse 1" not in line


def test_signing_out_is_recorded_and_ends_the_session(cast, org):
    c = browser()
    sign_in(c, "carol")
    assert c.post("/logout/").status_code == 302
    [event] = events(org, "member.signed_out")
    assert event["data"]["username"] == "carol" and event["data"]["session"]["device"]
    session = MemberSession.objects.get(user=cast["carol"].user)
    assert session.ended_at is not None and session.end_reason == "signed_out"


def test_failures_stop_being_recorded_one_by_one_past_the_hourly_cap(
    throttled, settings, cast, org
):
    settings.AXES_ENABLED = False  # the lockout would stop the flood before the cap
    c = browser()
    for _ in range(FAILED_SIGN_IN_EVENTS_PER_HOUR + 5):
        sign_in(c, "dave", "guess")
    assert len(events(org, "member.sign_in_failed")) == FAILED_SIGN_IN_EVENTS_PER_HOUR
    [capped] = events(org, "member.sign_in_failures_capped")
    assert capped["data"]["limit_per_hour"] == FAILED_SIGN_IN_EVENTS_PER_HOUR
    assert failed_sign_ins_this_hour(cast["dave"].user) == FAILED_SIGN_IN_EVENTS_PER_HOUR + 5
    # another member is still recorded
    sign_in(c, "erin", "guess")
    assert [e["data"]["username"] for e in events(org, "member.sign_in_failed")][-1] == "erin"


def test_sign_in_events_go_to_the_members_own_organization(cast, org, other_org, mallory):
    sign_in(browser(), "mallory")
    assert events(org, "member.signed_in") == []
    [event] = events(other_org, "member.signed_in")
    assert event["org"] == "globex"


def test_every_sign_in_event_is_free_of_passwords(throttled, cast, org):
    c = browser()
    sign_in(c, "oscar", "first-wrong-password")
    sign_in(c, "oscar")
    c.post("/logout/")
    types = [e.type for e in LedgerEntry.objects.filter(org=org).order_by("index")]
    assert [t for t in types if t in SIGN_IN_TYPES] == [
        "member.sign_in_failed",
        "member.signed_in",
        "member.signed_out",
    ]
    for entry in LedgerEntry.objects.filter(type__in=SIGN_IN_TYPES):
        body = json.loads(bytes(entry.body))
        flat = json.dumps(body)
        assert "first-wrong-password" not in flat and PASSWORD not in flat
        assert "password" not in body["data"]


def test_a_plain_client_login_is_a_password_sign_in(cast, org):
    c = Client()
    c.force_login(cast["erin"].user)
    [event] = events(org, "member.signed_in")
    assert event["data"]["method"] == "password"
    assert MemberSession.objects.filter(user=cast["erin"].user, ended_at=None).count() == 1
