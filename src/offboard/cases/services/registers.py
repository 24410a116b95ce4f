"""Adding to and changing the registers. A status change is the event's verb:
`access_grant.revoked`, `deliverable.accepted`; other edits are `<item>.updated`."""

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction

from offboard.cases.models import (
    AccessGrant,
    DataDisposition,
    Deliverable,
    HandoverItem,
    OffboardingCase,
    RegisterItem,
    Settlement,
    Waiver,
)
from offboard.cases.registers import REGISTERS, RegisterSpec, item_state
from offboard.cases.services.common import (
    ensure_open,
    ensure_started,
    lock_case,
    member_user,
    record_change,
)
from offboard.cases.services.linked_steps import (
    complete_settled_steps,
    completing_data,
    note_completing_event,
)
from offboard.cases.services.provenance import (
    check_fact_times,
    default_fact_time,
    refuse_observed_verification,
    settle_provenance,
    take_source,
)
from offboard.core import clock, inputs
from offboard.core.actor import Actor
from offboard.core.errors import ValidationFailed
from offboard.core.permissions import require
from offboard.core.secretscan import secret_reason
from offboard.core.validation import Errors
from offboard.evidence.models import EvidenceFile
from offboard.ledger.recorder import record_event


def _spec(register: str) -> RegisterSpec:
    if register not in REGISTERS:
        raise ValidationFailed({"register": [f"'{register}' is not one of {', '.join(REGISTERS)}"]})
    return REGISTERS[register]


# The same strict forms as the API's schemas (core/inputs.py): text such as 2026-11-30,
# 2026-11-30T12:00:00Z or "1200.00", or the typed value; never a number or a boolean read as
# a date, never an amount rounded into shape.
_PARSERS: dict[str, Callable[[object], Any]] = {
    "date": inputs.day,
    "datetime": inputs.moment,
    "decimal": inputs.amount,
}


def _coerce(spec: RegisterSpec, values: dict[str, Any], errors: Errors) -> dict[str, Any]:
    """Check and convert input values field by field; unknown fields are errors, not ignored."""
    clean: dict[str, Any] = {}
    value: Any
    for name, raw in values.items():
        if name == "owner_id":
            continue
        f = spec.field(name)
        if f is None:
            errors.add(name, f"is not a field of {spec.key}")
            continue
        if f.kind in ("text", "longtext"):
            value = errors.text(
                name,
                raw,
                max_length=f.max_length if f.kind == "text" else 20000,
                required=f.required,
            )
            if value and f.secret_checked and (why := secret_reason(value)):
                errors.add(
                    name,
                    f"looks like {why}; store a reference to where the secret is "
                    "kept (e.g. the vault entry name), never the secret itself",
                )
            clean[name] = value
        elif f.kind == "choice":
            if raw in (None, "") and not f.required and name == "verification_level":
                clean[name] = ""
                continue
            errors.choice(name, raw, f.choices)
            clean[name] = raw
        elif f.kind == "bool":
            if not isinstance(raw, bool):
                errors.add(name, "must be true or false")
            clean[name] = raw
        elif f.kind in ("date", "datetime", "decimal"):
            try:
                value = None if raw is None or raw == "" else _PARSERS[f.kind](raw)
            except ValueError as exc:
                errors.add(name, str(exc))
                value = None
            if f.kind == "decimal" and value is not None:
                value = value.quantize(decimal.Decimal("0.01"))  # exact: two decimals at most
            clean[name] = value
        elif f.kind == "currency":
            if raw is not None and not isinstance(raw, str):
                errors.add(name, "must be text: a three-letter currency code")
                raw = ""
            value = (raw or "").strip().upper()
            if value and (len(value) != 3 or not value.isalpha() or not value.isascii()):
                errors.add(name, f"'{raw}' is not a three-letter currency code")
            clean[name] = value
    return clean


def _waiver_in_force(item: RegisterItem, target: str) -> bool:
    now = clock.now()
    return any(
        w.is_in_force(now)
        for w in Waiver.objects.filter(case=item.case, target_type=target, target_id=item.pk)
    )


