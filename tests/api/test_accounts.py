"""Authentication with bearer tokens, the token endpoints, and the organization's members."""

from django.apps import apps

from offboard.accounts.models import ApiToken, Membership, User
from offboard.ledger.models import LedgerEntry
from tests.api.conftest import Api, token_for


def test_a_request_without_a_token_is_unauthorized(cast):
    response = Api(None).get("/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in response.json()["error"]["message"]


def test_a_wrong_token_is_unauthorized(cast):
    real = token_for(cast["alice"])

    for wrong in ("obt_nope", real[:-1] + ("A" if real[-1] != "A" else "B"), "Basic abc"):
        response = Api(wrong).get("/me")
        assert response.status_code == 401, wrong
        assert response.json()["error"]["code"] == "unauthorized"


def test_a_revoked_token_is_unauthorized(api, cast):
    plain = token_for(cast["bob"], "laptop")
    bob = Api(plain)
    token_id = ApiToken.objects.get(name="laptop").pk
    assert bob.get("/me").status_code == 200

    revoked = api("bob").delete(f"/tokens/{token_id}")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert ApiToken.objects.get(pk=token_id).revoked_at is not None
    assert bob.get("/me").status_code == 401
    assert api("bob").get("/me").status_code == 200  # bob's other token still works


def test_a_token_is_shown_once_and_stored_only_as_its_hash(api):
    created = api("alice").post("/tokens", {"name": "CI pipeline"})

    assert created.status_code == 201
    plain = created.json()["token"]
    assert plain.startswith("obt_")
    assert Api(plain).get("/me").json()["user"]["username"] == "alice"
    listed = api("alice").get("/tokens").json()["items"]
    assert {t["name"] for t in listed} == {"tests", "CI pipeline"}
    assert all("token" not in t for t in listed)
    secret_part = plain.split("_", 2)[2]
    for model in apps.get_models():
        for row in model.objects.all().values():
            assert not any(secret_part in str(value) for value in row.values()), model.__name__


def test_an_auditor_manages_their_own_tokens(api):
    created = api("erin").post("/tokens", {"name": "export script"})

    assert created.status_code == 201
    assert api("erin").delete(f"/tokens/{created.json()['id']}").status_code == 200


def test_you_cannot_revoke_someone_elses_token(api, cast):
    token_for(cast["bob"], "bob's laptop")
    bobs = ApiToken.objects.get(name="bob's laptop")

    response = api("alice").delete(f"/tokens/{bobs.pk}")

    assert response.status_code == 404
    bobs.refresh_from_db()
    assert bobs.revoked_at is None


def test_me_names_the_user_the_organization_and_the_role(api):
    me = api("dave").get("/me").json()

    assert me["user"]["username"] == "dave"
    assert me["org"] == {"slug": "acme", "name": "Acme Digital"}
    assert me["role"] == "finance"
    assert me["auth_method"] == "token"


def test_members_are_listed_with_their_roles(api):
    members = api("erin").get("/members").json()

    assert members["count"] == 6
    assert {m["user"]["username"]: m["role"] for m in members["items"]}["oscar"] == "operator"


def test_an_admin_adds_a_member(api):
    response = api("alice").post(
        "/members",
        {
            "username": "frank",
            "role": "operator",
            "email": "frank@acme.example",
            "password": "long enough",
        },
    )

    assert response.status_code == 201, response.content
    assert response.json()["user"]["username"] == "frank"
    membership = Membership.objects.get(user__username="frank")
    assert membership.role == "operator"
    assert membership.user.check_password("long enough")
    assert LedgerEntry.objects.filter(type="member.added").count() == 1


def test_a_member_without_a_password_cannot_log_in(api):
    api("alice").post("/members", {"username": "grace", "role": "auditor"})

    assert not User.objects.get(username="grace").has_usable_password()


def test_adding_a_taken_username_names_the_field(api):
    response = api("alice").post("/members", {"username": "bob", "role": "operator"})

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"] == {"username": ["'bob' is already taken"]}


def test_a_manager_may_not_add_members(api):
    response = api("bob").post("/members", {"username": "zed", "role": "admin"})

    assert response.status_code == 403
    assert not User.objects.filter(username="zed").exists()


def test_an_admin_changes_a_role(api, cast):
    response = api("alice").patch(f"/members/{cast['oscar'].user.pk}", {"role": "manager"})

    assert response.status_code == 200
    assert response.json()["role"] == "manager"
    assert Membership.objects.get(user=cast["oscar"].user).role == "manager"


def test_the_last_admin_cannot_be_demoted(api, cast):
    response = api("alice").patch(f"/members/{cast['alice'].user.pk}", {"role": "manager"})

    assert response.status_code == 409
    assert "at least one active admin" in response.json()["error"]["message"]
    assert Membership.objects.get(user=cast["alice"].user).role == "admin"


def test_a_role_must_be_one_of_the_five(api, cast):
    response = api("alice").patch(f"/members/{cast['oscar'].user.pk}", {"role": "overlord"})

    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["role"]


def test_an_admin_deactivates_and_reactivates_a_member(api, cast):
    oscar_token = token_for(cast["oscar"])
    response = api("alice").post(
        f"/members/{cast['oscar'].user.pk}/deactivate", {"reason": "Contract ended"}
    )
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert Api(oscar_token).get("/me").status_code == 401  # the token stops at once
    listed = {
        m["user"]["username"]: m["active"] for m in api("alice").get("/members").json()["items"]
    }
    assert listed["oscar"] is False and listed["alice"] is True
    again = api("alice").post(f"/members/{cast['oscar'].user.pk}/deactivate", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_inactive"
    back = api("alice").post(f"/members/{cast['oscar'].user.pk}/reactivate", {})
    assert back.status_code == 200 and back.json()["active"] is True
    assert Api(oscar_token).get("/me").status_code == 401  # old tokens stay revoked


def test_a_manager_cannot_deactivate_and_nobody_deactivates_themselves(api, cast):
    refused = api("bob").post(f"/members/{cast['oscar'].user.pk}/deactivate", {})
    assert refused.status_code == 403
    own = api("alice").post(f"/members/{cast['alice'].user.pk}/deactivate", {})
    assert own.status_code == 409 and own.json()["error"]["code"] == "self"
    assert User.objects.get(pk=cast["oscar"].user.pk).is_active
