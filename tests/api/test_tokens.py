"""API tokens: expiry (the organization's default and maximum), an admin's view and revocation
of everyone's tokens, and what the record says about them."""

import datetime as dt
import json
from typing import Any

from django.utils import timezone

from offboard.accounts.models import ApiToken, Organization
from offboard.core import clock
from offboard.ledger.models import LedgerEntry
from tests.api.conftest import Api, token_for


def _events(type_: str) -> list[dict[str, Any]]:
    return [
        json.loads(bytes(e.body))
        for e in LedgerEntry.objects.filter(type=type_).order_by("org", "index")
    ]


def test_a_token_without_an_expiry_gets_the_default_and_names_its_creator(api, cast):
    created = api("bob").post("/tokens", {"name": "CI", "scopes": ["read"]})

    assert created.status_code == 201, created.content
    body = created.json()
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert abs(expires - (timezone.now() + dt.timedelta(days=90))) < dt.timedelta(minutes=1)
    assert body["created_by"]["username"] == "bob"
    assert body["user"]["username"] == "bob"
    assert body["scopes"] == ["read"]
    token = ApiToken.objects.get(pk=body["id"])
    assert token.created_by == cast["bob"].user and token.scopes == ["read"]


def test_an_expiry_beyond_the_maximum_names_the_field_and_the_maximum(api):
    too_late = timezone.now() + dt.timedelta(days=400)

    response = api("bob").post("/tokens", {"name": "forever", "expires_at": too_late.isoformat()})

    assert response.status_code == 422
    (problem,) = response.json()["error"]["details"]["fields"]["expires_at"]
    assert "maximum token lifetime is 365 days" in problem
    assert not ApiToken.objects.filter(name="forever").exists()


def test_an_expiry_on_the_maximums_last_day_is_accepted(api):
    last_day = timezone.now() + dt.timedelta(days=365)

    response = api("bob").post("/tokens", {"name": "a year", "expires_at": last_day.isoformat()})

    assert response.status_code == 201, response.content


def test_an_expiry_in_the_past_is_refused(api):
    past = timezone.now() - dt.timedelta(hours=1)

    response = api("bob").post("/tokens", {"name": "old", "expires_at": past.isoformat()})

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"]["expires_at"] == ["must be in the future"]


def test_an_expired_token_is_unauthorized_and_says_when_and_what_to_do(api):
    soon = timezone.now() + dt.timedelta(days=1)
    plain = api("bob").post("/tokens", {"name": "short", "expires_at": soon.isoformat()})
    plain = plain.json()["token"]
    assert Api(plain).get("/me").status_code == 200
    ApiToken.objects.filter(name="short").update(last_used_at=None)

    with clock.pinned(soon + dt.timedelta(seconds=1)):
        response = Api(plain).get("/me")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "token_expired"
    assert f"expired at {soon.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" in error["message"]
    assert "Create a new token" in error["message"]
    assert plain not in response.content.decode()
    assert ApiToken.objects.get(name="short").last_used_at is None  # not counted as a use


def test_an_admin_sets_the_token_policy_with_one_event(api):
    events_before = LedgerEntry.objects.count()

    response = api("alice").put("/tokens/policy", {"default_days": 30, "max_days": 60})

    assert response.status_code == 200
    assert response.json() == {"default_days": 30, "max_days": 60}
    assert LedgerEntry.objects.count() == events_before + 1
    (event,) = _events("api_token.policy_changed")
    assert event["data"] == {
        "default_days": 30,
        "max_days": 60,
        "old": {"default_days": 90, "max_days": 365},
    }
    assert api("erin").get("/tokens/policy").json() == {"default_days": 30, "max_days": 60}
    created = api("bob").post("/tokens", {"name": "new default"}).json()
    expires = dt.datetime.fromisoformat(created["expires_at"])
    assert abs(expires - (timezone.now() + dt.timedelta(days=30))) < dt.timedelta(minutes=1)
    later = (timezone.now() + dt.timedelta(days=90)).isoformat()
    refused = api("bob").post("/tokens", {"name": "too long", "expires_at": later})
    assert "maximum token lifetime is 60 days" in refused.json()["error"]["message"]


def test_the_default_lifetime_may_not_pass_the_maximum(api, org):
    response = api("alice").put("/tokens/policy", {"default_days": 100, "max_days": 30})

    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["default_days"]
    org.refresh_from_db()
    assert (org.api_token_default_days, org.api_token_max_days) == (90, 365)


def test_a_member_may_not_change_the_token_policy(api):
    response = api("bob").put("/tokens/policy", {"default_days": 1, "max_days": 3650})

    assert response.status_code == 403
    assert Organization.objects.get(slug="acme").api_token_max_days == 365