def _check_rules(item: Any, changed: dict[str, Any], has_evidence: bool, errors: Errors) -> None:
    """Rules about the item as it would stand after the change."""
    now = clock.now()
    status = item.status
    if (
        "status" in changed
        and status == "waived"
        and not (item.pk and _waiver_in_force(item, item.event_prefix))
    ):
        errors.add("status", "needs a waiver in force for this item; ask a manager to grant one")
    # The time of the fact the new status asserts is set before these rules run
    # (provenance.default_fact_time); the rules below fill only the other times.
    if isinstance(item, Deliverable):
        if status == Deliverable.Status.CONDITIONALLY_ACCEPTED and not item.acceptance_note.strip():
            errors.add("acceptance_note", "state the conditions of the conditional acceptance")
        if status == Deliverable.Status.DEEMED_ACCEPTED and not item.acceptance_note.strip():
            errors.add("acceptance_note", "cite the logged reminders and the deadline that passed")
        if (
            status == Deliverable.Status.ACCEPTED
            and "status" in changed
            and not has_evidence
            and not item.acceptance_note.strip()
        ):
            errors.add(
                "evidence", "attach the client's acceptance or describe it in acceptance_note"
            )
    elif isinstance(item, HandoverItem):
        if (
            status in (HandoverItem.Status.HANDED_OVER, HandoverItem.Status.ACKNOWLEDGED)
            and "status" in changed
        ):
            item.handed_over_at = item.handed_over_at or now
            if not item.method.strip():
                errors.add("method", "say how the item was handed over")
    elif isinstance(item, AccessGrant):
        _check_access(item, changed, has_evidence, errors, now)
    elif isinstance(item, DataDisposition):
        if item.action == DataDisposition.Action.RETAIN and not item.retention_basis.strip():
            errors.add("retention_basis", "retained data needs its legal basis and period")
        if status == DataDisposition.Status.DONE:
            if item.action == DataDisposition.Action.RETAIN:
                errors.add(
                    "status", "retained data is not 'done'; it stays planned under its basis"
                )
            if item.action == DataDisposition.Action.DELETE and item.legal_hold:
                errors.add("status", "a legal hold blocks deletion of this data set")
            if not item.method:
                errors.add(
                    "method",
                    "record the method (export, NIST SP 800-88 clear/purge/destroy, logical delete)",
                )
            if item.action == DataDisposition.Action.DELETE and not has_evidence:
                errors.add("evidence", "attach the deletion certificate or log")
    elif isinstance(item, Settlement):
        if status == Settlement.Status.WRITTEN_OFF and not item.notes.strip():
            errors.add("notes", "say why the amount is written off")
        if item.amount is not None and not item.currency:
            errors.add("currency", "an amount needs its currency")


def _check_access(
    item: AccessGrant, changed: dict[str, Any], has_evidence: bool, errors: Errors, now: dt.datetime
) -> None:
    status, planned = item.status, item.planned_action
    expected: dict[str, str] = {
        AccessGrant.Status.REVOKED: AccessGrant.PlannedAction.REVOKE,
        AccessGrant.Status.TRANSFERRED: AccessGrant.PlannedAction.TRANSFER,
        AccessGrant.Status.KEPT: AccessGrant.PlannedAction.KEEP,
    }
    if status in expected and expected[status] != planned:
        errors.add("status", f"'{status}' does not match the planned action '{planned}'")
    if planned == AccessGrant.PlannedAction.KEEP and not item.keep_reason.strip():
        errors.add("keep_reason", "access that stays needs a reason")
    if (
        status == AccessGrant.Status.REVOKED
        and "status" in changed
        and item.direction == AccessGrant.Direction.PROVIDER_IN_CLIENT
    ):
        pending_transfer = AccessGrant.objects.filter(
            case=item.case,
            system=item.system,
            planned_action=AccessGrant.PlannedAction.TRANSFER,
            status=AccessGrant.Status.ACTIVE,
        ).exclude(pk=item.pk)
        if pending_transfer.exists():
            errors.add(
                "status",
                f"transfer ownership of {item.system} first; our own access is revoked last",
            )
    level = item.verification_level
    if level:
        if status != AccessGrant.Status.REVOKED:
            errors.add("verification_level", "only a revoked grant is verified")
        if level == AccessGrant.Verification.ATTESTED and not has_evidence:
            errors.add(
                "evidence", "an attested revocation needs the screenshot or statement attached"
            )
        if level in (
            AccessGrant.Verification.OBSERVED,
            AccessGrant.Verification.VENDOR_CONFIRMED,
        ) and not (has_evidence or item.verification_note.strip()):
            errors.add(
                "verification_note",
                f"a {level} verification needs what was observed or "
                "confirmed: a note or evidence file",
            )
        if level == AccessGrant.Verification.WAIVED and not (
            item.pk and _waiver_in_force(item, "access_grant")
        ):
            errors.add("verification_level", "a waived verification needs a waiver in force")
        if "verification_level" in changed:
            item.verified_at = item.verified_at or now


