"""Settings → Security → Two-factor: setting up an authenticator app (secret as text and a QR
code, confirmed with a current code), recovery codes shown once and stored hashed, removal,
and no secret in an event or a page after enrolment."""

import hashlib
import re

import pytest
from django.test import Client

from offboard.accounts.signin import MODEL_BACKEND
from offboard.ledger.models import LedgerEntry
from offboard.mfa.models import Passkey, RecoveryCode, TotpDevice
from offboard.mfa.services import pending_totp
from tests.mfa.conftest import code_at

PAGE = "/settings/security/factors/"


@pytest.fixture
def alice_web(cast):
    c = Client()
    c.force_login(cast["alice"].user, backend=MODEL_BACKEND)
    return c


def test_setting_up_an_authenticator_app(alice_web, cast, timeline):
    page = alice_web.get(PAGE).content.decode()
    assert "Set up an authenticator app" in page

    alice_web.post(f"{PAGE}totp/start")
    secret = pending_totp(cast["alice"].user).secret
    shown = alice_web.get(PAGE).content.decode()
    assert secret in shown  # as text, to type into the app
    assert "<svg" in shown and "QR code" in shown  # drawn here, no external image
    assert "http" not in shown.split("<svg", 1)[1].split("</svg>", 1)[0].replace(
        "http://www.w3.org/2000/svg", ""
    )
    device = TotpDevice.objects.get()
    assert device.confirmed_at is None
    assert secret not in device.secret_sealed  # sealed at rest
    assert not LedgerEntry.objects.filter(type__startswith="member.factor").exists()

    wrong = alice_web.post(f"{PAGE}totp/confirm", {"code": "123456"})
    assert wrong.status_code == 400 and "not the current one" in wrong.content.decode()

    done = alice_web.post(f"{PAGE}totp/confirm", {"code": code_at(secret, timeline.at)})
    body = done.content.decode()
    assert done.status_code == 200 and "Your recovery codes" in body
    codes = re.findall(r"<li>([a-z2-9]{6}(?:-[a-z2-9]{6}){3})</li>", body)
    assert len(codes) == 10
    stored = set(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert {hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes} == stored
    assert alice_web.session["offboard.second_factor"] == "totp"

    enrolled = LedgerEntry.objects.get(type="member.factor_enrolled")
    assert enrolled.data["factor"] == "totp" and enrolled.data["recovery_codes_issued"] == 10
    raw = bytes(enrolled.body).decode()
    assert secret not in raw and not any(c in raw for c in codes)

    after = alice_web.get(PAGE).content.decode()
    assert secret not in after and not any(c in after for c in codes)
    assert "Remove authenticator app" in after


def test_recovery_codes_are_made_anew_and_the_old_ones_stop(alice_web, cast, timeline):
    alice_web.post(f"{PAGE}totp/start")
    secret = pending_totp(cast["alice"].user).secret
    alice_web.post(f"{PAGE}totp/confirm", {"code": code_at(secret, timeline.at)})
    old = set(RecoveryCode.objects.values_list("code_hash", flat=True))
    page = alice_web.post(f"{PAGE}recovery-codes")
    assert page.status_code == 200 and "Your recovery codes" in page.content.decode()
    new = set(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert len(new) == 10 and not (old & new)
    event = LedgerEntry.objects.get(type="member.recovery_codes_regenerated")
    assert event.data["count"] == 10


def test_no_recovery_codes_without_a_factor(alice_web):
    refused = alice_web.post(f"{PAGE}recovery-codes", follow=True)
    assert "set up an authenticator app or a passkey first" in refused.content.decode()
    assert not RecoveryCode.objects.exists()


def test_removing_the_last_factor_removes_the_recovery_codes(alice_web, cast, timeline):
    alice_web.post(f"{PAGE}totp/start")
    secret = pending_totp(cast["alice"].user).secret
    alice_web.post(f"{PAGE}totp/confirm", {"code": code_at(secret, timeline.at)})
    alice_web.post(f"{PAGE}totp/remove")
    assert not TotpDevice.objects.exists() and not RecoveryCode.objects.exists()
    removed = LedgerEntry.objects.get(type="member.factor_removed")
    assert removed.data["factor"] == "totp" and removed.data["recovery_codes_removed"] == 10


def _passkey_of(user):
    from django.utils import timezone

    return Passkey.objects.create(
        user=user,
        credential_id="Y3JlZGVudGlhbC1pZA",
        public_key=b"\xa5\x01\x02",
        name="Work laptop",
        created_at=timezone.now(),
    )


def test_nobody_else_can_remove_a_members_passkey(cast, mallory):
    passkey = _passkey_of(cast["alice"].user)
    for actor in (cast["bob"], mallory):
        c = Client()
        c.force_login(actor.user, backend=MODEL_BACKEND)
        response = c.post(f"{PAGE}passkeys/remove", {"passkey": passkey.pk})
        assert response.status_code == 404
    assert Passkey.objects.filter(pk=passkey.pk).exists()
    assert not LedgerEntry.objects.filter(type="member.factor_removed").exists()

    own = Client()
    own.force_login(cast["alice"].user, backend=MODEL_BACKEND)
    own.post(f"{PAGE}passkeys/remove", {"passkey": passkey.pk})
    assert not Passkey.objects.exists()
    event = LedgerEntry.objects.get(type="member.factor_removed")
    assert event.data["factor"] == "webauthn" and event.data["name"] == "Work laptop"


def test_the_pages_need_a_signed_in_member():
    for url in (PAGE, f"{PAGE}totp/start"):
        response = Client().post(url) if url.endswith("start") else Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
