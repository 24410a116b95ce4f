"""Each gate blocks closure with its code and a message naming the objects."""

import datetime as dt

import pytest
from django.utils import timezone

from offboard.cases.gates import unmet_gates
from offboard.cases.models import AccessGrant, DataDisposition, Deliverable, Settlement
from offboard.cases.services import (
    add_register_item,
    close_case,
    enter_closing,
    grant_waiver,
    update_register_item,
)
from offboard.cases.state import fresh
from offboard.core.errors import GatesUnmet
from tests.factories import settle_everything, upload


def codes(case):
    return [g.code for g in unmet_gates(fresh(case))]


@pytest.fixture
def settled(case, cast):
    return settle_everything(case, cast)


def test_a_new_case_lists_every_kind_of_unmet_gate(case):
    found = codes(case)
    for code in (
        "steps.incomplete",
        "deliverables.not_accepted",
        "handover.incomplete",
        "access.not_revoked",
        "data.not_disposed",
        "settlement.open",
        "approvals.missing",
    ):
        assert code in found


def test_a_settled_case_only_waits_for_approvals(settled):
    assert codes(settled) == ["approvals.missing"]


def test_closing_is_refused_with_every_unmet_gate(case, alice):
    with pytest.raises(GatesUnmet) as exc:
        close_case(actor=alice, case=case)
    gate_codes = [g["code"] for g in exc.value.details["gates"]]
    assert "steps.incomplete" in gate_codes and "approvals.missing" in gate_codes
    assert f"Cannot close case {case.ref}" in exc.value.message
    assert fresh(case).state == "active"


def test_entering_closing_is_refused_while_a_deliverable_is_unaccepted(settled, alice):
    d = settled.deliverables.first()
    update_register_item(actor=alice, item=d, values={"status": "delivered"})
    with pytest.raises(GatesUnmet) as exc:
        enter_closing(actor=alice, case=settled)
    gate = next(g for g in exc.value.details["gates"] if g["code"] == "deliverables.not_accepted")
    assert d.title in gate["message"]
    assert gate["objects"] == [
        {"type": "deliverable", "id": d.pk, "label": f"{d.title} [delivered]"}
    ]


def test_a_revoked_but_unverified_grant_blocks_with_its_system_named(settled, alice):
    grant = add_register_item(
        actor=alice,
        case=settled,
        register="access_grants",
        values={
            "direction": "provider_in_client",
            "system": "GitHub",
            "principal": "agency-bot",
            "planned_action": "revoke",
        },
    )
    assert "access.not_revoked" in codes(settled)
    update_register_item(actor=alice, item=grant, values={"status": "revoked"})
    gates = unmet_gates(fresh(settled))
    gate = next(g for g in gates if g.code == "access.unverified")
    assert "GitHub: agency-bot" in gate.message
    assert "Verify each revocation" in gate.resolve


def test_access_kept_needs_a_waiver_in_force(settled, cast):
    alice, bob = cast["alice"], cast["bob"]
    grant = add_register_item(
        actor=alice,
        case=settled,
        register="access_grants",
        values={
            "direction": "client_in_provider",
            "system": "Status page",
            "principal": "client ops",
            "planned_action": "keep",
            "keep_reason": "They keep read access to the incident history",
        },
    )
    assert "access.kept_without_waiver" in codes(settled)
    grant_waiver(
        actor=bob,
        case=settled,
        target_type="access_grant",
        target_id=grant.pk,
        justification="Agreed in exit letter §3",
        expires_at=timezone.now() + dt.timedelta(days=30),
    )
    assert "access.kept_without_waiver" not in codes(settled)


def test_an_expired_waiver_no_longer_covers_its_item(settled, cast, settings):
    alice, bob = cast["alice"], cast["bob"]
    d = add_register_item(
        actor=alice, case=settled, register="deliverables", values={"title": "Brand book v2"}
    )
    grant_waiver(
        actor=bob,
        case=settled,
        target_type="deliverable",
        target_id=d.pk,
        justification="Client dropped it in writing",
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    assert "deliverables.not_accepted" not in codes(settled)
    later = timezone.now() + dt.timedelta(hours=2)
    from unittest import mock

    with mock.patch("offboard.core.clock.now", return_value=later):
        gates = unmet_gates(fresh(settled))
    gate = next(g for g in gates if g.code == "deliverables.not_accepted")
    assert "waiver expired" in gate.message


def test_a_legal_hold_blocks_deletion(settled, alice):
    item = add_register_item(
        actor=alice,
        case=settled,
        register="data_dispositions",
        values={
            "dataset": "Payroll exports",
            "location": "Backups",
            "action": "delete",
            "method": "nist_purge",
            "legal_hold": True,
        },
    )
    assert "data.legal_hold" in codes(settled)
    from offboard.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as exc:
        update_register_item(
            actor=alice, item=item, values={"status": "done"}, evidence=[upload(alice)]
        )
    assert "legal hold blocks deletion" in exc.value.errors["status"][0]
    assert fresh(settled).data_dispositions.get(pk=item.pk).status == DataDisposition.Status.PLANNED


def test_data_not_yet_returned_blocks(settled, alice):
    add_register_item(
        actor=alice,
        case=settled,
        register="data_dispositions",
        values={"dataset": "CRM export", "location": "HubSpot", "action": "return"},
    )
    gate = next(g for g in unmet_gates(fresh(settled)) if g.code == "data.not_disposed")
    assert "CRM export @ HubSpot" in gate.message


def test_an_outstanding_invoice_blocks(settled, cast):
    add_register_item(
        actor=cast["dave"],
        case=settled,
        register="settlements",
        values={
            "kind": "final_invoice",
            "reference": "INV-77",
            "amount": "950.00",
            "currency": "EUR",
        },
    )
    gate = next(g for g in unmet_gates(fresh(settled)) if g.code == "settlement.open")
    assert "final_invoice INV-77 [outstanding]" in gate.message


def test_a_pending_required_step_blocks_with_its_key(settled, alice):
    from offboard.cases.services import reopen_step

    step = settled.steps.first()
    reopen_step(actor=alice, step=step, reason="Client says the notice letter was wrong")
    gate = next(g for g in unmet_gates(fresh(settled)) if g.code == "steps.incomplete")
    assert step.key in gate.message


def test_a_pending_handover_item_blocks(settled, alice):
    add_register_item(
        actor=alice,
        case=settled,
        register="handover_items",
        values={"kind": "domain", "name": "northwind.example", "method": "Registrar push"},
    )
    assert "handover.incomplete" in codes(settled)


def test_statuses_that_settle_each_register(settled):
    assert not [g for g in unmet_gates(settled) if g.kind == "readiness"]
    assert all(d.status == Deliverable.Status.ACCEPTED for d in settled.deliverables.all())
    assert all(s.status == Settlement.Status.PAID for s in settled.settlements.all())
    assert all(
        g.status != AccessGrant.Status.ACTIVE or g.planned_action == "keep"
        for g in settled.access_grants.all()
    )
