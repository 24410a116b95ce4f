"""The registers: field rules, secrets refused, order of revocation, roles, one event each."""

import pytest

from offboard.cases import selectors
from offboard.cases.models import AccessGrant, HandoverItem
from offboard.cases.services import add_register_item, complete_step, update_register_item
from offboard.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from offboard.core.secretscan import secret_reason
from offboard.ledger.models import LedgerEntry
from tests.factories import upload

SECRETS = [
    "password: Hunter2!",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "https://admin:s3cr3t@ftp.northwind.example/",
    "xK9#mP2$vL8@nQ4&wR7!tY3",
]
REFERENCES = [
    "1Password vault 'Northwind' entry 'Google Ads admin'",
    "https://github.com/northwind/site",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "Registrar: Gandi, account northwind-it",
]


@pytest.mark.parametrize("value", SECRETS)
def test_handover_fields_refuse_values_that_look_like_secrets(case, alice, value):
    before = HandoverItem.objects.count(), LedgerEntry.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        add_register_item(
            actor=alice,
            case=case,
            register="handover_items",
            values={"kind": "vault_entry", "name": "Ads admin", "reference": value},
        )
    assert "never the secret itself" in exc.value.errors["reference"][0]
    assert (HandoverItem.objects.count(), LedgerEntry.objects.count()) == before


@pytest.mark.parametrize("value", REFERENCES)
def test_references_to_secrets_are_accepted(value):
    assert secret_reason(value) is None


def test_unknown_fields_and_bad_values_are_named(case, alice):
    with pytest.raises(ValidationFailed) as exc:
        add_register_item(
            actor=alice,
            case=case,
            register="access_grants",
            values={
                "direction": "sideways",
                "system": "",
                "planned_action": "revoke",
                "colour": "red",
            },
        )
    assert set(exc.value.errors) == {"direction", "system", "colour"}


def test_our_access_is_revoked_only_after_ownership_is_transferred(case, alice):
    transfer = add_register_item(
        actor=alice,
        case=case,
        register="access_grants",
        values={
            "direction": "provider_in_client",
            "system": "Google Ads",
            "principal": "MCC owner",
            "planned_action": "transfer",
        },
    )
    ours = add_register_item(
        actor=alice,
        case=case,
        register="access_grants",
        values={
            "direction": "provider_in_client",
            "system": "Google Ads",
            "principal": "agency logins",
            "planned_action": "revoke",
        },
    )
    with pytest.raises(ValidationFailed) as exc:
        update_register_item(actor=alice, item=ours, values={"status": "revoked"})
    assert "transfer ownership of Google Ads first" in exc.value.errors["status"][0]
    update_register_item(actor=alice, item=transfer, values={"status": "transferred"})
    update_register_item(actor=alice, item=ours, values={"status": "revoked"})
    assert AccessGrant.objects.get(pk=ours.pk).status == "revoked"


def test_an_attested_revocation_needs_evidence(case, alice):
    grant = add_register_item(
        actor=alice,
        case=case,
        register="access_grants",
        values={
            "direction": "client_in_provider",
            "system": "Jira",
            "principal": "client PM",
            "planned_action": "revoke",
            "status": "revoked",
        },
    )
    with pytest.raises(ValidationFailed) as exc:
        update_register_item(actor=alice, item=grant, values={"verification_level": "attested"})
    assert "evidence" in exc.value.errors
    shot = upload(alice, b"\x89PNG\r\n\x1a\nscreenshot", "jira-users.png")
    update_register_item(
        actor=alice, item=grant, values={"verification_level": "attested"}, evidence=[shot]
    )
    grant.refresh_from_db()
    assert grant.verified_by == alice.user and grant.verified_at is not None
    event = LedgerEntry.objects.filter(case=case).last()
    assert event.type == "access_grant.verified"
    assert event.files == [shot.sha256]
    assert shot.media_type == "image/png"


def test_status_changes_are_the_event_verb_with_old_values(case, alice):
    grant = case.access_grants.filter(planned_action="revoke").first()
    update_register_item(actor=alice, item=grant, values={"status": "revoked"})
    event = LedgerEntry.objects.filter(case=case).last()
    assert event.type == "access_grant.revoked"
    assert event.data["old"] == {"status": "active"}
    assert event.data["item"]["status"] == "revoked"
    assert event.actor["username"] == "alice"


def test_settlements_are_for_finance_not_operators(case, cast):
    s = add_register_item(
        actor=cast["dave"],
        case=case,
        register="settlements",
        values={"kind": "refund", "amount": "120.5", "currency": "eur"},
    )
    assert str(s.amount) == "120.50" and s.currency == "EUR"
    with pytest.raises(PermissionDenied):
        update_register_item(actor=cast["oscar"], item=s, values={"status": "paid"})
    with pytest.raises(PermissionDenied):
        update_register_item(
            actor=cast["dave"], item=case.access_grants.first(), values={"notes": "x"}
        )
    with pytest.raises(PermissionDenied):
        add_register_item(
            actor=cast["erin"], case=case, register="deliverables", values={"title": "x"}
        )


def test_a_step_waits_for_its_dependencies_and_evidence(case, alice):
    step = next(s for s in case.steps.all() if s.depends_on)
    with pytest.raises(Conflict) as exc:
        complete_step(actor=alice, step=step, note="done")
    assert exc.value.code == "dependencies_pending"
    first = next(s for s in case.steps.all() if s.evidence_required and not s.depends_on)
    with pytest.raises(ValidationFailed) as exc2:
        complete_step(actor=alice, step=first)
    assert "needs evidence" in exc2.value.message


def test_another_organizations_case_is_not_found(case, mallory):
    with pytest.raises(NotFound):
        selectors.get_case(mallory.org, case.ref)
    with pytest.raises(NotFound):
        selectors.get_register_item(selectors.get_case(case.org, case.ref), "deliverables", 10**9)


def test_finance_completes_the_steps_its_role_owns_but_no_others(case, cast):
    from offboard.cases.services import mark_step_not_applicable

    dave = cast["dave"]
    finance_step = next(s for s in case.steps.all() if s.owner_role == "finance")
    other = next(
        s
        for s in case.steps.all()
        if s.owner_role not in ("finance",) and s.owner_id != dave.user.pk
    )
    mark_step_not_applicable(
        actor=dave, step=finance_step, reason="Invoiced under the master agreement"
    )
    with pytest.raises(PermissionDenied):
        mark_step_not_applicable(actor=dave, step=other, reason="x")
    with pytest.raises(PermissionDenied):
        mark_step_not_applicable(actor=cast["erin"], step=other, reason="x")
