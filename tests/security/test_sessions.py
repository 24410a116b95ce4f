"""Settings → Security: a member sees their sessions and signs other ones out; an admin sees
and ends everyone's in the organization; deactivation and a password change end sessions."""

import datetime as dt
import hashlib

from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from offboard.accounts.services import deactivate_member
from offboard.core import clock
from offboard.security.models import MemberSession
from tests.security.conftest import PASSWORD, SAFARI_IPHONE, browser, events, sign_in


def _signed_in(username: str, **how) -> Client:
    c = browser(**how)
    assert sign_in(c, username).status_code == 302
    return c


def _is_signed_in(c: Client) -> bool:
    """True if the browser still gets the page; False if it is sent to log in."""
    response = c.get("/settings/security/")
    if response.status_code == 302:
        assert response["Location"].startswith("/login/"), response["Location"]
        return False
    assert response.status_code == 200
    return True


def test_the_page_lists_my_sessions_with_device_ip_and_this_session(cast):
    laptop = _signed_in("bob")
    _signed_in("bob", user_agent=SAFARI_IPHONE, ip="198.51.100.20")
    body = laptop.get("/settings/security/").content.decode()
    assert "Chrome on Linux" in body and "203.0.113.7" in body
    assert "Safari on iPhone" in body and "198.51.100.20" in body
    assert body.count("this session") == 1
    assert "Sign out everywhere else" in body
    assert "Everyone&#x27;s sessions" not in body and "Everyone's sessions" not in body


def test_the_settings_page_links_to_security(cast):
    c = _signed_in("bob")
    assert 'href="/settings/security/"' in c.get("/settings/").content.decode()


def test_signing_out_another_session_really_signs_that_browser_out(cast, org):
    laptop = _signed_in("bob")
    phone = _signed_in("bob", user_agent=SAFARI_IPHONE, ip="198.51.100.20")
    phone_session = MemberSession.objects.get(user=cast["bob"].user, ip="198.51.100.20")
    response = laptop.post(f"/settings/security/sessions/{phone_session.pk}/end")
    assert response.status_code == 302
    assert not _is_signed_in(phone)
    assert _is_signed_in(laptop)
    phone_session.refresh_from_db()
    assert (
        phone_session.end_reason == "ended_by_member" and phone_session.ended_by == cast["bob"].user
    )
    [event] = events(org, "member.session_ended")
    assert event["data"]["username"] == "bob" and event["actor"]["username"] == "bob"
    assert event["data"]["sessions"] == [
        {"id": phone_session.pk, "device": "Safari on iPhone", "ip": "198.51.100.20"}
    ]
    assert event["data"]["end_reason"] == "ended_by_member"


def test_sign_out_everywhere_else_keeps_this_one(cast, org):
    here = _signed_in("carol")
    others = [_signed_in("carol", ip=f"198.51.100.{n}") for n in (1, 2)]
    here.post("/settings/security/sessions/end-others")
    assert _is_signed_in(here)
    assert not any(_is_signed_in(c) for c in others)
    [event] = events(org, "member.session_ended")
    assert len(event["data"]["sessions"]) == 2


def test_an_admin_sees_and_ends_a_members_session(cast, org):
    admin = _signed_in("alice")
    member = _signed_in("oscar", ip="192.0.2.50")
    body = admin.get("/settings/security/").content.decode()
    assert "Everyone" in body and "oscar" in body and "192.0.2.50" in body
    session = MemberSession.objects.get(user=cast["oscar"].user)
    assert admin.post(f"/settings/security/sessions/{session.pk}/end").status_code == 302
    assert not _is_signed_in(member)
    [event] = events(org, "member.session_ended")
    assert event["actor"]["username"] == "alice" and event["data"]["username"] == "oscar"
    assert event["data"]["end_reason"] == "ended_by_admin"


def test_a_member_cannot_see_or_end_a_colleagues_session(cast):
    member = _signed_in("oscar")
    colleague = _signed_in("bob", ip="192.0.2.99")
    body = member.get("/settings/security/").content.decode()
    assert "192.0.2.99" not in body
    session = MemberSession.objects.get(user=cast["bob"].user)
    assert member.post(f"/settings/security/sessions/{session.pk}/end").status_code == 404
    assert _is_signed_in(colleague)


def test_another_organizations_session_is_not_found(cast, mallory):
    admin = _signed_in("alice")
    theirs = _signed_in("mallory", ip="192.0.2.66")
    session = MemberSession.objects.get(user=mallory.user)
    assert "192.0.2.66" not in admin.get("/settings/security/").content.decode()
    assert admin.post(f"/settings/security/sessions/{session.pk}/end").status_code == 404
    assert _is_signed_in(theirs)


