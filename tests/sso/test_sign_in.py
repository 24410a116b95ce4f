"""Signing in through a real OpenID Connect provider: the whole code flow with PKCE, state and
nonce; just-in-time membership with the mapped role; a changed group changes the role; a member
dropped from the groups is refused and deactivated; replays and state mismatches are refused."""

from typing import Any

import pytest

from offboard.accounts.models import Membership, User
from offboard.ledger.models import LedgerEntry
from offboard.sso import oidc
from offboard.sso.models import SsoIdentity
from tests.sso.conftest import CLIENT_SECRET

pytestmark = pytest.mark.django_db


def start(client: Any, path: str = "/login/sso/acme/") -> str:
    response = client.get(path)
    assert response.status_code == 302, response.content[:500]
    return str(response["Location"])


def sign_in(client: Any, provider: Any, sub: str, **claims: Any) -> Any:
    provider.choose(sub, **claims)
    return client.get(provider.authorize(start(client)))


def events(org: Any, type: str) -> list[dict[str, Any]]:
    import json

    found = []
    for entry in LedgerEntry.objects.filter(org=org).order_by("index"):
        body = json.loads(bytes(entry.body))
        if body["type"] == type:
            found.append(body)
    return found


def test_the_authorization_request_uses_pkce_state_and_nonce(client, sso_config, provider):
    url = start(client)
    assert url.startswith(f"{provider.issuer}/auth?")
    for part in (
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "response_type=code",
    ):
        assert part in url
    pending = client.session["offboard.sso.pending"]
    assert len(pending) == 1 and next(iter(pending.values()))["verifier"] not in url


def test_first_sign_in_adds_the_member_with_the_mapped_role(client, sso_config, provider, org):
    response = sign_in(
        client,
        provider,
        "idp-zoe",
        email="zoe@acme.example",
        email_verified=True,
        groups=["staff", "officers"],
    )
    assert response.status_code == 302 and response["Location"] == "/"
    zoe = User.objects.get(email="zoe@acme.example")
    assert not zoe.has_usable_password()
    assert Membership.objects.get(org=org, user=zoe).role == "operator"
    assert SsoIdentity.objects.get(user=zoe).subject == "idp-zoe"
    assert client.get("/").status_code == 200
    assert client.session["offboard.sign_in_method"] == "sso"
    assert "offboard.second_factor" not in client.session
    [added] = events(org, "member.added")
    assert added["data"]["role"] == "operator" and added["data"]["via"] == "sso"
    assert added["actor"]["job"] == "single sign-on"


def test_a_second_factor_at_the_provider_counts_as_one(client, sso_config, provider):
    sign_in(
        client,
        provider,
        "idp-mia",
        amr=["pwd", "mfa"],
        email="mia@acme.example",
        groups=["officers"],
    )
    assert client.session["offboard.second_factor"] == "sso_mfa"


def test_a_changed_group_changes_the_role_at_the_next_sign_in(client, sso_config, provider, org):
    sign_in(client, provider, "idp-zoe", email="zoe@acme.example", groups=["officers"])
    client.logout()
    response = sign_in(client, provider, "idp-zoe", email="zoe@acme.example", groups=["auditors"])
    assert response.status_code == 302
    assert Membership.objects.get(org=org, user__email="zoe@acme.example").role == "auditor"
    [changed] = events(org, "member.role_changed")
    assert changed["data"]["role"] == "auditor" and changed["data"]["old"] == {"role": "operator"}
    assert changed["actor"]["auth"] == "system"


def test_an_existing_member_is_matched_by_verified_email_then_by_subject(
    client, sso_config, provider, org, cast
):
    response = sign_in(
        client,
        provider,
        "idp-oscar",
        email="oscar@acme.example",
        email_verified=True,
        groups=["officers"],
    )
    assert response.status_code == 302
    assert SsoIdentity.objects.get(subject="idp-oscar").user.username == "oscar"
    assert len(events(org, "sso.identity_linked")) == 1
    client.logout()
    # The provider changed his address: the subject still finds him.
    sign_in(client, provider, "idp-oscar", email="o.new@acme.example", groups=["officers"])
    assert int(client.session["_auth_user_id"]) == cast["oscar"].user.pk


def test_a_member_removed_from_the_groups_is_refused_and_deactivated(
    client, sso_config, provider, org
):
    sign_in(client, provider, "idp-zoe", email="zoe@acme.example", groups=["officers"])
    client.logout()
    response = sign_in(client, provider, "idp-zoe", email="zoe@acme.example", groups=["marketing"])
    assert response.status_code == 403
    assert b"not in a group that may use Offboard" in response.content
    assert b"deactivated" in response.content
    assert not User.objects.get(email="zoe@acme.example").is_active
    [gone] = events(org, "member.deactivated")
    assert gone["data"]["reason"] == "removed from the identity provider's groups"
    assert "_auth_user_id" not in client.session


