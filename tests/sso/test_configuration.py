"""Configuring single sign-on (admins only, field errors that say what is wrong, one event per
change without the secret), "SSO required" with its break-glass admin, and the settings page."""

import json
import logging
from typing import Any

import pytest

from offboard.core.errors import PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry
from offboard.sso.models import SsoConfig
from offboard.sso.services import configure_sso
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET
from tests.sso.test_sign_in import events, sign_in

pytestmark = pytest.mark.django_db

GOOD: dict[str, Any] = {
    "issuer": "https://login.acme.example",
    "client_id": "offboard",
    "client_secret": "s3cret-value-9f8e7d",
    "allowed_domains": "acme.example",
    "group_roles": "offboard-admins = admin",
}


def test_only_an_admin_configures_single_sign_on(cast):
    with pytest.raises(PermissionDenied):
        configure_sso(actor=cast["bob"], **GOOD)
    assert not SsoConfig.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("issuer", "http://login.acme.example", "must use https"),
        ("issuer", "ftp://login.acme.example", "https://"),
        ("issuer", "login.acme.example", "issuer URL"),
        ("allowed_domains", "acme, @@", "not a domain name"),
        ("allowed_domains", "", "at least one"),
        ("group_roles", "offboard-admins = superuser", "is not a role"),
        ("group_roles", "just-a-group", "must read 'group = role'"),
        ("client_id", "", "is required"),
        ("client_secret", "", "is required"),
        ("groups_claim", "has spaces", "claim name"),
    ],
)
def test_bad_input_gets_a_field_error(alice, field, value, problem):
    with pytest.raises(ValidationFailed) as exc:
        configure_sso(actor=alice, **{**GOOD, field: value})
    assert problem in " ".join(exc.value.errors[field])
    assert not SsoConfig.objects.exists()


def test_a_provider_on_loopback_may_use_http(alice):
    for issuer in ("http://127.0.0.1:9000", "http://localhost:9000/realm"):
        assert configure_sso(actor=alice, **{**GOOD, "issuer": issuer}).issuer == issuer


def test_sso_required_needs_an_active_admin_as_break_glass(alice, cast):
    with pytest.raises(ValidationFailed) as exc:
        configure_sso(actor=alice, **GOOD, sso_required=True)
    assert "break_glass" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        configure_sso(actor=alice, **GOOD, sso_required=True, break_glass_username="bob")
    assert "not an active admin" in exc.value.errors["break_glass"][0]
    config = configure_sso(actor=alice, **GOOD, sso_required=True, break_glass_username="alice")
    assert config.break_glass == alice.user


def test_each_change_is_one_event_without_the_secret(alice, org):
    configure_sso(actor=alice, **GOOD)
    configure_sso(
        actor=alice, **{**GOOD, "client_secret": "", "allowed_domains": "acme.example, acme.test"}
    )
    configure_sso(actor=alice, **{**GOOD, "client_secret": "another-secret-4c4c"})
    [configured] = events(org, "sso.configured")
    assert configured["data"]["client_secret_set"] is True
    updates = events(org, "sso.updated")
    assert updates[0]["data"]["old"] == {"allowed_domains": ["acme.example"]}
    assert updates[1]["data"]["client_secret_replaced"] is True
    bodies = b"".join(bytes(e.body) for e in LedgerEntry.objects.filter(org=org))
    assert b"s3cret-value-9f8e7d" not in bodies and b"another-secret-4c4c" not in bodies
    config = SsoConfig.objects.get(org=org)
    assert "another-secret" not in config.client_secret_sealed


def _login(client: Any, username: str) -> Any:
    return client.post("/login/", {"username": username, "password": "correct horse 1"})


def test_sso_required_stops_passwords_but_not_the_break_glass_admin(
    client, alice, cast, org, settings
):
    settings.AXES_ENABLED = True
    configure_sso(actor=alice, **GOOD, sso_required=True, break_glass_username="alice")
    refused = _login(client, "bob")
    assert refused.status_code == 200
    assert b"Your organization signs in with single sign-on" in refused.content
    assert b'href="/login/sso/acme/"' in refused.content
    assert "_auth_user_id" not in client.session
    signed_in = _login(client, "alice")
    assert signed_in.status_code == 302
    assert int(client.session["_auth_user_id"]) == alice.user.pk
    [record] = events(org, "sso.break_glass_sign_in")
    assert record["data"]["username"] == "alice" and record["data"]["ip"] == "127.0.0.1"
    assert record["actor"]["username"] == "alice"


