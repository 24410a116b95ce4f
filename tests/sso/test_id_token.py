"""The ID token's verification against the real provider's key set: a tampered signature, a
wrong audience, an expired token, a bad nonce or issuer are refused; a rotated key is picked up
by fetching the key set once more. Tokens here are signed with the very key the provider
serves (or a stranger's), and checked by the same code the callback runs."""

import base64
import json
import time
from typing import Any

import pytest
from joserfc import jwt

from offboard.accounts.models import User
from offboard.sso import oidc
from tests.sso.conftest import CLIENT_ID, new_key
from tests.sso.test_sign_in import start

pytestmark = pytest.mark.django_db

NONCE = "n-0S6_WzA2Mj"


def claims(provider: Any, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": provider.issuer,
        "sub": "idp-zoe",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        "email": "zoe@acme.example",
        **overrides,
    }


def sign(key: Any, body: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


def verify(provider: Any, token: str, nonce: str = NONCE) -> dict[str, Any]:
    discovery = oidc.discover(provider.issuer)
    return oidc.verify_id_token(token, discovery=discovery, client_id=CLIENT_ID, nonce=nonce)


def refused(provider: Any, token: str, code: str, **kwargs: Any) -> str:
    with pytest.raises(oidc.ProviderError) as exc:
        verify(provider, token, **kwargs)
    assert exc.value.code == code, exc.value.message
    return exc.value.message


def test_a_token_signed_with_the_providers_key_verifies(provider):
    assert verify(provider, sign(provider.keys[0], claims(provider)))["sub"] == "idp-zoe"


def test_a_tampered_token_is_refused(provider):
    token = sign(provider.keys[0], claims(provider))
    head, body, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=="))
    data["email"] = "boss@acme.example"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    assert "signature" in refused(provider, f"{head}.{forged}.{signature}", "signature")


def test_a_token_signed_by_a_stranger_with_the_providers_key_id_is_refused(provider):
    stranger = new_key(provider.keys[0].kid)
    refused(provider, sign(stranger, claims(provider)), "signature")


def test_an_unsigned_or_symmetric_token_is_refused(provider):
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims(provider)).encode()).rstrip(b"=").decode()
    refused(provider, f"{header}.{body}.", "algorithm")


def test_a_wrong_audience_is_refused(provider):
    assert "audience" in refused(
        provider, sign(provider.keys[0], claims(provider, aud="someone-else")), "audience"
    )
    several = claims(provider, aud=[CLIENT_ID, "someone-else"], azp="someone-else")
    refused(provider, sign(provider.keys[0], several), "audience")
    unnamed = claims(provider, aud=[CLIENT_ID, "someone-else"])  # several, and no azp at all
    assert "azp" not in unnamed
    refused(provider, sign(provider.keys[0], unnamed), "audience")
    fine = claims(provider, aud=[CLIENT_ID, "someone-else"], azp=CLIENT_ID)
    assert verify(provider, sign(provider.keys[0], fine))["sub"] == "idp-zoe"


def test_an_expired_token_is_refused_beyond_the_clock_skew(provider):
    now = int(time.time())
    expired = claims(provider, iat=now - 600, exp=now - 61 - 5)
    assert "expired" in refused(provider, sign(provider.keys[0], expired), "expired")
    within_skew = claims(provider, iat=now - 600, exp=now - 30)
    assert verify(provider, sign(provider.keys[0], within_skew))
    future = claims(provider, iat=now + 300)
    refused(provider, sign(provider.keys[0], future), "times")
    not_yet = claims(provider, nbf=now + 300)
    refused(provider, sign(provider.keys[0], not_yet), "times")


def test_another_issuer_or_nonce_is_refused(provider):
    refused(
        provider, sign(provider.keys[0], claims(provider, iss="https://evil.example")), "issuer"
    )
    refused(provider, sign(provider.keys[0], claims(provider)), "nonce", nonce="another")


def test_a_rotated_key_is_fetched_once_more(provider):
    old = provider.keys[0]
    assert verify(provider, sign(old, claims(provider)))  # the key set is cached now
    try:
        new = provider.rotate("key-2")
        assert verify(provider, sign(new, claims(provider)))["sub"] == "idp-zoe"
        # The old key left the provider's set: its tokens no longer verify.
        refused(provider, sign(old, claims(provider)), "unknown_key")
    finally:
        provider.keys = [old]
        provider.stop()
        provider.start()


def test_a_sign_in_after_the_provider_rotated_its_key_succeeds(client, sso_config, provider):
    provider.choose("idp-zoe", email="zoe@acme.example", groups=["officers"])
    assert client.get(provider.authorize(start(client))).status_code == 302
    client.logout()
    old = provider.keys[0]
    try:
        provider.rotate("key-rotated")
        provider.choose("idp-zoe", email="zoe@acme.example", groups=["officers"])
        assert client.get(provider.authorize(start(client))).status_code == 302
        assert client.session["offboard.sign_in_method"] == "sso"
    finally:
        provider.keys = [old]
        provider.stop()
        provider.start()


def test_a_tampered_token_from_the_token_endpoint_refuses_the_sign_in(
    client, sso_config, provider, monkeypatch
):
    real = oidc.exchange_code

    def tampering(**kwargs: Any) -> dict[str, Any]:
        tokens = real(**kwargs)
        head, body, signature = tokens["id_token"].split(".")
        data = json.loads(base64.urlsafe_b64decode(body + "=="))
        data["groups"] = ["offboard-admins"]
        body = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
        return {**tokens, "id_token": f"{head}.{body}.{signature}"}

    monkeypatch.setattr(oidc, "exchange_code", tampering)
    provider.choose("idp-zoe", email="zoe@acme.example", groups=["officers"])
    response = client.get(provider.authorize(start(client)))
    assert response.status_code == 502
    assert b"signature does not verify" in response.content
    assert not User.objects.filter(email="zoe@acme.example").exists()
    assert "_auth_user_id" not in client.session
