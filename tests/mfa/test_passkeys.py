"""Passkeys through the pages' JSON endpoints, answered by a software authenticator: register
one (the first factor brings recovery codes), sign in with it alone (both factors) or after a
password, and the refusals — another origin, a replayed challenge, a sign count that goes
backwards (a cloned authenticator)."""

import json

import pytest
from django.test import Client

from offboard.accounts.signin import MODEL_BACKEND, SESSION_METHOD, SESSION_SECOND_FACTOR
from offboard.ledger.models import LedgerEntry
from offboard.mfa.models import Passkey
from tests.mfa.authenticator import SoftAuthenticator
from tests.mfa.conftest import password_step, signed_in

FACTORS = "/settings/security/factors/"


def post_json(c: Client, url: str, body=None):
    return c.post(url, json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def device():
    return SoftAuthenticator()


def register(c: Client, device: SoftAuthenticator, name: str = "Work laptop", **kw):
    options = post_json(c, f"{FACTORS}passkeys/options").json()
    return post_json(
        c, f"{FACTORS}passkeys/", {"name": name, "credential": device.register(options, **kw)}
    )


@pytest.fixture
def alice_passkey(cast, device):
    c = Client()
    c.force_login(cast["alice"].user, backend=MODEL_BACKEND)
    response = register(c, device)
    assert response.status_code == 201, response.content
    return response.json()


def test_registering_a_passkey(alice_passkey, cast, device):
    assert alice_passkey["name"] == "Work laptop"
    assert len(alice_passkey["recovery_codes"]) == 10  # the first factor brings them
    passkey = Passkey.objects.get()
    assert passkey.user_id == cast["alice"].user.pk and passkey.transports == ["internal"]
    event = LedgerEntry.objects.get(type="member.factor_enrolled")
    assert event.data["factor"] == "webauthn" and event.data["name"] == "Work laptop"
    assert passkey.credential_id not in bytes(event.body).decode()


def test_the_registration_options_ask_for_a_discoverable_verified_passkey(cast):
    c = Client()
    c.force_login(cast["alice"].user, backend=MODEL_BACKEND)
    options = post_json(c, f"{FACTORS}passkeys/options").json()
    assert options["rp"]["id"] == "testserver"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["user"]["name"] == "alice"
    assert options["user"]["id"] != "alice"


def test_a_passkey_from_another_origin_is_not_registered(cast, device):
    c = Client()
    c.force_login(cast["alice"].user, backend=MODEL_BACKEND)
    refused = register(c, device, origin="https://evil.example")
    assert refused.status_code == 400
    assert "could not be registered" in refused.json()["error"]
    assert not Passkey.objects.exists()


def test_signing_in_with_a_passkey_alone(alice_passkey, device):
    c = Client()
    options = post_json(c, "/login/passkey/options").json()
    assert options["allowCredentials"] == []  # discoverable: the browser offers its passkeys
    done = post_json(c, "/login/passkey?next=/cases/", device.assert_(options))
    assert done.status_code == 200 and done.json() == {"redirect": "/cases/"}
    assert signed_in(c)
    assert c.session[SESSION_METHOD] == "passkey"
    assert c.session[SESSION_SECOND_FACTOR] == "webauthn"
    passkey = Passkey.objects.get()
    assert passkey.sign_count == 1 and passkey.last_used_at is not None


def test_an_assertion_cannot_be_replayed(alice_passkey, device):
    c = Client()
    options = post_json(c, "/login/passkey/options").json()
    answer = device.assert_(options)
    assert post_json(c, "/login/passkey", answer).status_code == 200
    other = Client()
    post_json(other, "/login/passkey/options")
    replay = post_json(other, "/login/passkey", answer)
    assert replay.status_code == 400 and not signed_in(other)


def test_a_sign_count_that_goes_backwards_is_refused(alice_passkey, device):
    c = Client()
    options = post_json(c, "/login/passkey/options").json()
    post_json(c, "/login/passkey", device.assert_(options, count=7))
    clone = Client()
    options = post_json(clone, "/login/passkey/options").json()
    refused = post_json(clone, "/login/passkey", device.assert_(options, count=5))
    assert refused.status_code == 400 and "not greater than" in refused.json()["error"]
    assert not signed_in(clone)
    assert Passkey.objects.get().sign_count == 7


def test_an_unknown_passkey_is_refused_plainly(cast):
    c = Client()
    options = post_json(c, "/login/passkey/options").json()
    refused = post_json(c, "/login/passkey", SoftAuthenticator().assert_(options))
    assert refused.status_code == 400
    assert "not registered with Offboard" in refused.json()["error"]


def test_a_passkey_as_the_second_step_after_the_password(alice_passkey, device):
    c = Client()
    assert password_step(c, "alice")["Location"] == "/login/verify/"
    assert "Use a passkey" in c.get("/login/verify/").content.decode()
    options = post_json(c, "/login/verify/passkey/options").json()
    assert [d["id"] for d in options["allowCredentials"]] == [Passkey.objects.get().credential_id]
    wrong = post_json(c, "/login/verify/passkey", device.assert_(options, origin="http://x.test"))
    assert wrong.status_code == 400 and not signed_in(c)
    assert LedgerEntry.objects.filter(type="member.second_factor_failed").count() == 1
    options = post_json(c, "/login/verify/passkey/options").json()
    done = post_json(c, "/login/verify/passkey", device.assert_(options))
    assert done.status_code == 200 and done.json()["redirect"] == "/"
    assert c.session[SESSION_METHOD] == "password"
    assert c.session[SESSION_SECOND_FACTOR] == "webauthn"


def test_a_deactivated_members_passkey_signs_nobody_in(alice_passkey, device, cast):
    cast["alice"].user.__class__.objects.filter(pk=cast["alice"].user.pk).update(is_active=False)
    c = Client()
    options = post_json(c, "/login/passkey/options").json()
    assert post_json(c, "/login/passkey", device.assert_(options)).status_code == 400
    assert not signed_in(c)
