"""Password reset by e-mail, end to end through a real SMTP server: the same answer whether
the account exists or not, a single-use, expiring, hashed token, every session ended."""

import re
import time

import pytest
from django.db import connection

from offboard.core import clock
from offboard.ledger.models import LedgerEntry
from offboard.security.models import MemberSession, PasswordResetToken
from tests.security.conftest import PASSWORD, browser, events, sign_in

NEW_PASSWORD = "a brand new passphrase 9"


@pytest.fixture
def mailer(smtp, settings):
    """The real SMTP server; the e-mail goes out in the background, as in production."""
    settings.OFFBOARD_PASSWORD_RESET_SEND = "thread"
    return smtp


def _wait_for_mail(server, count: int = 1, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while len(server.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.received) >= count, f"{len(server.received)} message(s) received"
    return server.received[count - 1]


def _link_in(message) -> str:
    [link] = re.findall(r"https?://\S+/password-reset/[A-Za-z0-9_-]+/", message.text())
    return link


def _without_csrf(content: bytes) -> str:
    """A page as a visitor compares it: every page carries its own masked CSRF token."""
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", content.decode())


def _ask(identifier: str, ip: str = "203.0.113.7"):
    return browser(ip=ip).post("/password-reset/", {"identifier": identifier})


def test_the_login_page_offers_a_reset(db):
    body = browser().get("/login/").content.decode()
    assert 'href="/password-reset/"' in body and "Forgot your password?" in body


def test_reset_end_to_end_through_the_emailed_link(mailer, cast, org):
    signed_in_elsewhere = browser(ip="192.0.2.5")
    sign_in(signed_in_elsewhere, "bob")
    response = _ask("bob@acme.example")
    assert response.status_code == 200 and "Check your e-mail" in response.content.decode()
    message = _wait_for_mail(mailer)
    assert message.rcpt_tos == ["bob@acme.example"]
    assert message.message["Subject"] == "Reset your Offboard password"
    link = _link_in(message)
    path = link.split("testserver", 1)[1]
    c = browser()
    form = c.get(path)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    assert "no-store" in form["Cache-Control"] and form["Referrer-Policy"] == "no-referrer"
    done = c.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 200 and "Your password was changed" in done.content.decode()
    # the new password works, the old one does not, and every session was ended
    assert sign_in(browser(), "bob", PASSWORD).status_code == 200
    assert sign_in(browser(), "bob", NEW_PASSWORD).status_code == 302
    assert signed_in_elsewhere.get("/settings/security/").status_code == 302
    ended = MemberSession.objects.filter(user=cast["bob"].user, end_reason="password_reset")
    assert ended.count() == 1
    [requested] = events(org, "member.password_reset_requested")
    [reset] = events(org, "member.password_reset")
    assert requested["data"]["username"] == "bob" and requested["actor"]["ip"] == "203.0.113.7"
    assert reset["data"]["sessions_ended"][0]["ip"] == "192.0.2.5"
    token = path.rstrip("/").rsplit("/", 1)[1]
    for entry in LedgerEntry.objects.all():
        assert token not in bytes(entry.body).decode()
    assert NEW_PASSWORD not in str(reset)


def test_a_username_works_as_well_as_an_address(mailer, cast):
    _ask("carol")
    assert _wait_for_mail(mailer).rcpt_tos == ["carol@acme.example"]


def test_the_answer_is_the_same_for_an_unknown_address(mailer, cast, org):
    known = _ask("bob@acme.example", ip="192.0.2.1")
    unknown = _ask("nobody@acme.example", ip="192.0.2.2")
    assert known.status_code == unknown.status_code == 200
    assert _without_csrf(known.content) == _without_csrf(unknown.content)
    _wait_for_mail(mailer)
    time.sleep(0.2)
    assert len(mailer.received) == 1  # only the real account got mail
    assert len(events(org, "member.password_reset_requested")) == 1


def test_the_answer_does_not_wait_for_the_mail_server(mailer, cast):
    """The e-mail goes after the answer: a slow mail server makes no difference a visitor
    could time."""
    mailer.mode = "hang"
    mailer.hang_seconds = 2.0
    started = time.monotonic()
    assert _ask("bob@acme.example").status_code == 200
    known = time.monotonic() - started
    started = time.monotonic()
    assert _ask("nobody@acme.example").status_code == 200
    unknown = time.monotonic() - started
    assert known < 1.0 and unknown < 1.0, (known, unknown)
    assert abs(known - unknown) < 0.5


def test_the_token_is_stored_only_as_its_hash(mailer, cast):
    _ask("dave@acme.example")
    token = _link_in(_wait_for_mail(mailer)).rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits, base64url
    import hashlib

    assert PasswordResetToken.objects.get().token_hash == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted}")
            for row in cursor.fetchall():
                assert token not in repr(row), table


