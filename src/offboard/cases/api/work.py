"""Working a case: its checklist steps, the five registers, and waivers."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from offboard.cases import selectors, services
from offboard.cases.api.loading import evidence, load_case
from offboard.cases.api.schemas import (
    REGISTER_SCHEMAS,
    StepCompleteIn,
    StepOut,
    WaiverIn,
    WaiverOut,
)
from offboard.cases.registers import REGISTERS, RegisterSpec
from offboard.core.api import actor_of
from offboard.core.schemas import ReasonIn, error_responses, paginated
from offboard.core.scopes import scope

router = Router()

WRITE_ERRORS = error_responses(403, 404, 409, 422)


# --- steps -------------------------------------------------------------------------------------


@router.post(
    "/{ref}/steps/{key}/start",
    response={200: StepOut, **WRITE_ERRORS},
    tags=["steps"],
    summary="Start a pending step",
)
@scope("cases:write")
def start_step(request: HttpRequest, ref: str, key: str) -> Any:
    actor = actor_of(request)
    step = selectors.get_step(load_case(actor, ref), key)
    return services.start_step(actor=actor, step=step)


@router.post(
    "/{ref}/steps/{key}/complete",
    response={200: StepOut, **WRITE_ERRORS},
    tags=["steps"],
    summary="Complete a step with its evidence",
    description="The step's dependencies must be settled and one of its "
    "`evidence_required` kinds given (file, link, note, attestation, client_ack).",
)
@scope("cases:write")
def complete_step(request: HttpRequest, ref: str, key: str, payload: StepCompleteIn) -> Any:
    actor = actor_of(request)
    step = selectors.get_step(load_case(actor, ref), key)
    return services.complete_step(
        actor=actor,
        step=step,
        evidence=evidence(actor, payload.evidence),
        note=payload.note,
        link=payload.link,
        attestation=payload.attestation,
    )


@router.post(
    "/{ref}/steps/{key}/not-applicable",
    response={200: StepOut, **WRITE_ERRORS},
    tags=["steps"],
    summary="Mark a step not applicable, with the reason",
)
@scope("cases:write")
def mark_not_applicable(request: HttpRequest, ref: str, key: str, payload: ReasonIn) -> Any:
    actor = actor_of(request)
    step = selectors.get_step(load_case(actor, ref), key)
    return services.mark_step_not_applicable(actor=actor, step=step, reason=payload.reason)


@router.post(
    "/{ref}/steps/{key}/reopen",
    response={200: StepOut, **WRITE_ERRORS},
    tags=["steps"],
    summary="Reopen a done or not-applicable step, with the reason",
)
@scope("cases:write")
def reopen_step(request: HttpRequest, ref: str, key: str, payload: ReasonIn) -> Any:
    actor = actor_of(request)
    step = selectors.get_step(load_case(actor, ref), key)
    return services.reopen_step(actor=actor, step=step, reason=payload.reason)


# --- registers ---------------------------------------------------------------------------------


def _sent(payload: Any) -> tuple[dict[str, Any], list[str]]:
    """The register fields the request sent (only those, so an update leaves the rest alone)
    and the evidence hashes."""
    values = payload.dict(exclude_unset=True)
    return values, values.pop("evidence", [])


def _register_routes(spec: RegisterSpec) -> None:
    """GET list, GET one, POST add and PATCH update for one register, typed by its fields."""
    create_in, update_in, item_out = REGISTER_SCHEMAS[spec.key]
    segment = spec.key.replace("_", "-")
    noun = spec.event_prefix.replace("_", " ")
    tags = [f"register: {segment}"]

    @router.get(
        f"/{{ref}}/{segment}",
        response={200: list[item_out], **error_responses(404)},  # type: ignore[valid-type]
        tags=tags,
        summary=f"List the case's {spec.label.lower()} register",
        operation_id=f"list_{spec.key}",
    )
    @paginated
    def list_items(request: HttpRequest, ref: str) -> Any:
        case = load_case(actor_of(request), ref)
        return selectors.register_items(case, spec.key)

    @router.get(
        f"/{{ref}}/{segment}/{{item_id}}",
        response={200: item_out, **error_responses(404)},
        tags=tags,
        summary=f"One {noun}",
        operation_id=f"get_{spec.event_prefix}",
    )
    def get_item(request: HttpRequest, ref: str, item_id: int) -> Any:
        return selectors.get_register_item(load_case(actor_of(request), ref), spec.key, item_id)

    @router.post(
        f"/{{ref}}/{segment}",
        response={201: item_out, **WRITE_ERRORS},
        tags=tags,
        summary=f"Add a {noun}",
        operation_id=f"add_{spec.event_prefix}",
    )
    @scope("cases:write")
    def add_item(request: HttpRequest, ref: str, payload: create_in) -> Any:  # type: ignore[valid-type]
        actor = actor_of(request)
        case = load_case(actor, ref)
        values, hashes = _sent(payload)
        item = services.add_register_item(
            actor=actor,
            case=case,
            register=spec.key,
            values=values,
            evidence=evidence(actor, hashes),
        )
        return Status(201, item)

    @router.patch(
        f"/{{ref}}/{segment}/{{item_id}}",
        response={200: item_out, **WRITE_ERRORS},
        tags=tags,
        summary=f"Update a {noun}: only the fields sent change",
        operation_id=f"update_{spec.event_prefix}",
        description="A status change is recorded as its own event "
        f"(`{spec.event_prefix}.<status>`); evidence files are added to those attached.",
    )
    @scope("cases:write")
    def update_item(request: HttpRequest, ref: str, item_id: int, payload: update_in) -> Any:  # type: ignore[valid-type]
        actor = actor_of(request)
        item = selectors.get_register_item(load_case(actor, ref), spec.key, item_id)
        values, hashes = _sent(payload)
        return services.update_register_item(
            actor=actor, item=item, values=values, evidence=evidence(actor, hashes)
        )


for _spec in REGISTERS.values():
    _register_routes(_spec)


# --- waivers -----------------------------------------------------------------------------------


@router.post(
    "/{ref}/waivers",
    response={201: WaiverOut, **WRITE_ERRORS},
    tags=["waivers"],
    summary="Waive a step or register item, with a justification and an expiry",
)
@scope("cases:write")
def grant_waiver(request: HttpRequest, ref: str, payload: WaiverIn) -> Any:
    actor = actor_of(request)
    waiver = services.grant_waiver(
        actor=actor,
        case=load_case(actor, ref),
        target_type=payload.target_type,
        target_id=payload.target_id,
        justification=payload.justification,
        expires_at=payload.expires_at,
        evidence=evidence(actor, payload.evidence),
    )
    return Status(201, waiver)


@router.post(
    "/{ref}/waivers/{waiver_id}/revoke",
    response={200: WaiverOut, **WRITE_ERRORS},
    tags=["waivers"],
    summary="Revoke a waiver, with the reason",
)
@scope("cases:write")
def revoke_waiver(request: HttpRequest, ref: str, waiver_id: int, payload: ReasonIn) -> Any:
    actor = actor_of(request)
    waiver = selectors.get_waiver(load_case(actor, ref), waiver_id)
    return services.revoke_waiver(actor=actor, waiver=waiver, reason=payload.reason)