def test_deactivation_ends_all_their_sessions(cast, org, alice):
    sessions = [_signed_in("oscar", ip=f"192.0.2.{n}") for n in (1, 2)]
    from offboard.accounts.selectors import get_member

    deactivate_member(actor=alice, membership=get_member(org, cast["oscar"].user.pk))
    assert not any(_is_signed_in(c) for c in sessions)
    assert not MemberSession.objects.filter(user=cast["oscar"].user, ended_at=None).exists()
    assert Session.objects.count() == 0  # deleted from the store, not only refused
    [event] = events(org, "member.deactivated")
    assert len(event["data"]["sessions_ended"]) == 2


def test_changing_my_password_ends_my_other_sessions_but_not_this_one(cast, org):
    here = _signed_in("bob")
    elsewhere = _signed_in("bob", ip="192.0.2.8")
    response = here.post(
        "/settings/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a much better passphrase 7",
            "new_password2": "a much better passphrase 7",
        },
    )
    assert response.status_code == 302
    assert _is_signed_in(here)
    assert not _is_signed_in(elsewhere)
    [event] = events(org, "member.password_changed")
    assert [s["ip"] for s in event["data"]["sessions_ended"]] == ["192.0.2.8"]
    # this session is still listed as this session under its new key
    live = MemberSession.objects.filter(user=cast["bob"].user, ended_at=None)
    assert live.count() == 1
    assert live.get().key_hash == hashlib.sha256(here.session.session_key.encode()).hexdigest()
    assert "this session" in here.get("/settings/security/").content.decode()


def test_the_session_key_is_stored_only_hashed_and_sealed(cast):
    c = _signed_in("dave")
    key = c.session.session_key
    row = MemberSession.objects.get(user=cast["dave"].user)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in row.sealed_key and key not in str(list(MemberSession.objects.values_list()))


def test_last_seen_costs_no_query_between_its_once_a_minute_updates(cast, settings):
    c = _signed_in("erin")
    session = MemberSession.objects.get(user=cast["erin"].user)
    start = clock.now() + dt.timedelta(minutes=5)
    with clock.pinned(start) as timeline:
        c.get("/settings/security/")  # the first request of the minute is noted
        session.refresh_from_db()
        assert session.last_seen_at == start
        timeline.advance(seconds=20)
        with CaptureQueriesContext(connection) as with_it:
            c.get("/settings/security/")
        settings.MIDDLEWARE = [
            m
            for m in settings.MIDDLEWARE
            if m != "offboard.security.middleware.SessionActivityMiddleware"
        ]
        without = Client(HTTP_USER_AGENT=c.defaults["HTTP_USER_AGENT"])
        without.cookies = c.cookies  # the same signed-in session, without the middleware
        with CaptureQueriesContext(connection) as without_it:
            without.get("/settings/security/")
    assert len(with_it.captured_queries) == len(without_it.captured_queries)
    session.refresh_from_db()
    assert session.last_seen_at == start


def test_last_seen_updates_once_the_minute_has_passed(cast):
    c = _signed_in("erin")
    session = MemberSession.objects.get(user=cast["erin"].user)
    start = clock.now() + dt.timedelta(minutes=5)
    with clock.pinned(start) as timeline:
        c.get("/")
        timeline.advance(seconds=30)
        c.get("/")
        session.refresh_from_db()
        assert session.last_seen_at == start
        timeline.advance(seconds=31)
        with CaptureQueriesContext(connection) as queries:
            c.get("/")
        updates = [
            q["sql"] for q in queries.captured_queries if "security_membersession" in q["sql"]
        ]
        assert len(updates) == 1 and updates[0].startswith("UPDATE")
        session.refresh_from_db()
        assert session.last_seen_at == start + dt.timedelta(seconds=61)


def test_a_session_ended_while_its_store_entry_survived_is_signed_out_within_a_minute(cast):
    """Belt and braces: the session store entry could not be deleted (e.g. the sealing key
    file was lost); the middleware's once-a-minute check signs that browser out anyway."""
    c = _signed_in("oscar")
    MemberSession.objects.filter(user=cast["oscar"].user).update(
        ended_at=clock.now(), end_reason="ended_by_admin"
    )
    with clock.pinned(clock.now() + dt.timedelta(minutes=2)):
        assert c.get("/settings/security/").status_code == 302
