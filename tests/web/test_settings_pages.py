"""Settings: members and roles, API tokens shown once, the signing key and checkpoints, and the
time-stamping and email status (never a password)."""

import pytest
from django.test import Client

from offboard.accounts.models import ApiToken, Membership
from offboard.accounts.services import hash_token
from offboard.ledger.models import LedgerEntry


def logged_in(actor):
    c = Client()
    c.force_login(actor.user)
    return c


@pytest.fixture
def web(cast):
    return logged_in(cast["alice"])


def test_the_settings_page_lists_members_with_their_roles(web, cast):
    body = web.get("/settings/").content.decode()
    for name in cast:
        assert f'<td class="mono" data-label="Username">{name}</td>' in body
    assert 'name="role"' in body  # alice is an admin: she can change roles


def test_an_admin_changes_a_role_through_the_service(web, cast):
    oscar = cast["oscar"].user
    response = web.post(f"/settings/members/{oscar.pk}/role", {"role": "manager"})
    assert response.status_code == 302 and response["Location"].endswith("#members")
    assert Membership.objects.get(user=oscar).role == "manager"
    event = LedgerEntry.objects.filter(type="member.role_changed").last()
    assert event.data["role"] == "manager" and event.data["old"] == {"role": "operator"}


def test_an_operator_sees_roles_read_only_and_cannot_change_them(cast):
    oscar = logged_in(cast["oscar"])
    body = oscar.get("/settings/").content.decode()
    assert 'name="role"' not in body and "Only an admin can change roles" in body
    response = oscar.post(f"/settings/members/{cast['bob'].user.pk}/role", {"role": "admin"})
    assert response.status_code == 403
    assert "may not change members" in response.content.decode()
    assert Membership.objects.get(user=cast["bob"].user).role == "manager"


def test_the_last_admin_cannot_be_demoted_and_the_page_says_why(web, cast):
    response = web.post(f"/settings/members/{cast['alice'].user.pk}/role", {"role": "manager"})
    assert response.status_code == 422
    assert "must keep at least one active admin" in response.content.decode()
    assert Membership.objects.get(user=cast["alice"].user).role == "admin"


def test_another_organizations_member_is_a_404(web, mallory):
    response = web.post(f"/settings/members/{mallory.user.pk}/role", {"role": "auditor"})
    assert response.status_code == 404
    assert Membership.objects.get(user=mallory.user).role == "admin"