def _apply(
    spec: RegisterSpec,
    item: RegisterItem,
    actor: Actor,
    values: dict[str, Any],
    evidence: Sequence[EvidenceFile],
    old_hashes: set[str],
) -> dict[str, Any]:
    errors = Errors()
    values, given = take_source(values, errors)
    clean = _coerce(spec, values, errors)
    check_fact_times(spec, clean, item.case, errors)
    if "owner_id" in values:
        try:
            item.owner = member_user(actor.org, values["owner_id"], "owner_id")
        except ValidationFailed as exc:
            for f, msgs in exc.errors.items():
                for m in msgs:
                    errors.add(f, m)
    if spec.key == "settlements" and (set(clean) - {"notes"}):
        require(actor, "cases.settle")
    errors.raise_if_any()
    changed = {k: getattr(item, k) for k, v in clean.items() if getattr(item, k) != v}
    status_set = "status" in changed or item.pk is None
    for k, v in clean.items():
        setattr(item, k, v)
    if isinstance(item, AccessGrant) and "status" in changed:
        item.actioned_by = actor.user
    if (
        isinstance(item, AccessGrant)
        and "verification_level" in changed
        and item.verification_level
    ):
        item.verified_by = actor.user
    refuse_observed_verification(clean, changed, errors)
    now = clock.now()
    default_fact_time(item, clean, status_set, now)
    _check_rules(item, changed, bool(evidence) or bool(old_hashes), errors)
    settle_provenance(
        spec,
        item,
        actor=actor,
        given=given,
        changed=changed,
        status_set=status_set,
        evidence_hashes=old_hashes | {f.sha256 for f in evidence},
        errors=errors,
        now=now,
    )
    errors.raise_if_any()
    return changed


def _require_for(actor: Actor, spec: RegisterSpec) -> None:
    require(actor, "cases.settle" if spec.key == "settlements" else "cases.work")


@transaction.atomic
def add_register_item(
    *,
    actor: Actor,
    case: OffboardingCase,
    register: str,
    values: dict[str, Any],
    evidence: Sequence[EvidenceFile] = (),
) -> RegisterItem:
    spec = _spec(register)
    _require_for(actor, spec)
    case = lock_case(case)
    ensure_open(case)
    for f in spec.fields:
        if f.required and f.name not in values:
            values = {**values, f.name: None}
    now = clock.now()
    item = spec.model(org=actor.org, case=case, owner=case.owner, created_at=now, updated_at=now)
    item.status = values.get("status") or spec.initial_status  # type: ignore[attr-defined]
    _apply(spec, item, actor, values, evidence, old_hashes=set())
    item.save()
    item.evidence.add(*evidence)  # type: ignore[attr-defined]
    completed = complete_settled_steps(actor=actor, case=case)
    effects = record_change(case)
    event = record_event(
        actor=actor,
        type=f"{spec.event_prefix}.added",
        case=case,
        data={
            "item": item_state(spec, item),
            "evidence": [f.as_event_data() for f in evidence],
            **effects,
            **completing_data(completed),
        },
        files=evidence,
    )
    note_completing_event(case, completed, event)
    return item


@transaction.atomic
def update_register_item(
    *,
    actor: Actor,
    item: RegisterItem,
    values: dict[str, Any],
    evidence: Sequence[EvidenceFile] = (),
) -> RegisterItem:
    """Change fields and/or status of an item and attach evidence."""
    spec = REGISTERS[item.register]
    _require_for(actor, spec)
    case = lock_case(item.case)
    ensure_open(case)
    ensure_started(case)
    item = spec.model.objects.select_for_update().get(pk=item.pk)
    item.case = case
    if not values and not evidence:
        raise ValidationFailed({"values": ["nothing to change: give fields to update or evidence"]})
    old_hashes = set(item.evidence.values_list("sha256", flat=True))  # type: ignore[attr-defined]
    changed = _apply(spec, item, actor, values, evidence, old_hashes)
    item.updated_at = clock.now()
    item.save()
    item.evidence.add(*evidence)  # type: ignore[attr-defined]
    completed = complete_settled_steps(actor=actor, case=case)
    effects = record_change(case)
    verb = item.status if "status" in changed else "updated"  # type: ignore[attr-defined]
    if "status" not in changed and "verification_level" in changed and item.verification_level:  # type: ignore[attr-defined]
        verb = "verified"
    event = record_event(
        actor=actor,
        type=f"{spec.event_prefix}.{verb}",
        case=case,
        data={
            "item": item_state(spec, item),
            "old": {
                k: (
                    v.isoformat()
                    if isinstance(v, dt.date | dt.datetime)
                    else str(v)
                    if isinstance(v, decimal.Decimal)
                    else v
                )
                for k, v in changed.items()
            },
            "evidence": [f.as_event_data() for f in evidence],
            **effects,
            **completing_data(completed),
        },
        files=evidence,
    )
    note_completing_event(case, completed, event)
    return item
