"""The sign-in's second step with an authenticator app or a recovery code: codes computed by
pyotp from the seed, the ±1 step window, no code twice, recovery codes once each, the pending
sign-in's expiry and the throttle on wrong codes."""

import datetime as dt

import pytest
from django.test import Client

from offboard.accounts.signin import SESSION_METHOD, SESSION_SECOND_FACTOR
from offboard.ledger.models import LedgerEntry
from offboard.mfa.models import FailedSecondFactor, RecoveryCode, TotpDevice
from tests.mfa.conftest import code_at, enrol_totp, password_step, signed_in


@pytest.fixture
def alice_totp(cast, timeline):
    return enrol_totp(cast["alice"], timeline)


def events(type_: str) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(type=type_).order_by("index"))


def test_a_member_without_a_factor_is_signed_in_by_the_password_alone(cast):
    c = Client()
    response = password_step(c, "bob")
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in(c)
    assert c.session[SESSION_METHOD] == "password"
    assert SESSION_SECOND_FACTOR not in c.session


def test_a_member_with_an_authenticator_app_signs_in_with_a_current_code(alice_totp, timeline):
    secret, _ = alice_totp
    c = Client()
    response = password_step(c, next="/cases/")
    assert response.status_code == 302 and response["Location"] == "/login/verify/"
    assert not signed_in(c), "the password alone must not sign in a member with a factor"
    page = c.get("/login/verify/")
    assert page.status_code == 200 and "Code from your authenticator app" in page.content.decode()
    assert c.get("/").status_code == 302  # still not in

    done = c.post("/login/verify/", {"kind": "totp", "code": code_at(secret, timeline.at)})
    assert done.status_code == 302 and done["Location"] == "/cases/"
    assert signed_in(c)
    assert c.session[SESSION_METHOD] == "password"
    assert c.session[SESSION_SECOND_FACTOR] == "totp"
    assert c.get("/").status_code == 200


def test_the_code_of_the_previous_or_next_step_is_accepted_but_not_two_steps_off(
    alice_totp, timeline
):
    secret, _ = alice_totp
    timeline.advance(seconds=300)
    for offset, accepted in ((-60, False), (60, False), (-30, True)):
        c = Client()
        password_step(c)
        code = code_at(secret, timeline.at + dt.timedelta(seconds=offset))
        response = c.post("/login/verify/", {"kind": "totp", "code": code})
        assert signed_in(c) is accepted, (offset, response.status_code)
    # the next step's code, two minutes later (the previous step's was used just now)
    timeline.advance(seconds=120)
    c = Client()
    password_step(c)
    c.post("/login/verify/", {"code": code_at(secret, timeline.at + dt.timedelta(seconds=30))})
    assert signed_in(c)


def test_a_code_cannot_be_used_twice(alice_totp, timeline, cast):
    secret, _ = alice_totp
    code = code_at(secret, timeline.at)
    first = Client()
    password_step(first)
    first.post("/login/verify/", {"code": code})
    assert signed_in(first)

    second = Client()
    password_step(second)
    replay = second.post("/login/verify/", {"code": code})
    assert replay.status_code == 400
    assert "used already" in replay.content.decode()
    assert not signed_in(second)
    # nor an older code still inside the window
    older = second.post(
        "/login/verify/", {"code": code_at(secret, timeline.at - dt.timedelta(seconds=30))}
    )
    assert older.status_code == 400 and not signed_in(second)
    failed = events("member.second_factor_failed")
    assert [e.data["attempt"] for e in failed] == [1, 2]
    assert failed[0].data["factor"] == "totp"
    assert failed[0].data["member_id"] == cast["alice"].user.pk
    assert failed[0].org_id == cast["alice"].org.pk
    assert TotpDevice.objects.get().last_used_step == int(timeline.at.timestamp()) // 30


def test_a_recovery_code_signs_in_once(alice_totp, timeline):
    _, codes = alice_totp
    assert len(codes) == 10 and len(set(codes)) == 10
    c = Client()
    password_step(c)
    done = c.post("/login/verify/", {"kind": "recovery", "code": codes[3].upper()})
    assert done.status_code == 302 and signed_in(c)
    assert c.session[SESSION_SECOND_FACTOR] == "recovery_code"
    used = events("member.recovery_code_used")
    assert len(used) == 1 and used[0].data["recovery_codes_left"] == 9
    assert codes[3] not in bytes(used[0].body).decode()

    again = Client()
    password_step(again)
    refused = again.post("/login/verify/", {"kind": "recovery", "code": codes[3]})
    assert refused.status_code == 400 and not signed_in(again)
    assert "used already" in refused.content.decode()
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1


def test_the_pending_sign_in_expires_after_five_minutes(alice_totp, timeline):
    secret, _ = alice_totp
    c = Client()
    password_step(c)
    timeline.advance(seconds=301)
    response = c.post("/login/verify/", {"code": code_at(secret, timeline.at)}, follow=True)
    assert not signed_in(c)
    assert response.redirect_chain[-1][0] == "/login/"
    assert "waited too long" in response.content.decode()


def test_five_wrong_codes_end_the_pending_sign_in(alice_totp, timeline, cast):
    secret, _ = alice_totp
    c = Client()
    password_step(c)
    for n in range(4):
        wrong = c.post("/login/verify/", {"code": "000000"})
        assert wrong.status_code == 400
        assert f"{4 - n} attempt" in wrong.content.decode()
    last = c.post("/login/verify/", {"code": "000000"})
    assert last.status_code == 302 and last["Location"] == "/login/"
    # even the right code is too late now: the password is asked again
    late = c.post("/login/verify/", {"code": code_at(secret, timeline.at)})
    assert late.status_code == 302 and late["Location"] == "/login/" and not signed_in(c)
    failed = events("member.second_factor_failed")
    assert len(failed) == 5
    assert {e.org_id for e in failed} == {cast["alice"].org.pk}
    assert failed[0].data["reason"] == "wrong or reused code"
    assert failed[0].actor["id"] == cast["alice"].user.pk


def test_a_new_pending_sign_in_does_not_reset_the_members_limit(alice_totp, timeline):
    secret, _ = alice_totp
    for _ in range(2):
        c = Client()
        password_step(c)
        for _ in range(5):
            c.post("/login/verify/", {"code": "000000"})
    assert FailedSecondFactor.objects.count() == 10
    c = Client()
    password_step(c)
    refused = c.post("/login/verify/", {"code": code_at(secret, timeline.at)}, follow=True)
    assert not signed_in(c) and "Too many wrong codes" in refused.content.decode()
    timeline.advance(minutes=16)
    c = Client()
    password_step(c)
    c.post("/login/verify/", {"code": code_at(secret, timeline.at)})
    assert signed_in(c)


def test_next_leads_only_to_this_site(alice_totp, timeline):
    secret, _ = alice_totp
    c = Client()
    password_step(c, next="https://evil.example/steal")
    done = c.post("/login/verify/", {"code": code_at(secret, timeline.at)})
    assert done.status_code == 302 and done["Location"] == "/"


def test_the_verify_page_without_a_pending_sign_in_sends_to_the_login_page(cast):
    response = Client().get("/login/verify/")
    assert response.status_code == 302 and response["Location"] == "/login/"


def test_a_deactivated_member_cannot_finish_a_pending_sign_in(alice_totp, timeline, cast):
    secret, _ = alice_totp
    c = Client()
    password_step(c)
    cast["alice"].user.__class__.objects.filter(pk=cast["alice"].user.pk).update(is_active=False)
    c.post("/login/verify/", {"code": code_at(secret, timeline.at)})
    assert not signed_in(c)