def test_a_new_api_token_is_shown_once_and_only_its_hash_is_kept(web, cast):
    response = web.post(
        "/settings/tokens/", {"name": "CRM integration", "scopes": ["read", "cases:write"]}
    )
    body = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(name="CRM integration")
    plain = body.split('id="new-token" class="mono token-out" type="text" readonly value="')[1]
    plain = plain.split('"')[0]
    assert plain.startswith("obt_") and hash_token(plain) == token.token_hash
    again = web.get("/settings/").content.decode()
    assert plain not in again and "CRM integration" in again
    # the token works against the API
    api = Client().get("/api/v1/cases", HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.status_code == 200


def test_a_token_needs_a_name(web):
    response = web.post("/settings/tokens/", {"name": "   "})
    assert response.status_code == 422
    assert "Name is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_a_token_and_someone_elses_is_a_404_for_a_member(cast):
    from offboard.accounts.services import create_api_token

    bob = logged_in(cast["bob"])
    mine, _ = create_api_token(actor=cast["bob"], name="laptop")
    alices, _ = create_api_token(actor=cast["alice"], name="alice's script")
    response = bob.post(f"/settings/tokens/{mine.pk}/revoke")
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    assert bob.post(f"/settings/tokens/{alices.pk}/revoke").status_code == 404
    alices.refresh_from_db()
    assert alices.revoked_at is None
    page = bob.get("/settings/").content.decode()
    assert "revoked" in page and "alice's script" not in page


def test_the_signing_key_and_recent_checkpoints_are_shown(web, org, case):
    import base64

    from offboard.ledger.checkpoints import issue_checkpoint
    from offboard.ledger.selectors import signing_keys

    checkpoint = issue_checkpoint(org=org, reason="manual")
    key = signing_keys(org).first()
    body = web.get("/settings/").content.decode()
    assert key.key_id in body and key.verifier_key in body
    assert base64.b64encode(bytes(checkpoint.root)).decode()[:16] in body
    assert f'<td class="num" data-label="Size">{checkpoint.size}</td>' in body
    assert "none requested" in body  # no TSA configured in tests


def test_tsa_and_email_status_never_show_the_password(web, settings):
    settings.OFFBOARD_TSA_URLS = ["http://tsa-a.example/", "http://tsa-b.example/"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "smtp.acme.example"
    settings.EMAIL_HOST_USER = "mailer"
    settings.EMAIL_HOST_PASSWORD = "hunter2-very-secret"
    body = web.get("/settings/").content.decode()
    assert "2 URLs" in body and "http://tsa-b.example/" in body
    assert "smtp.acme.example" in body and "mailer" in body and "password set" in body
    assert "hunter2-very-secret" not in body


def test_settings_run_a_bounded_number_of_queries(web, org, case, django_assert_max_num_queries):
    from offboard.accounts.models import Membership
    from offboard.connectors.services import create_connection
    from offboard.core.actor import Actor
    from offboard.ledger.checkpoints import issue_checkpoint

    for _ in range(3):
        issue_checkpoint(org=org, reason="manual")
    admin = Actor.from_membership(Membership.objects.filter(org=org, role="admin").first())
    for n in range(3):  # rows of the connections card
        create_connection(
            actor=admin,
            name=f"Directory {n}",
            kind="scim",
            config={"url": "http://127.0.0.1:9/v2"},
            secret="not-a-real-token",
        )
    # Members, tokens, calendar feed, inbound and outbound webhooks, connections, reminder
    # choices, keys, checkpoints: a query or two each, never one per row; and, on every page,
    # one for the organization's second-factor policy (offboard.mfa.middleware).
    with django_assert_max_num_queries(16):
        assert web.get("/settings/").status_code == 200


# --- adding members, and changing one's password --------------------------------------------------


def test_an_admin_adds_a_member_whose_first_password_is_shown_once(web, org):
    import re

    response = web.post(
        "/settings/members/",
        {
            "username": "fiona",
            "first_name": "Fiona",
            "last_name": "Field",
            "email": "fiona@acme.example",
            "role": "operator",
        },
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.content.decode()
    password = re.search(r'id="new-member-password"[^>]*value="([^"]+)"', body)[1]
    member = Membership.objects.get(org=org, user__username="fiona")
    assert member.role == "operator" and member.user.get_full_name() == "Fiona Field"
    assert member.user.check_password(password) and password not in member.user.password
    event = LedgerEntry.objects.order_by("-index").first()
    assert event.type == "member.added" and event.data["role"] == "operator"
    assert password not in str(event.event)
    assert password not in web.get("/settings/").content.decode()  # shown once
    fiona = Client()
    assert fiona.login(username="fiona", password=password)
    assert fiona.get("/cases/").status_code == 200


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"username": "x"}, "username", "must be 2-150 letters"),
        ({"username": "bob"}, "username", "&#x27;bob&#x27; is already taken"),
        ({"email": "not-an-address"}, "email", "is not an email address"),
        ({"role": "owner"}, "role", "&#x27;owner&#x27; is not one of"),
    ],
)
def test_a_refused_member_keeps_the_form_and_names_the_field(web, org, fields, field, words):
    data = {"username": "fiona", "email": "fiona@acme.example", "role": "operator", **fields}
    before = Membership.objects.filter(org=org).count()
    response = web.post("/settings/members/", data)
    assert response.status_code == 422
    body = response.content.decode()
    assert f'id="member-{field}-error"' in body and words in body
    assert '<details class="add-member" open>' in body
    assert Membership.objects.filter(org=org).count() == before


def test_only_an_admin_adds_members(cast, org):
    bob = logged_in(cast["bob"])
    assert "Add a member" not in bob.get("/settings/").content.decode()
    response = bob.post("/settings/members/", {"username": "fiona", "role": "admin"})
    assert response.status_code == 403
    assert not Membership.objects.filter(org=org, user__username="fiona").exists()


