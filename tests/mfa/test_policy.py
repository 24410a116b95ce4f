"""The organization's second-factor policy: approvals and closures refused without a second
factor passed in the session (web, API token), allowed with one, the CLI's operator exempt;
with "everyone", a member without a factor is sent to enrol before anything else."""

import dataclasses

import pytest
from django.test import Client

from offboard.accounts.signin import MODEL_BACKEND
from offboard.cases.services import approve_case, close_case, enter_closing
from offboard.cases.state import fresh, state_digest
from offboard.core.errors import PermissionDenied
from offboard.ledger.models import LedgerEntry
from offboard.mfa.services import set_policy
from tests.factories import close_with_approvals, settle_everything
from tests.mfa.conftest import code_at, enrol_totp, password_step, signed_in

REFUSAL = "Your organization requires a second factor for approvals and closures"


@pytest.fixture
def closing(case, cast):
    case = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=case)
    return fresh(case)


def policy(cast, required_for):
    set_policy(actor=cast["alice"], required_for=required_for)


def approve(actor, case):
    return approve_case(
        actor=actor, case=case, decision="approved", state_digest_seen=state_digest(fresh(case))
    )


def with_(actor, **how):
    return dataclasses.replace(actor, **how)


def test_under_the_approvers_policy_an_approval_without_a_second_factor_is_refused(closing, cast):
    policy(cast, "approvers")
    bob = with_(cast["bob"], auth_method="session")
    with pytest.raises(PermissionDenied) as refused:
        approve(bob, closing)
    assert REFUSAL in refused.value.message
    assert "Settings → Security" in refused.value.message
    assert not fresh(closing).approvals.exists()
    approval = approve(with_(bob, second_factor="totp"), closing)
    assert approval.decision == "approved"
    event = LedgerEntry.objects.filter(type="case.approved").get()
    assert event.actor["second_factor"] == "totp"


def test_an_api_token_carries_no_second_factor(closing, cast):
    policy(cast, "everyone")
    with pytest.raises(PermissionDenied) as refused:
        approve(with_(cast["bob"], auth_method="token"), closing)
    assert REFUSAL in refused.value.message and "API token" in refused.value.message


def test_the_cli_operator_is_exempt(closing, cast):
    policy(cast, "everyone")
    approve(with_(cast["bob"], auth_method="cli"), closing)
    assert fresh(closing).approvals.count() == 1


def test_under_the_approvers_policy_a_closure_without_a_second_factor_is_refused(closing, cast):
    case = closing
    digest = state_digest(fresh(case))
    for name in ("bob", "carol"):
        approve_case(
            actor=with_(cast[name], second_factor="webauthn"),
            case=case,
            decision="approved",
            state_digest_seen=digest,
        )
    policy(cast, "approvers")
    with pytest.raises(PermissionDenied) as refused:
        close_case(actor=with_(cast["alice"], auth_method="session"), case=case)
    assert REFUSAL in refused.value.message
    assert fresh(case).state == "closing"
    closed = close_case(actor=with_(cast["alice"], second_factor="totp"), case=case)
    assert closed.state == "closed"


def test_with_the_policy_off_nothing_changes(case, cast):
    case = settle_everything(case, cast)
    assert close_with_approvals(case, cast).state == "closed"
    event = LedgerEntry.objects.filter(type="case.closed").get()
    assert "second_factor" not in event.actor  # older events' shape, unchanged


def test_the_approvers_policy_does_not_cover_an_auditor_or_operator(cast):
    from offboard.mfa.policy import covers

    policy(cast, "approvers")
    org = cast["alice"].org
    assert [
        r for r in ("admin", "manager", "finance", "operator", "auditor") if covers(org, r)
    ] == [
        "admin",
        "manager",
        "finance",
    ]


def test_on_the_web_an_approval_needs_the_sign_in_with_the_second_factor(closing, cast, timeline):
    policy(cast, "approvers")
    secret, _ = enrol_totp(cast["bob"], timeline)
    url = f"/cases/{closing.ref}/approve"
    form = {"decision": "approved", "state_digest_seen": state_digest(fresh(closing))}

    # bob signed in before (a session without the factor): refused, with the way out
    stale = Client()
    stale.force_login(cast["bob"].user, backend=MODEL_BACKEND)
    refused = stale.post(url, form)
    assert refused.status_code == 403
    assert REFUSAL in refused.content.decode()
    assert not fresh(closing).approvals.exists()

    c = Client()
    password_step(c, "bob")
    c.post("/login/verify/", {"code": code_at(secret, timeline.at)})
    assert signed_in(c)
    done = c.post(url, form)
    assert done.status_code in (200, 302)
    approval = fresh(closing).approvals.get()
    assert approval.approver_id == cast["bob"].user.pk
    event = LedgerEntry.objects.filter(type="case.approved").get()
    assert event.actor["second_factor"] == "totp" and event.actor["auth"] == "session"


def test_under_everyone_a_member_without_a_factor_is_sent_to_enrol(cast, timeline):
    policy(cast, "everyone")
    c = Client()
    response = password_step(c, "erin")
    assert signed_in(c)
    for url in ("/", "/cases/", "/settings/"):
        sent = c.get(url)
        assert sent.status_code == 302, url
        assert sent["Location"] == "/settings/security/factors/?required=1"
    page = c.get(sent["Location"])
    assert page.status_code == 200
    assert "requires a second factor for everyone" in page.content.decode()
    assert response.status_code == 302

    c.post("/settings/security/factors/totp/start")
    from offboard.mfa.services import pending_totp

    secret = pending_totp(cast["erin"].user).secret
    c.post("/settings/security/factors/totp/confirm", {"code": code_at(secret, timeline.at)})
    assert c.get("/").status_code == 200
    # the log-out and the API stay reachable whatever the policy
    assert Client().get("/login/").status_code == 200


def test_under_everyone_a_member_with_a_factor_goes_on(cast, timeline):
    secret, _ = enrol_totp(cast["bob"], timeline)
    policy(cast, "everyone")
    c = Client()
    password_step(c, "bob")
    c.post("/login/verify/", {"code": code_at(secret, timeline.at)})
    assert c.get("/").status_code == 200


def test_only_an_admin_sets_the_policy_and_each_change_is_recorded(cast):
    bob = Client()
    bob.force_login(cast["bob"].user, backend=MODEL_BACKEND)
    refused = bob.post("/settings/security/factors/policy", {"required_for": "nobody"})
    assert refused.status_code == 403
    assert not LedgerEntry.objects.filter(type="mfa.policy_changed").exists()

    alice = Client()
    alice.force_login(cast["alice"].user, backend=MODEL_BACKEND)
    alice.post("/settings/security/factors/policy", {"required_for": "approvers"})
    alice.post("/settings/security/factors/policy", {"required_for": "everyone"})
    bad = alice.post("/settings/security/factors/policy", {"required_for": "some"}, follow=True)
    assert "is not one of" in bad.content.decode()
    changes = [
        e.data for e in LedgerEntry.objects.filter(type="mfa.policy_changed").order_by("index")
    ]
    assert changes == [
        {"required_for": "approvers", "old": {"required_for": "nobody"}},
        {"required_for": "everyone", "old": {"required_for": "approvers"}},
    ]