def test_someone_in_no_allowed_group_is_not_added(client, sso_config, provider):
    response = sign_in(client, provider, "idp-x", email="x@acme.example", groups=["marketing"])
    assert response.status_code == 403
    assert b"not in a group that may use Offboard" in response.content
    assert not User.objects.filter(email="x@acme.example").exists()


def test_an_unverified_or_foreign_email_is_refused(client, sso_config, provider):
    response = sign_in(
        client, provider, "idp-u", email="u@acme.example", email_verified=False, groups=["officers"]
    )
    assert response.status_code == 403 and b"not verified" in response.content
    response = sign_in(client, provider, "idp-v", email="v@evil.example", groups=["officers"])
    assert response.status_code == 403 and b"not in a domain" in response.content
    assert not User.objects.filter(email__in=["u@acme.example", "v@evil.example"]).exists()


def test_a_replayed_callback_is_refused(client, sso_config, provider):
    provider.choose("idp-zoe", email="zoe@acme.example", groups=["officers"])
    callback = provider.authorize(start(client))
    assert client.get(callback).status_code == 302
    client.logout()
    again = client.get(callback)
    assert again.status_code == 400
    assert b"completed already" in again.content
    assert "_auth_user_id" not in client.session


def test_the_provider_refuses_a_code_used_twice(client, sso_config, provider):
    start_url = start(client)
    provider.choose("idp-zoe", email="zoe@acme.example", groups=["officers"])
    callback = provider.authorize(start_url)
    code = callback.split("code=")[1].split("&")[0]
    state = callback.split("state=")[1].split("&")[0]
    verifier = client.session["offboard.sso.pending"][state]["verifier"]
    discovery = oidc.discover(provider.issuer)
    kwargs = dict(
        discovery=discovery,
        client_id="offboard-test",
        client_secret=CLIENT_SECRET,
        code=code,
        redirect_uri="http://testserver/login/sso/callback/",
        code_verifier=verifier,
    )
    assert "id_token" in oidc.exchange_code(**kwargs)
    with pytest.raises(oidc.ProviderError) as refused:
        oidc.exchange_code(**kwargs)
    assert "invalid_grant" in refused.value.message
    assert CLIENT_SECRET not in refused.value.message


def test_a_state_from_another_browser_is_refused(client, sso_config, provider):
    provider.choose("idp-zoe", email="zoe@acme.example", groups=["officers"])
    callback = provider.authorize(start(client))
    from django.test import Client

    stranger = Client()
    stranger.get("/login/sso/acme/")  # a sign-in of its own, with its own state
    response = stranger.get(callback)
    assert response.status_code == 400
    assert "_auth_user_id" not in stranger.session
    tampered = callback.replace("state=", "state=x")
    assert client.get(tampered).status_code == 400


def test_an_error_from_the_provider_gives_a_page_not_a_500(client, sso_config, provider):
    url = start(client)
    state = url.split("state=")[1].split("&")[0]
    response = client.get(
        f"/login/sso/callback/?state={state}&error=access_denied&error_description=nope"
    )
    assert response.status_code == 400
    assert b"access_denied" in response.content and b"Start again" in response.content


def test_an_unreachable_provider_gives_a_page_saying_what_to_do(client, sso_config, provider):
    provider.stop()
    response = client.get("/login/sso/acme/")
    assert response.status_code == 502
    assert b"could not be reached" in response.content and b"Settings" in response.content


def test_the_sso_form_finds_the_organization_by_email_domain_or_slug(client, sso_config, provider):
    response = client.post("/login/sso/", {"organization": "someone@acme.example"})
    assert response.status_code == 302 and response["Location"].startswith(provider.issuer)
    response = client.post("/login/sso/", {"organization": "acme"})
    assert response.status_code == 302
    response = client.post("/login/sso/", {"organization": "nobody@else.example"})
    assert response.status_code == 400 and b"No organization signs in" in response.content


def test_the_sso_form_may_post_on_to_a_provider_and_nothing_else_is_loosened(client, db):
    policy = client.get("/login/sso/")["Content-Security-Policy"]
    assert "form-action 'self' https: http://127.0.0.1:* http://localhost:*" in policy
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "https:" not in client.get("/login/")["Content-Security-Policy"]