def test_a_member_changes_their_password(cast):
    web = Client()
    assert web.login(username="oscar", password="correct horse 1")
    page = web.get("/settings/password/")
    assert page.status_code == 200 and "Change password" in page.content.decode()
    wrong = web.post(
        "/settings/password/",
        {"old_password": "nope", "new_password1": "x", "new_password2": "y"},
    )
    assert wrong.status_code == 200 and "field-error" in wrong.content.decode()
    done = web.post(
        "/settings/password/",
        {
            "old_password": "correct horse 1",
            "new_password1": "a much longer passphrase 7",
            "new_password2": "a much longer passphrase 7",
        },
        follow=True,
    )
    assert "Your password was changed." in done.content.decode()
    assert Client().login(username="oscar", password="a much longer passphrase 7")


def test_an_admin_deactivates_a_colleague_who_left(web, cast, org, case):
    from offboard.accounts.services import create_api_token

    _, plain = create_api_token(actor=cast["bob"], name="bob's script")
    bob_session = logged_in(cast["bob"])
    response = web.post(
        f"/settings/members/{cast['bob'].user.pk}/deactivate", {"reason": "Left the company"}
    )
    assert response.status_code == 302
    bob = cast["bob"].user
    bob.refresh_from_db()
    assert not bob.is_active
    assert not Client().login(username="bob", password="correct horse 1")
    assert bob_session.get("/cases/").status_code == 302  # the open session ends too
    api = Client().get("/api/v1/cases", HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.status_code == 401
    # (bob's refused log-in after it is recorded too: offboard.security)
    event = LedgerEntry.objects.filter(type="member.deactivated").order_by("-index").first()
    assert event.type == "member.deactivated" and event.data["reason"] == "Left the company"
    assert len(event.data["tokens_revoked"]) == 1
    body = web.get("/settings/").content.decode()
    assert "deactivated" in body and "Reactivate" in body

    assert web.post(f"/settings/members/{bob.pk}/reactivate").status_code == 302
    assert Client().login(username="bob", password="correct horse 1")
    latest = [e.type for e in LedgerEntry.objects.order_by("-index")[:2]]
    assert latest == ["member.signed_in", "member.reactivated"]  # his sign-in is recorded too


def test_deactivating_an_owner_names_their_open_cases_and_needs_an_admin(cast, case):
    from offboard.accounts.services import change_role

    carol = logged_in(cast["carol"])  # a manager: refused
    assert carol.post(f"/settings/members/{cast['alice'].user.pk}/deactivate").status_code == 403
    cast["alice"].user.refresh_from_db()
    assert cast["alice"].user.is_active
    bob_member = Membership.objects.get(user=cast["bob"].user)
    change_role(actor=cast["alice"], membership=bob_member, role="admin")
    bob = logged_in(cast["bob"])
    response = bob.post(f"/settings/members/{cast['alice'].user.pk}/deactivate")
    assert response.status_code == 302
    event = LedgerEntry.objects.order_by("-index").first()
    assert event.type == "member.deactivated" and event.data["open_cases_owned"] == [case.ref]


def test_the_last_active_admin_and_oneself_cannot_be_deactivated(web, cast):
    from offboard.accounts.services import deactivate_member
    from offboard.core.errors import Conflict

    response = web.post(f"/settings/members/{cast['alice'].user.pk}/deactivate")
    assert response.status_code == 422
    assert "cannot deactivate yourself" in response.content.decode()
    cast["alice"].user.refresh_from_db()
    assert cast["alice"].user.is_active
    # Through the service, by another actor with the right: alice is the last active admin.
    system = cast["alice"].__class__(
        user=cast["bob"].user, org=cast["alice"].org, role="admin", auth_method="test"
    )
    with pytest.raises(Conflict) as refused:
        deactivate_member(actor=system, membership=Membership.objects.get(user=cast["alice"].user))
    assert refused.value.code == "last_admin"


def test_a_deactivated_member_cannot_be_given_work(web, cast, case):
    from offboard.cases.services import update_case
    from offboard.core.errors import ValidationFailed

    web.post(f"/settings/members/{cast['oscar'].user.pk}/deactivate", {"reason": "Left"})
    page = web.get(f"/cases/{case.ref}/").content.decode()
    assert f'<option value="{cast["bob"].user.pk}"' in page  # active members are offered
    assert f'<option value="{cast["oscar"].user.pk}"' not in page
    with pytest.raises(ValidationFailed) as refused:
        update_case(actor=cast["bob"], case=case, owner_id=cast["oscar"].user.pk)
    assert "oscar is deactivated" in refused.value.errors["owner_id"][0]


# --- API tokens: scopes, expiry, an admin's view of everyone's -------------------------------


def test_the_token_form_offers_every_scope_and_fills_in_the_default_expiry(cast):
    import datetime as dt

    from django.utils import timezone

    from offboard.core.scopes import ALL_SCOPES

    body = logged_in(cast["bob"]).get("/settings/").content.decode()

    for name in ALL_SCOPES:
        assert f'name="scopes" value="{name}" checked' in body
    default = (timezone.now() + dt.timedelta(days=90)).date().isoformat()
    maximum = (timezone.now() + dt.timedelta(days=365)).date().isoformat()
    assert f'name="expires_at" value="{default}" min=' in body
    assert f'max="{maximum}"' in body
    assert "Token lifetimes" not in body  # bob is no admin


def test_a_token_made_on_the_page_has_the_scopes_and_expiry_chosen(cast):
    import datetime as dt

    bob = logged_in(cast["bob"])
    response = bob.post(
        "/settings/tokens/",
        {"name": "reporting", "scopes": ["read", "exports"], "expires_at": "2027-01-15"},
    )

    assert response.status_code == 200, response.content.decode()
    token = ApiToken.objects.get(name="reporting")
    assert token.scopes == ["read", "exports"]
    assert token.expires_at == dt.datetime(2027, 1, 15, 23, 59, 59, tzinfo=dt.UTC)
    assert token.created_by == cast["bob"].user
    body = response.content.decode()
    assert "read, exports" in body and "15 Jan 2027" in body


def test_the_page_refuses_an_expiry_past_the_maximum_and_keeps_what_was_typed(cast):
    bob = logged_in(cast["bob"])
    response = bob.post(
        "/settings/tokens/", {"name": "forever", "scopes": ["read"], "expires_at": "2099-01-01"}
    )

    body = response.content.decode()
    assert response.status_code == 422
    assert "maximum token lifetime is 365 days" in body
    assert 'value="forever"' in body and 'value="2099-01-01"' in body
    assert 'name="scopes" value="read" checked' in body
    assert 'name="scopes" value="admin" checked' not in body
    assert not ApiToken.objects.filter(name="forever").exists()


def test_a_token_needs_a_scope(cast):
    response = logged_in(cast["bob"]).post("/settings/tokens/", {"name": "none"})

    assert response.status_code == 422
    assert "choose at least one scope" in response.content.decode()


def test_an_admin_sees_everyones_tokens_and_revokes_a_members(web, cast, mallory):
    from offboard.accounts.services import create_api_token

    bobs, _ = create_api_token(actor=cast["bob"], name="bob-script")
    mallorys, _ = create_api_token(actor=mallory, name="mallory-script")

    page = web.get("/settings/").content.decode()
    assert "bob-script" in page and "mallory-script" not in page
    assert 'data-label="Member">Bob</td>' in page
    assert web.post(f"/settings/tokens/{bobs.pk}/revoke").status_code == 302
    bobs.refresh_from_db()
    assert bobs.revoked_by == cast["alice"].user
    assert "revoked" in web.get("/settings/").content.decode()
    assert web.post(f"/settings/tokens/{mallorys.pk}/revoke").status_code == 404
    mallorys.refresh_from_db()
    assert mallorys.revoked_at is None
    event = LedgerEntry.objects.filter(type="api_token.revoked").get()
    assert event.data["username"] == "bob" and event.data["revoked_by"]["username"] == "alice"


def test_an_admin_sets_the_token_lifetimes_on_the_page(web, org, cast):
    response = web.post("/settings/tokens/policy", {"default_days": "30", "max_days": "60"})

    assert response.status_code == 302 and response["Location"].endswith("#tokens")
    org.refresh_from_db()
    assert (org.api_token_default_days, org.api_token_max_days) == (30, 60)
    assert LedgerEntry.objects.filter(type="api_token.policy_changed").count() == 1
    bad = web.post("/settings/tokens/policy", {"default_days": "90", "max_days": "60"})
    assert bad.status_code == 422
    assert "must not be longer than the maximum (60 days)" in bad.content.decode()
    refused = logged_in(cast["bob"]).post(
        "/settings/tokens/policy", {"default_days": "1", "max_days": "2"}
    )
    assert refused.status_code == 403
    org.refresh_from_db()
    assert org.api_token_max_days == 60
