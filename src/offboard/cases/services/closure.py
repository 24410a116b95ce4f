"""The case lifecycle: activate, enter closing, approve, close, cancel; addenda after closure."""

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from offboard.cases.gates import readiness_gates, unmet_gates
from offboard.cases.models import Addendum, Approval, OffboardingCase, Step
from offboard.cases.services.common import ensure_open, lock_case, member_user, record_change
from offboard.cases.state import case_state, fresh, state_digest
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.canonical import digest as canonical_digest
from offboard.core.canonical import to_jsonable
from offboard.core.errors import Conflict, GatesUnmet, PermissionDenied, ValidationFailed
from offboard.core.permissions import require
from offboard.core.validation import Errors
from offboard.evidence.models import EvidenceFile
from offboard.ledger.checkpoints import issue_checkpoint
from offboard.ledger.recorder import record_event
from offboard.mfa.policy import require_second_factor
from offboard.notifications.services import queue_closure_receipt
from offboard.reminders.queue import queue_assignments

State = OffboardingCase.State


def _refuse_unless(case: OffboardingCase, *states: str, action: str) -> None:
    if case.state not in states:
        raise Conflict(
            f"Case {case.ref} is {case.state}; it must be {' or '.join(states)} to {action}.",
            code="invalid_transition",
            details={"state": case.state, "allowed_from": list(states)},
        )


@transaction.atomic
def activate_case(*, actor: Actor, case: OffboardingCase) -> OffboardingCase:
    require(actor, "cases.transition")
    case = lock_case(case)
    ensure_open(case)
    _refuse_unless(case, State.DRAFT, action="activate it")
    case.state = State.ACTIVE
    case.updated_at = clock.now()
    case.save(update_fields=["state", "updated_at"])
    record_event(actor=actor, type="case.activated", case=case, data={"state": case.state})
    queue_assignments(case=case, assigned_by_user_id=actor.user.pk)
    return case


def _raise_gates(case: OffboardingCase, gates: list[Any], doing: str) -> None:
    names = " ".join(g.message for g in gates)
    raise GatesUnmet(
        f"Cannot {doing} case {case.ref}: {len(gates)} unmet gate{'s' if len(gates) != 1 else ''}. {names}",
        details={"gates": [g.as_dict() for g in gates]},
    )


@transaction.atomic
def enter_closing(*, actor: Actor, case: OffboardingCase) -> OffboardingCase:
    """Every readiness gate met: freeze for approvals. Any later change returns it to active."""
    require(actor, "cases.transition")
    case = lock_case(case)
    ensure_open(case)
    _refuse_unless(case, State.ACTIVE, action="enter closing")
    loaded = fresh(case)
    gates = readiness_gates(loaded)
    if gates:
        _raise_gates(case, gates, "enter closing for")
    digest = state_digest(loaded)
    case.state = State.CLOSING
    case.closing_at = case.updated_at = clock.now()
    case.save(update_fields=["state", "closing_at", "updated_at"])
    record_event(actor=actor, type="case.closing", case=case, data={"state_digest": digest})
    return case


@transaction.atomic
def approve_case(
    *, actor: Actor, case: OffboardingCase, decision: str, state_digest_seen: str, comment: str = ""
) -> Approval:
    """Approve or reject closure of exactly the state the approver saw (its digest)."""
    require(actor, "cases.approve")
    require_second_factor(actor, "approve")
    case = lock_case(case)
    ensure_open(case)
    _refuse_unless(case, State.CLOSING, action="be approved")
    errors = Errors()
    errors.choice("decision", decision, Approval.Decision.values)
    comment = errors.text(
        "comment", comment, max_length=5000, required=decision == Approval.Decision.REJECTED
    )
    errors.raise_if_any()
    roles = set(case.approval_policy.get("roles", ["manager", "admin"]))
    if actor.role not in roles:
        raise PermissionDenied(
            f"The approval policy of {case.ref} takes approvals from {', '.join(sorted(roles))}; "
            f"your role is {actor.role}."
        )
    current = state_digest(fresh(case))
    if state_digest_seen != current:
        raise Conflict(
            f"Case {case.ref} changed since you reviewed it: you saw state {state_digest_seen[:12]}…, "
            f"it is now {current[:12]}…. Review the current state and approve again.",
            code="stale_state_digest",
            details={"current_state_digest": current},
        )
    if case.approvals.filter(
        approver=actor.user, state_digest=current, invalidated_at__isnull=True
    ).exists():
        raise Conflict(f"You already decided on this state of {case.ref}.", code="already_decided")
    approval = Approval.objects.create(
        org=actor.org,
        case=case,
        approver=actor.user,
        role=actor.role,
        decision=decision,
        comment=comment,
        at=clock.now(),
        state_digest=current,
    )
    record_event(
        actor=actor,
        type=f"case.{decision}",
        case=case,
        data={
            "approval_id": approval.pk,
            "decision": decision,
            "comment": comment,
            "state_digest": current,
            "role": actor.role,
            "is_case_owner": actor.user.pk == case.owner_id,
        },
    )
    return approval