def test_an_admin_lists_everyones_tokens_and_a_member_only_their_own(api, cast, mallory):
    token_for(cast["bob"], "bob's laptop")
    token_for(mallory, "mallory's")

    everyone = api("alice").get("/tokens", {"everyone": "true"})
    own = api("bob").get("/tokens")
    refused = api("bob").get("/tokens", {"everyone": "true"})

    assert everyone.status_code == 200
    owners = {(t["user"]["username"], t["name"]) for t in everyone.json()["items"]}
    assert ("bob", "bob's laptop") in owners
    assert {u for u, _ in owners} == set(cast)  # each of the cast has a token; not mallory
    assert {t["user"]["username"] for t in own.json()["items"]} == {"bob"}
    assert refused.status_code == 403


def test_an_admin_revokes_a_members_token_and_the_record_says_who_and_whose(api, cast):
    plain = token_for(cast["bob"], "bob's laptop")
    token = ApiToken.objects.get(name="bob's laptop")

    response = api("alice").delete(f"/members/{cast['bob'].user.pk}/tokens/{token.pk}")

    assert response.status_code == 200
    assert response.json()["revoked_by"]["username"] == "alice"
    assert Api(plain).get("/me").status_code == 401
    token.refresh_from_db()
    assert token.revoked_by == cast["alice"].user and token.revoked_at is not None
    (event,) = _events("api_token.revoked")
    assert event["actor"]["id"] == cast["alice"].user.pk
    assert event["actor"]["auth"] == "token"
    assert event["data"] == {
        "token_id": token.pk,
        "name": "bob's laptop",
        "prefix": token.prefix,
        "user_id": cast["bob"].user.pk,
        "username": "bob",
        "revoked_by": {"user_id": cast["alice"].user.pk, "username": "alice"},
        "own": False,
    }


def test_a_member_revokes_their_own_token_with_a_token(api, cast):
    token_for(cast["bob"], "old laptop")
    token = ApiToken.objects.get(name="old laptop")

    response = api("bob").delete(f"/tokens/{token.pk}")

    assert response.status_code == 200
    (event,) = _events("api_token.revoked")
    assert event["data"]["own"] is True
    assert event["data"]["revoked_by"]["username"] == "bob"


def test_a_member_cannot_see_or_revoke_a_colleagues_token(api, cast):
    token_for(cast["alice"], "alice's")
    alices = ApiToken.objects.get(name="alice's")

    by_id = api("bob").delete(f"/tokens/{alices.pk}")
    as_admin = api("bob").delete(f"/members/{cast['alice'].user.pk}/tokens/{alices.pk}")

    assert by_id.status_code == 404
    assert as_admin.status_code == 403
    assert as_admin.json()["error"]["code"] == "forbidden"
    alices.refresh_from_db()
    assert alices.revoked_at is None


def test_another_organizations_admin_finds_no_token(api, cast, mallory):
    token_for(cast["bob"], "bob's laptop")
    bobs = ApiToken.objects.get(name="bob's laptop")
    mallory_api = Api(token_for(mallory))

    for url in (f"/tokens/{bobs.pk}", f"/members/{cast['bob'].user.pk}/tokens/{bobs.pk}"):
        response = mallory_api.delete(url)
        assert response.status_code == 404, url
    listed = mallory_api.get("/tokens", {"everyone": "true"}).json()["items"]
    assert {t["user"]["username"] for t in listed} == {"mallory"}
    bobs.refresh_from_db()
    assert bobs.revoked_at is None


def test_the_created_event_records_scopes_and_expiry_never_the_token(api, cast):
    expires = "2027-01-31T12:00:00Z"
    with clock.pinned(dt.datetime(2026, 12, 20, tzinfo=dt.UTC)):
        created = api("dave").post(
            "/tokens", {"name": "ledger", "scopes": ["read", "exports"], "expires_at": expires}
        )
    assert created.status_code == 201, created.content
    plain = created.json()["token"]

    events = _events("api_token.created")
    event = next(e for e in events if e["data"]["name"] == "ledger")

    assert event["data"] == {
        "token_id": created.json()["id"],
        "name": "ledger",
        "prefix": plain.split("_")[1],
        "user_id": cast["dave"].user.pk,
        "scopes": ["read", "exports"],
        "expires_at": expires,
    }
    secret = plain.split("_", 2)[2]
    for entry in LedgerEntry.objects.all():
        assert secret not in bytes(entry.body).decode(), entry.type
    stored = ApiToken.objects.get(pk=created.json()["id"])
    assert secret not in json.dumps(
        {k: str(v) for k, v in ApiToken.objects.filter(pk=stored.pk).values().get().items()}
    )


def test_deactivation_records_who_revoked_the_members_tokens(api, cast):
    token_for(cast["oscar"], "oscar's")

    api("alice").post(f"/members/{cast['oscar'].user.pk}/deactivate", {"reason": "left"})

    token = ApiToken.objects.get(name="oscar's")
    assert token.revoked_at is not None and token.revoked_by == cast["alice"].user
