"""Cases: list, preview, open, read, change, move through the lifecycle, approve, append."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Router, Status

from offboard.cases import selectors, services
from offboard.cases.api.loading import case_view, evidence, load_case
from offboard.cases.api.schemas import (
    AddendumIn,
    AddendumOut,
    ApprovalIn,
    ApprovalOut,
    CancelIn,
    CaseDetailOut,
    CaseOpenIn,
    CaseState,
    CaseSummaryOut,
    CaseUpdateIn,
    EventOut,
    GatesOut,
    PreviewOut,
)
from offboard.cases.services.opening import DuplicateCase, validate_opening
from offboard.clients import selectors as clients
from offboard.core.actor import Actor
from offboard.core.api import actor_of
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.schemas import error_responses, paginated, referenced
from offboard.core.scopes import scope
from offboard.ledger.selectors import case_events
from offboard.playbooks import selectors as playbooks

router = Router(tags=["cases"])


def _opening(actor: Actor, payload: CaseOpenIn) -> dict[str, Any]:
    """Resolve an opening request to this organization's objects and the service's arguments,
    the same for the preview and the opening: `validate_opening` then checks them once."""
    client = referenced("client_id", clients.get_client, actor.org, payload.client_id)
    found = {c.pk: c for c in clients.contracts(actor.org).filter(pk__in=payload.contract_ids)}
    missing = [str(i) for i in payload.contract_ids if i not in found]
    if missing:
        raise ValidationFailed(
            {"contract_ids": [f"no contract {', '.join(missing)} in this organization"]}
        )
    contracts = list(dict.fromkeys(found[i] for i in payload.contract_ids))
    if payload.playbook:
        version = referenced(
            "playbook", playbooks.get_version, actor.org, payload.playbook, payload.playbook_version
        )
    elif payload.playbook_version is not None:
        raise ValidationFailed({"playbook_version": ["name the playbook (its slug) too"]})
    else:
        version = playbooks.suggest_playbook(actor.org, contracts[0].service_type)
        if version is None:
            raise ValidationFailed(
                {
                    "playbook": [
                        f"no playbook for service type {contracts[0].service_type}; import one or name it"
                    ]
                }
            )
    return {
        "client": client,
        "contracts": contracts,
        "playbook_version": version,
        "trigger": payload.trigger,
        "trigger_date": payload.trigger_date,
        "owner_id": payload.owner_id if payload.owner_id is not None else actor.user.pk,
        "scope": payload.scope,
        "scope_notes": payload.scope_notes,
        "effective_end_date": payload.effective_end_date,
        "trigger_evidence": evidence(actor, payload.trigger_evidence, "trigger_evidence"),
        "assignments": {str(role): user for role, user in payload.assignments.items()},
    }


def _open_case_refs(request: HttpRequest, cases: Any) -> list[dict[str, Any]]:
    """Each open case by reference, with its page and its API address."""
    return [
        {
            "ref": case.ref,
            "state": case.state,
            "url": request.build_absolute_uri(reverse("web:case-detail", args=[case.ref])),
            "api_url": request.build_absolute_uri(reverse("api:get_case", args=[case.ref])),
        }
        for case in cases
    ]


@router.get(
    "",
    response={200: list[CaseSummaryOut], **error_responses()},
    summary="List cases, newest first",
)
@paginated
def list_cases(
    request: HttpRequest,
    state: CaseState | None = None,
    client_id: int | None = None,
    owner_id: int | None = None,
    q: str = "",
) -> Any:
    return selectors.cases(
        actor_of(request).org, state=state, client_id=client_id, owner_id=owner_id, search=q
    )


@router.post(
    "/preview",
    response={200: PreviewOut, **error_responses(422)},
    summary="Compute the dates and steps a case would get, writing nothing",
)
@scope("read")
def preview_case(request: HttpRequest, payload: CaseOpenIn) -> Any:
    opening = _opening(actor_of(request), payload)
    plan = validate_opening(org=actor_of(request).org, **opening)
    version, spec = opening["playbook_version"], opening["playbook_version"].spec
    return {
        "client": opening["client"],
        "contracts": opening["contracts"],
        "playbook": {
            "slug": spec.slug,
            "name": spec.name,
            "version": version.version,
            "sha256": version.sha256,
        },
        "fee_type": plan.fee_type,
        "dates": {
            "trigger": plan.dates.trigger,
            "notice": plan.dates.notice,
            "effective_end": plan.dates.end,
            "data_return_deadline": plan.dates.data_return_deadline,
        },
        "steps": plan.steps,
        "registers": {key: len(items) for key, items in plan.seeds.items()},
        "open_cases": _open_case_refs(request, plan.open_cases),
    }


@router.post(
    "",
    response={201: CaseDetailOut, **error_responses(403, 409, 422)},
    summary="Open a case for a client exit",
    description="409 `duplicate_case` while the client has an open case for one of the "
    "contracts (`details.open_cases` names each); send `allow_duplicate: true` to open "
    "another anyway.",
)
@scope("cases:write")
def open_case(request: HttpRequest, payload: CaseOpenIn) -> Any:
    actor = actor_of(request)
    try:
        case = services.open_case(
            actor=actor,
            **_opening(actor, payload),
            trigger_notes=payload.trigger_notes,
            draft=payload.draft,
            allow_duplicate=payload.allow_duplicate,
        )
    except DuplicateCase as exc:
        raise Conflict(
            f'{exc.headline} Send "allow_duplicate": true to open another case anyway.',
            code=exc.code,
            details={"open_cases": _open_case_refs(request, exc.open_cases)},
        ) from None
    return Status(201, case_view(actor, case.ref))


@router.get(
    "/{ref}",
    response={200: CaseDetailOut, **error_responses(404)},
    summary="A case with its steps, registers, waivers, approvals, digest and unmet gates",
)
def get_case(request: HttpRequest, ref: str) -> Any:
    return case_view(actor_of(request), ref)


@router.patch(
    "/{ref}",
    response={200: CaseDetailOut, **error_responses(403, 404, 409, 422)},
    summary="Reassign the owner, move the end date, edit notes",
)
@scope("cases:write")
def update_case(request: HttpRequest, ref: str, payload: CaseUpdateIn) -> Any:
    actor = actor_of(request)
    case = load_case(actor, ref)
    services.update_case(actor=actor, case=case, **payload.dict(exclude_unset=True))
    return case_view(actor, ref)


@router.get(
    "/{ref}/gates",
    response={200: GatesOut, **error_responses(404)},
    summary="What still stands between the case and closure",
)
def get_gates(request: HttpRequest, ref: str) -> Any:
    return case_view(actor_of(request), ref)


@router.get(
    "/{ref}/events",
    response={200: list[EventOut], **error_responses(404)},
    summary="The case's timeline, oldest first",
)
@paginated
def list_events(request: HttpRequest, ref: str) -> Any:
    return case_events(load_case(actor_of(request), ref))


@router.post(
    "/{ref}/activate",
    response={200: CaseDetailOut, **error_responses(403, 404, 409)},
    summary="Start work on a draft case",
)
@scope("cases:write")
def activate(request: HttpRequest, ref: str) -> Any:
    actor = actor_of(request)
    services.activate_case(actor=actor, case=load_case(actor, ref))
    return case_view(actor, ref)


@router.post(
    "/{ref}/closing",
    response={200: CaseDetailOut, **error_responses(403, 404, 409)},
    summary="Enter closing: every readiness gate met, collect approvals",
    description="409 `gates_unmet` with `details.gates` while a readiness gate is unmet.",
)
@scope("cases:write")
def enter_closing(request: HttpRequest, ref: str) -> Any:
    actor = actor_of(request)
    services.enter_closing(actor=actor, case=load_case(actor, ref))
    return case_view(actor, ref)


@router.post(
    "/{ref}/close",
    response={200: CaseDetailOut, **error_responses(403, 404, 409)},
    summary="Close for good",
    description="409 `gates_unmet` with `details.gates` listing every unmet gate.",
)
@scope("cases:write")
def close(request: HttpRequest, ref: str) -> Any:
    actor = actor_of(request)
    services.close_case(actor=actor, case=load_case(actor, ref))
    return case_view(actor, ref)


@router.post(
    "/{ref}/cancel",
    response={200: CaseDetailOut, **error_responses(403, 404, 409, 422)},
    summary="Cancel a draft or active case, with a reason",
)
@scope("cases:write")
def cancel(request: HttpRequest, ref: str, payload: CancelIn) -> Any:
    actor = actor_of(request)
    services.cancel_case(actor=actor, case=load_case(actor, ref), reason=payload.reason)
    return case_view(actor, ref)


@router.post(
    "/{ref}/approvals",
    response={201: ApprovalOut, **error_responses(403, 404, 409, 422)},
    summary="Approve or reject closure of the state you reviewed",
    description="Send the `state_digest` from GET /cases/{ref}; if the case changed since, "
    "the answer is 409 `stale_state_digest` with the current digest.",
)
@scope("cases:write")
def approve(request: HttpRequest, ref: str, payload: ApprovalIn) -> Any:
    actor = actor_of(request)
    approval = services.approve_case(
        actor=actor,
        case=load_case(actor, ref),
        decision=payload.decision,
        state_digest_seen=payload.state_digest,
        comment=payload.comment,
    )
    return Status(201, approval)


@router.post(
    "/{ref}/addenda",
    response={201: AddendumOut, **error_responses(403, 404, 409, 422)},
    summary="Append a later fact to a closed or cancelled case",
)
@scope("cases:write")
def add_addendum(request: HttpRequest, ref: str, payload: AddendumIn) -> Any:
    actor = actor_of(request)
    case = load_case(actor, ref)
    addendum = services.add_addendum(
        actor=actor, case=case, text=payload.text, evidence=evidence(actor, payload.evidence)
    )
    return Status(201, addendum)