def test_without_sso_required_passwords_work_and_nothing_is_recorded(client, alice, cast, org):
    configure_sso(actor=alice, **GOOD, break_glass_username="alice")
    assert _login(client, "bob").status_code == 302
    client.logout()
    assert _login(client, "alice").status_code == 302
    assert events(org, "sso.break_glass_sign_in") == []


def test_the_login_page_links_to_single_sign_on(client, db):
    page = client.get("/login/")
    assert b'href="/login/sso/"' in page.content and b"Sign in with single sign-on" in page.content


def test_the_settings_page_shows_the_secret_only_as_set(client, alice, cast):
    _login(client, "alice")
    page = client.get("/settings/sso/")
    assert page.status_code == 200 and b"not set up" in page.content
    assert b"http://testserver/login/sso/callback/" in page.content
    saved = client.post(
        "/settings/sso/",
        {**GOOD, "sso_required": "on", "break_glass": "alice"},
    )
    assert saved.status_code == 302
    page = client.get(saved["Location"])
    assert b"Single sign-on saved" in page.content
    assert b'id="sso-secret-state">set<' in page.content
    assert GOOD["client_secret"].encode() not in page.content
    assert b"/settings/sso/" in client.get("/settings/").content


def test_the_settings_page_says_what_is_wrong(client, alice):
    _login(client, "alice")
    page = client.post("/settings/sso/", {**GOOD, "issuer": "http://idp.example.com"})
    assert page.status_code == 400
    assert b'id="error-issuer"' in page.content and b"must use https" in page.content
    assert b"idp.example.com" in page.content  # what was typed stays in the form


def test_only_admins_see_the_settings_page(client, cast):
    _login(client, "bob")
    assert client.get("/settings/sso/").status_code == 403
    assert client.post("/settings/sso/", GOOD).status_code == 403
    assert b"/settings/sso/" not in client.get("/settings/").content


def test_the_test_button_reports_discovery_and_keys(client, alice, sso_config, provider):
    _login(client, "alice")
    page = client.post("/settings/sso/test")
    assert page.status_code == 200
    assert b"Test passed" in page.content and b"1 signing key" in page.content
    provider.stop()
    page = client.post("/settings/sso/test")
    assert b"Test failed" in page.content and b"could not be reached" in page.content


def test_the_secret_never_appears_in_events_logs_or_pages(
    client, alice, sso_config, provider, org, caplog
):
    caplog.set_level(logging.DEBUG)
    sign_in(client, provider, "idp-zoe", email="zoe@acme.example", groups=["officers"])
    client.logout()
    sign_in(client, provider, "idp-zoe", email="zoe@acme.example", groups=["marketing"])
    _login(client, "alice")
    pages = [client.get(p).content for p in ("/settings/sso/", "/settings/", "/login/sso/")]
    pages.append(client.post("/settings/sso/test").content)
    bodies = [bytes(e.body) for e in LedgerEntry.objects.filter(org=org)]
    assert len(bodies) >= 3
    secret = CLIENT_SECRET.encode()
    assert not any(secret in b for b in bodies + pages)
    assert CLIENT_SECRET not in caplog.text
    assert CLIENT_ID.encode() in pages[0]


def test_removing_single_sign_on_lets_passwords_work_again(client, alice, cast, org):
    configure_sso(actor=alice, **GOOD, sso_required=True, break_glass_username="alice")
    _login(client, "alice")
    assert client.post("/settings/sso/remove").status_code == 302
    assert not SsoConfig.objects.exists()
    assert len(events(org, "sso.removed")) == 1
    client.logout()
    assert _login(client, "bob").status_code == 302
    assert json.dumps(events(org, "sso.removed")[0]).find(GOOD["client_secret"]) == -1