def test_a_link_works_once(mailer, cast):
    _ask("erin@acme.example")
    path = _link_in(_wait_for_mail(mailer)).split("testserver", 1)[1]
    c = browser()
    c.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    again = c.get(path)
    assert again.status_code == 404
    assert "This link is no longer valid — ask for a new one" in again.content.decode()
    replay = c.post(
        path, {"new_password1": "yet another pass 11", "new_password2": "yet another pass 11"}
    )
    assert replay.status_code == 404
    assert sign_in(browser(), "erin", NEW_PASSWORD).status_code == 302


def test_a_link_expires_after_the_configured_minutes(mailer, cast, settings):
    settings.OFFBOARD_PASSWORD_RESET_MINUTES = 30
    start = clock.now()
    with clock.pinned(start) as timeline:
        _ask("oscar@acme.example")
        path = _link_in(_wait_for_mail(mailer)).split("testserver", 1)[1]
        timeline.advance(minutes=29)
        assert browser().get(path).status_code == 200
        timeline.advance(minutes=1, seconds=1)
        expired = browser().get(path)
        assert expired.status_code == 404
        assert "no longer valid" in expired.content.decode()
        refused = browser().post(
            path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
        assert refused.status_code == 404
    assert sign_in(browser(), "oscar", PASSWORD).status_code == 302


def test_an_unknown_token_gets_the_same_clear_page(db):
    response = browser().get("/password-reset/" + "A" * 43 + "/")
    assert response.status_code == 404
    assert "This link is no longer valid — ask for a new one" in response.content.decode()


def test_the_new_password_must_pass_the_validators(mailer, cast):
    _ask("bob")
    path = _link_in(_wait_for_mail(mailer)).split("testserver", 1)[1]
    weak = browser().post(path, {"new_password1": "password", "new_password2": "password"})
    assert weak.status_code == 422 and "too common" in weak.content.decode()
    mismatch = browser().post(path, {"new_password1": NEW_PASSWORD, "new_password2": "other"})
    assert mismatch.status_code == 422 and "didn" in mismatch.content.decode()
    assert browser().get(path).status_code == 200  # still usable after a refusal


def test_requests_are_limited_per_address(mailer, cast, settings):
    settings.OFFBOARD_PASSWORD_RESET_PER_ADDRESS_HOURLY = 2
    for n in range(4):
        assert _ask("bob@acme.example", ip=f"192.0.2.{n}").status_code == 200
    _wait_for_mail(mailer, 2)
    time.sleep(0.2)
    assert len(mailer.received) == 2
    assert PasswordResetToken.objects.count() == 2


def test_requests_are_limited_per_ip_address(mailer, cast, settings):
    settings.OFFBOARD_PASSWORD_RESET_PER_IP_HOURLY = 3
    answers = [_ask(f"someone{n}@acme.example").status_code for n in range(4)]
    assert answers == [200, 200, 200, 429]
    assert _ask("bob@acme.example", ip="192.0.2.200").status_code == 200  # another address


def test_a_reset_link_of_a_deactivated_member_no_longer_works(mailer, cast, org, alice):
    from offboard.accounts.selectors import get_member
    from offboard.accounts.services import deactivate_member

    _ask("oscar")
    path = _link_in(_wait_for_mail(mailer)).split("testserver", 1)[1]
    deactivate_member(actor=alice, membership=get_member(org, cast["oscar"].user.pk))
    assert browser().get(path).status_code == 404
    _ask("oscar", ip="192.0.2.77")
    time.sleep(0.2)
    assert len(mailer.received) == 1  # no new link for a deactivated account