@transaction.atomic
def close_case(*, actor: Actor, case: OffboardingCase) -> OffboardingCase:
    """Close for good. Refused, listing every unmet gate, unless all gates hold."""
    require(actor, "cases.transition")
    require_second_factor(actor, "close")
    case = lock_case(case)
    ensure_open(case)
    loaded = fresh(case)
    gates = unmet_gates(loaded)
    if gates:
        _raise_gates(case, gates, "close")
    _refuse_unless(case, State.CLOSING, action="close")
    closed_state = case_state(loaded)
    digest = canonical_digest(closed_state)
    approvals = [
        a for a in loaded.approvals.all() if a.state_digest == digest and a.invalidated_at is None
    ]
    case.state = State.CLOSED
    case.closed_at = case.updated_at = clock.now()
    case.closed_state = to_jsonable(closed_state)
    case.save(update_fields=["state", "closed_at", "closed_state", "updated_at"])
    record_event(
        actor=actor,
        type="case.closed",
        case=case,
        data={
            "state_digest": digest,
            "approvals": [
                {"approver_id": a.approver_id, "role": a.role, "decision": a.decision, "at": a.at}
                for a in approvals
            ],
        },
    )
    # The closure checkpoint covers every event of the case, the closure included; it is
    # timestamped and handed to the client in the closure receipt, which also carries the
    # certificate. Both are made after commit: a mail server cannot delay or undo a closure.
    checkpoint = issue_checkpoint(org=actor.org, reason="case_closed", case=case)
    queue_closure_receipt(actor=actor, case=case, checkpoint=checkpoint)
    return case


@transaction.atomic
def cancel_case(*, actor: Actor, case: OffboardingCase, reason: str) -> OffboardingCase:
    require(actor, "cases.transition")
    case = lock_case(case)
    ensure_open(case)
    _refuse_unless(case, State.DRAFT, State.ACTIVE, action="be cancelled")
    errors = Errors()
    reason = errors.text("reason", reason, max_length=5000)
    errors.raise_if_any()
    case.state = State.CANCELLED
    case.cancel_reason = reason
    case.updated_at = clock.now()
    case.save(update_fields=["state", "cancel_reason", "updated_at"])
    record_event(actor=actor, type="case.cancelled", case=case, data={"reason": reason})
    return case


@transaction.atomic
def update_case(
    *,
    actor: Actor,
    case: OffboardingCase,
    owner_id: int | None = None,
    effective_end_date: dt.date | None = None,
    scope_notes: str | None = None,
    trigger_notes: str | None = None,
) -> OffboardingCase:
    """Reassign the owner or move the end date (due dates anchored on it move along)."""
    require(actor, "cases.transition")
    case = lock_case(case)
    ensure_open(case)
    old: dict[str, Any] = {}
    if owner_id is not None and owner_id != case.owner_id:
        old["owner_id"] = case.owner_id
        case.owner = member_user(actor.org, owner_id, "owner_id")
    if effective_end_date is not None and effective_end_date != case.effective_end_date:
        if effective_end_date < case.trigger_date:
            raise ValidationFailed(
                {"effective_end_date": [f"{effective_end_date} is before the trigger date"]}
            )
        old["effective_end_date"] = case.effective_end_date
        shift = effective_end_date - case.effective_end_date
        case.data_return_deadline += shift
        case.effective_end_date = effective_end_date
        for step in Step.objects.filter(case=case, due_anchor="end"):
            step.due_date = effective_end_date + dt.timedelta(days=step.due_offset_days)
            step.save(update_fields=["due_date"])
    for name, value in (("scope_notes", scope_notes), ("trigger_notes", trigger_notes)):
        if value is not None and value != getattr(case, name):
            old[name] = getattr(case, name)
            setattr(case, name, value)
    if not old:
        raise ValidationFailed({"case": ["nothing to change"]})
    case.save()
    effects = record_change(case)
    record_event(
        actor=actor,
        type="case.updated",
        case=case,
        data={
            "owner_id": case.owner_id,
            "effective_end_date": case.effective_end_date,
            "scope_notes": case.scope_notes,
            "trigger_notes": case.trigger_notes,
            "old": old,
            **effects,
        },
    )
    return case


@transaction.atomic
def add_addendum(
    *, actor: Actor, case: OffboardingCase, text: str, evidence: Sequence[EvidenceFile] = ()
) -> Addendum:
    """The one write a closed (or cancelled) case accepts: a later fact, appended."""
    require(actor, "cases.addendum")
    case = lock_case(case)
    if case.state not in (State.CLOSED, State.CANCELLED):
        raise Conflict(
            f"Case {case.ref} is {case.state}; addenda are for closed cases. Change the case itself.",
            code="invalid_transition",
        )
    errors = Errors()
    text = errors.text("text", text, max_length=20000)
    errors.raise_if_any()
    addendum = Addendum.objects.create(
        org=actor.org, case=case, author=actor.user, at=clock.now(), text=text
    )
    addendum.evidence.add(*evidence)
    record_event(
        actor=actor,
        type="case.addendum",
        case=case,
        files=evidence,
        data={
            "addendum_id": addendum.pk,
            "text": text,
            "evidence": [f.as_event_data() for f in evidence],
        },
    )
    return addendum
