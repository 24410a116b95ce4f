"""Working the checklist: start, complete with evidence, mark not applicable, reopen.

A step about register items (`Step.about`) may also be completed by them: when they are all
settled they stand for the kinds of evidence their records carry, and `client_ack` is only the
client's acknowledgement of them in the portal (cases/links.py). Most such steps complete by themselves, in the action
that settles their last item (services/linked_steps.py); one waiting for a dependency then
is completed here once it is free.
"""

from collections.abc import Sequence

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction

from offboard.cases.links import CaseLinks, open_items
from offboard.cases.models import Step
from offboard.cases.services.common import ensure_open, ensure_started, lock_case, record_change
from offboard.cases.services.linked_steps import (
    acknowledgement_events,
    note_completing_event,
    settled_record,
)
from offboard.cases.state import fresh
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.permissions import require
from offboard.core.validation import Errors
from offboard.evidence.models import EvidenceFile
from offboard.ledger.recorder import record_event

DONE_LIKE = (Step.Status.DONE, Step.Status.NOT_APPLICABLE)


def _prepare(actor: Actor, step: Step) -> Step:
    # Operators and above work any step; others (finance) work the steps their role owns.
    owns = actor.role != "auditor" and (
        actor.role == step.owner_role or step.owner_id == actor.user.pk
    )
    if not owns:
        require(actor, "cases.work")
    case = lock_case(step.case)
    ensure_open(case)
    ensure_started(case)
    step.case = case
    return Step.objects.select_for_update().get(pk=step.pk)


def _step_data(step: Step, **extra: object) -> dict[str, object]:
    return {"step": step.key, "title": step.title, "status": step.status, **extra}


@transaction.atomic
def start_step(*, actor: Actor, step: Step) -> Step:
    step = _prepare(actor, step)
    if step.status != Step.Status.PENDING:
        raise Conflict(f"Step '{step.key}' is {step.status}; only a pending step can be started.")
    step.status = Step.Status.IN_PROGRESS
    step.save(update_fields=["status"])
    effects = record_change(step.case)
    record_event(actor=actor, type="step.started", case=step.case, data=_step_data(step, **effects))
    return step


@transaction.atomic
def complete_step(
    *,
    actor: Actor,
    step: Step,
    evidence: Sequence[EvidenceFile] = (),
    note: str = "",
    link: str = "",
    attestation: str = "",
) -> Step:
    """Mark a step done. Its dependencies must be settled and its evidence requirement met."""
    step = _prepare(actor, step)
    if step.status in DONE_LIKE:
        raise Conflict(f"Step '{step.key}' is already {step.status}; reopen it first.")
    errors = Errors()
    note = errors.text("note", note, max_length=10000, required=False)
    link = errors.text("link", link, max_length=1000, required=False)
    attestation = errors.text("attestation", attestation, max_length=10000, required=False)
    if link:
        try:
            URLValidator(schemes=["http", "https"])(link)
        except DjangoValidationError:
            errors.add("link", f"'{link}' is not an http(s) URL")
    errors.raise_if_any()
    if step.depends_on:
        blocking = list(
            Step.objects.filter(case=step.case, key__in=step.depends_on)
            .exclude(status__in=DONE_LIKE)
            .values_list("key", flat=True)
        )
        if blocking:
            raise Conflict(
                f"Step '{step.key}' depends on {', '.join(sorted(blocking))}, not done yet.",
                code="dependencies_pending",
                details={"step": step.key, "waiting_for": sorted(blocking)},
            )
    items, by_items = [], None
    if step.about:
        links = CaseLinks(fresh(step.case))
        items = links.items(step)
        by_items = links.evidence(step, items)
    provided = {
        "file": bool(evidence) or step.evidence.exists(),
        "link": bool(link),
        "note": bool(note),
        "attestation": bool(attestation),
        # Only the client gives it, in the portal; a letter or email from them is a file.
        "client_ack": by_items is not None and by_items.evidence == "client_ack",
    }
    if (
        step.evidence_required
        and not any(provided[k] for k in step.evidence_required)
        and by_items is None
    ):
        kinds = " or ".join(step.evidence_required)
        waiting = open_items(items)
        also = (
            f"; or settle the {len(waiting)} of its {len(items)} items still open "
            f"({', '.join(i.item.label() for i in waiting[:6])})"
            if waiting
            else ""
        )
        raise ValidationFailed(
            {"evidence": [f"step '{step.key}' needs evidence: {kinds}{also}"]},
            message=f"Step '{step.key}' needs evidence before it is done: {kinds}{also}.",
        )
    step.status = Step.Status.DONE
    step.note, step.link, step.attestation = note, link, attestation
    step.completed_at = clock.now()
    step.completed_by = actor.user
    step.settled_by = {}
    if by_items is not None:
        step.settled_by = settled_record(by_items, acknowledgement_events(step.case))
    step.save(
        update_fields=[
            "status",
            "note",
            "link",
            "attestation",
            "completed_at",
            "completed_by",
            "settled_by",
        ]
    )
    step.evidence.add(*evidence)
    effects = record_change(step.case)
    settled = {"settled_by": step.settled_by} if step.settled_by else {}
    event = record_event(
        actor=actor,
        type="step.completed",
        case=step.case,
        data=_step_data(
            step,
            note=note,
            link=link,
            attestation=attestation,
            evidence=[f.as_event_data() for f in evidence],
            **settled,
            **effects,
        ),
        files=evidence,
    )
    if step.settled_by:
        note_completing_event(step.case, [step], event)
    return step


@transaction.atomic
def mark_step_not_applicable(*, actor: Actor, step: Step, reason: str) -> Step:
    step = _prepare(actor, step)
    if step.status in DONE_LIKE:
        raise Conflict(f"Step '{step.key}' is already {step.status}; reopen it first.")
    errors = Errors()
    reason = errors.text("reason", reason, max_length=5000)
    errors.raise_if_any()
    step.status = Step.Status.NOT_APPLICABLE
    step.not_applicable_reason = reason
    step.completed_at = clock.now()
    step.completed_by = actor.user
    step.save(update_fields=["status", "not_applicable_reason", "completed_at", "completed_by"])
    effects = record_change(step.case)
    record_event(
        actor=actor,
        type="step.not_applicable",
        case=step.case,
        data=_step_data(step, reason=reason, **effects),
    )
    return step


@transaction.atomic
def reopen_step(*, actor: Actor, step: Step, reason: str) -> Step:
    step = _prepare(actor, step)
    if step.status not in DONE_LIKE:
        raise Conflict(f"Step '{step.key}' is {step.status}; only a settled step can be reopened.")
    errors = Errors()
    reason = errors.text("reason", reason, max_length=5000)
    errors.raise_if_any()
    old = step.status
    step.status = Step.Status.PENDING
    step.not_applicable_reason = ""
    step.completed_at = None
    step.completed_by = None
    step.settled_by = {}
    step.save(
        update_fields=[
            "status",
            "not_applicable_reason",
            "completed_at",
            "completed_by",
            "settled_by",
        ]
    )
    effects = record_change(step.case)
    record_event(
        actor=actor,
        type="step.reopened",
        case=step.case,
        data=_step_data(step, reason=reason, old={"status": old}, **effects),
    )
    return step
