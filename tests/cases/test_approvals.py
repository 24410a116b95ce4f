"""Approvals bind to the state digest; four eyes; closed is final."""

import pytest

from offboard.cases.gates import unmet_gates
from offboard.cases.services import (
    add_addendum,
    add_register_item,
    approve_case,
    cancel_case,
    close_case,
    complete_step,
    enter_closing,
    grant_waiver,
    mark_step_not_applicable,
    reopen_step,
    start_step,
    update_case,
    update_register_item,
)
from offboard.cases.state import fresh, state_digest
from offboard.core.errors import CaseClosed, Conflict, GatesUnmet, PermissionDenied
from offboard.ledger.models import LedgerEntry
from tests.factories import close_with_approvals, settle_everything, upload


@pytest.fixture
def closing(case, cast):
    case = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=case)
    return fresh(case)


def approve(actor, case, decision="approved", comment=""):
    return approve_case(
        actor=actor,
        case=case,
        decision=decision,
        comment=comment,
        state_digest_seen=state_digest(fresh(case)),
    )


def test_a_change_returns_the_case_to_active_and_invalidates_approvals(closing, cast):
    approve(cast["bob"], closing)
    d = closing.deliverables.first()
    update_register_item(
        actor=cast["alice"], item=d, values={"notes": "Client asked for a PDF copy"}
    )
    case = fresh(closing)
    assert case.state == "active"
    assert case.approvals.get().invalidated_at is not None
    event = LedgerEntry.objects.filter(case=case).last()
    assert event.type == "deliverable.updated"
    assert event.data["returned_to_active"] is True and event.data["approvals_invalidated"] == 1
    enter_closing(actor=cast["alice"], case=case)
    assert [g.code for g in unmet_gates(fresh(case))] == ["approvals.missing"]


def test_an_approval_of_a_stale_digest_is_refused(closing, cast):
    old = state_digest(fresh(closing))
    update_register_item(
        actor=cast["alice"], item=closing.deliverables.first(), values={"notes": "x"}
    )
    enter_closing(actor=cast["alice"], case=closing)
    with pytest.raises(Conflict) as exc:
        approve_case(actor=cast["bob"], case=closing, decision="approved", state_digest_seen=old)
    assert exc.value.code == "stale_state_digest"
    assert exc.value.details["current_state_digest"] == state_digest(fresh(closing))


def test_the_owner_never_approves_alone(case, cast, playbooks):
    # alice owns the case and is an admin; a one-approver policy still needs someone else
    case = settle_everything(case, cast)
    case.approval_policy = {"min_approvers": 1, "roles": ["manager", "admin"]}
    case.save(update_fields=["approval_policy"])
    enter_closing(actor=cast["alice"], case=case)
    approve(cast["alice"], case)
    assert [g.code for g in unmet_gates(fresh(case))] == ["approvals.owner_only"]
    with pytest.raises(GatesUnmet):
        close_case(actor=cast["alice"], case=case)
    approve(cast["bob"], case)
    close_case(actor=cast["alice"], case=case)
    assert fresh(case).state == "closed"


def test_two_approvals_must_come_from_distinct_people(closing, cast):
    approve(cast["bob"], closing)
    with pytest.raises(Conflict) as exc:
        approve(cast["bob"], closing)
    assert exc.value.code == "already_decided"
    gate = unmet_gates(fresh(closing))[0]
    assert gate.code == "approvals.missing" and "Bob" in gate.message


def test_approvals_from_roles_outside_the_policy_are_refused(closing, cast):
    with pytest.raises(PermissionDenied):
        approve(cast["dave"], closing)  # finance is not in the marketing playbook's policy
    with pytest.raises(PermissionDenied):
        approve(cast["oscar"], closing)  # operators never approve
    with pytest.raises(PermissionDenied):
        approve(cast["erin"], closing)


def test_a_rejection_blocks_closure_with_the_comment(closing, cast):
    approve(cast["bob"], closing)
    approve(
        cast["carol"], closing, decision="rejected", comment="Backups deletion certificate missing"
    )
    gates = unmet_gates(fresh(closing))
    assert gates[0].code == "approvals.rejected"
    assert "Backups deletion certificate missing" in gates[0].message


def test_approval_is_only_given_in_closing(case, cast):
    with pytest.raises(Conflict) as exc:
        approve(cast["bob"], case)
    assert exc.value.code == "invalid_transition"


@pytest.fixture
def closed(case, cast):
    return close_with_approvals(settle_everything(case, cast), cast)


def test_every_write_to_a_closed_case_is_refused(closed, cast):
    alice, bob = cast["alice"], cast["bob"]
    step = closed.steps.first()
    item = closed.access_grants.first() or closed.deliverables.first()
    events_before = LedgerEntry.objects.filter(case=closed).count()
    writes = [
        lambda: start_step(actor=alice, step=step),
        lambda: complete_step(actor=alice, step=step, note="x"),
        lambda: mark_step_not_applicable(actor=alice, step=step, reason="x"),
        lambda: reopen_step(actor=alice, step=step, reason="x"),
        lambda: add_register_item(
            actor=alice, case=closed, register="deliverables", values={"title": "x"}
        ),
        lambda: update_register_item(actor=alice, item=item, values={"notes": "x"}),
        lambda: grant_waiver(
            actor=bob,
            case=closed,
            target_type="step",
            target_id=step.pk,
            justification="x",
            expires_at=None,
        ),
        lambda: approve(bob, closed),
        lambda: enter_closing(actor=alice, case=closed),
        lambda: close_case(actor=alice, case=closed),
        lambda: cancel_case(actor=alice, case=closed, reason="x"),
        lambda: update_case(actor=alice, case=closed, scope_notes="x"),
    ]
    for write in writes:
        with pytest.raises(CaseClosed) as exc:
            write()
        assert exc.value.status == 409
        assert "append an addendum" in exc.value.message
    assert LedgerEntry.objects.filter(case=closed).count() == events_before


def test_an_addendum_is_the_one_write_a_closed_case_accepts(closed, cast):
    file = upload(cast["alice"], b"late bank confirmation", "bank.txt")
    addendum = add_addendum(
        actor=cast["alice"],
        case=closed,
        text="Bank confirmed the refund on 3 Dec.",
        evidence=[file],
    )
    assert addendum.evidence.get() == file
    event = LedgerEntry.objects.filter(case=closed).last()
    assert event.type == "case.addendum" and event.files == [file.sha256]
    assert fresh(closed).state == "closed"


def test_an_addendum_on_an_open_case_is_refused(case, alice):
    with pytest.raises(Conflict):
        add_addendum(actor=alice, case=case, text="too early")


def test_closing_records_the_digest_and_approvers(closed):
    event = LedgerEntry.objects.filter(case=closed, type="case.closed").get()
    assert event.data["state_digest"] == state_digest(closed)
    assert len(event.data["approvals"]) == 2


def test_cancelling_needs_a_reason_and_is_final(case, alice):
    from offboard.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as exc:
        cancel_case(actor=alice, case=case, reason="  ")
    assert "reason" in exc.value.errors
    cancel_case(actor=alice, case=case, reason="Client renewed after all")
    with pytest.raises(CaseClosed):
        add_register_item(actor=alice, case=case, register="deliverables", values={"title": "x"})
