"""Waivers: an approver accepts, in writing and until a date, that something will not be done."""

import datetime as dt
from collections.abc import Sequence

from django.db import transaction

from offboard import labels
from offboard.cases.models import OffboardingCase, Step, Waiver
from offboard.cases.registers import BY_PREFIX
from offboard.cases.services.common import ensure_open, lock_case, record_change
from offboard.cases.services.linked_steps import (
    complete_settled_steps,
    completing_data,
    note_completing_event,
)
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.permissions import require
from offboard.core.validation import Errors
from offboard.evidence.models import EvidenceFile
from offboard.ledger.recorder import record_event


def _target(case: OffboardingCase, target_type: str, target_id: int) -> str:
    if target_type == "step":
        step = Step.objects.filter(case=case, pk=target_id).first()
        if step is None:
            raise ValidationFailed({"target_id": [f"no step {target_id} in case {case.ref}"]})
        return step.title
    spec = BY_PREFIX.get(target_type)
    if spec is None:
        raise ValidationFailed(
            {"target_type": [f"'{target_type}' is not one of {', '.join(Waiver.Target.values)}"]}
        )
    item = spec.model.objects.filter(case=case, pk=target_id).first()
    if item is None:
        raise ValidationFailed({"target_id": [f"no {target_type} {target_id} in case {case.ref}"]})
    return labels.item_label(item)


@transaction.atomic
def grant_waiver(
    *,
    actor: Actor,
    case: OffboardingCase,
    target_type: str,
    target_id: int,
    justification: str,
    expires_at: dt.datetime,
    evidence: Sequence[EvidenceFile] = (),
) -> Waiver:
    require(actor, "cases.waive")
    case = lock_case(case)
    ensure_open(case)
    errors = Errors()
    justification = errors.text("justification", justification, max_length=10000)
    if not isinstance(expires_at, dt.datetime) or expires_at.tzinfo is None:
        errors.add("expires_at", "needs a date-time with a time zone")
    elif expires_at <= clock.now():
        errors.add("expires_at", f"{expires_at.isoformat()} is in the past")
    errors.raise_if_any()
    label = _target(case, target_type, target_id)
    waiver = Waiver.objects.create(
        org=actor.org,
        case=case,
        target_type=target_type,
        target_id=target_id,
        target_label=label[:400],
        justification=justification,
        approver=actor.user,
        approver_role=actor.role,
        granted_at=clock.now(),
        expires_at=expires_at,
    )
    waiver.evidence.add(*evidence)
    # A waived item meets its gate: it may be the last one a step was waiting for.
    completed = complete_settled_steps(actor=actor, case=case)
    effects = record_change(case)
    event = record_event(
        actor=actor,
        type="waiver.granted",
        case=case,
        files=evidence,
        data={
            "waiver_id": waiver.pk,
            "target_type": target_type,
            "target_id": target_id,
            "target": label,
            "justification": justification,
            "expires_at": expires_at,
            **effects,
            **completing_data(completed),
        },
    )
    note_completing_event(case, completed, event)
    return waiver


@transaction.atomic
def revoke_waiver(*, actor: Actor, waiver: Waiver, reason: str) -> Waiver:
    require(actor, "cases.waive")
    case = lock_case(waiver.case)
    ensure_open(case)
    if waiver.revoked_at is not None:
        raise Conflict(f"Waiver {waiver.pk} is already revoked.")
    errors = Errors()
    reason = errors.text("reason", reason, max_length=5000)
    errors.raise_if_any()
    waiver.revoked_at = clock.now()
    waiver.save(update_fields=["revoked_at"])
    effects = record_change(case)
    record_event(
        actor=actor,
        type="waiver.revoked",
        case=case,
        data={"waiver_id": waiver.pk, "target": waiver.target_label, "reason": reason, **effects},
    )
    return waiver
