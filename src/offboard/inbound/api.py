"""POST /api/v1/inbound/{endpoint_id}/events: another system's signed event opens a case.

No bearer token: the delivery is authenticated by its Standard Webhooks signature under the
endpoint's secret (`signatures.py`). The order of the checks is the order of the answers:
unknown endpoint 404, body too large 413, signature 401, payload 422 naming the field, then
the opening's own 422 and 409 — and none of them writes anything (docs/webhooks-in.md).
"""

import datetime as dt
import hashlib
import json
import logging
from typing import Any, Literal

import pydantic
from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Router, Schema, Status

from offboard.cases.services.opening import DuplicateCase
from offboard.core import clock
from offboard.core.api import ErrorOut, client_ip
from offboard.core.bodies import BodyTooLarge, amount
from offboard.core.errors import Conflict, OffboardError, ValidationFailed
from offboard.core.inputs import problems
from offboard.core.schemas import Day, Input, Moment, unset
from offboard.core.sealing import SealedValueUnavailable
from offboard.inbound import selectors, services
from offboard.inbound.models import InboundDelivery
from offboard.inbound.signatures import MAX_ID_LENGTH, TOLERANCE, SignatureRefused, verify

router = Router(tags=["inbound webhooks"])
log = logging.getLogger("offboard.inbound")

MAX_BODY = 64 * 1024  # an event is a few hundred bytes; the notes are bounded below


class SignatureNotVerified(OffboardError):
    status = 401
    code = "bad_signature"


class EndpointUnavailable(OffboardError):
    """The endpoint's secret cannot be opened here (its sealing key is missing)."""

    status = 503
    code = "endpoint_unavailable"


class ContractEventDataIn(Input):
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": ["contract_reference"]}, {"required": ["client_reference"]}]
        }
    )

    contract_reference: str = unset(
        min_length=1,
        max_length=64,
        description="The contract's reference in Offboard (unique in the organization).",
    )
    client_reference: str = unset(
        min_length=1,
        max_length=64,
        description="The client's reference (CRM id). Alone: the client's one contract running "
        "on the trigger date. With a contract reference: must be that contract's client's.",
    )
    trigger_date: Day = Field(description="When the notice was given or the decision taken.")
    effective_end_date: Day = unset(
        description="Default: the contract's end (non-renewal) or notice + notice period."
    )
    terminated_by: Literal["client", "provider"] = Field(
        "client", description="For `contract.terminated`: who ended the contract."
    )
    notes: str = Field("", max_length=5000, description="Kept as the case's trigger notes.")


class InboundEventIn(Input):
    type: Literal["contract.terminated", "contract.not_renewed"] = Field(
        description="`contract.terminated` opens a case for an early termination, "
        "`contract.not_renewed` one for a non-renewal."
    )
    timestamp: Moment = unset(description="When the event happened at the sender; informative.")
    data: ContractEventDataIn


class InboundCaseOut(Schema):
    ref: str
    state: str
    url: str = Field(description="The case's page.")
    api_url: str = Field(description="The case in this API (with a bearer token).")


class DeliveryOut(Schema):
    webhook_id: str = Field(description="The delivery's `webhook-id`, as sent.")
    outcome: Literal["case_opened"]
    received_at: dt.datetime = Field(
        description="When the delivery was first received: a repeat answers the same."
    )
    case: InboundCaseOut


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema with its `$defs` written in place: the OpenAPI document holds it as
    the request body's schema, where a `#/$defs/…` reference would point nowhere."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return dict(resolve(schema))


_HEADERS = [
    {
        "in": "header",
        "name": "webhook-id",
        "required": True,
        "description": "The event's unique id at the sender; a repeat is answered as the first.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
    },
    {
        "in": "header",
        "name": "webhook-timestamp",
        "required": True,
        "description": f"Unix time of the attempt, in seconds; within {TOLERANCE // 60} minutes "
        "of the receiver's clock.",
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
    },
    {
        "in": "header",
        "name": "webhook-signature",
        "required": True,
        "description": "`v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>` under the "
        "endpoint's secret; several, space-separated, while a secret is rotated.",
        "schema": {"type": "string", "maxLength": 2000},
    },
]
_BODY = {
    "required": True,
    "description": "A contract event (docs/webhooks-in.md).",
    "content": {
        "application/json": {
            "schema": _inline(InboundEventIn.model_json_schema(ref_template="#/$defs/{model}"))
        }
    },
}


def _read_body(request: HttpRequest) -> bytes:
    """The raw body the signature covers, refused past MAX_BODY before it is read."""
    problem = f"is larger than the {amount(MAX_BODY)} an inbound event may have"
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY:
        raise BodyTooLarge("body", problem)
    body = request.body
    if len(body) > MAX_BODY:
        raise BodyTooLarge("body", problem)
    return body


def _event(body: bytes) -> services.ContractEvent:
    """The payload as JSON, strictly (unknown fields refused); each problem names its field."""
    try:
        sent = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValidationFailed({"body": ["is not UTF-8 text"]}) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise ValidationFailed({"body": [f"is not valid JSON: {reason}"]}) from None
    try:
        event = InboundEventIn.model_validate(sent)
    except pydantic.ValidationError as exc:
        fields: dict[str, list[str]] = {}
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "body"
            fields.setdefault(name, []).append(err["msg"])
        raise ValidationFailed(fields) from None
    found: dict[str, list[str]] = {}
    for name, problem in problems(event, ""):
        found.setdefault(name, []).append(problem)
    if found:
        raise ValidationFailed(found)
    return services.ContractEvent(
        type=event.type,
        trigger_date=event.data.trigger_date,
        contract_reference=event.data.contract_reference,
        client_reference=event.data.client_reference,
        effective_end_date=event.data.effective_end_date,
        terminated_by=event.data.terminated_by,
        notes=event.data.notes,
    )


def _answer(request: HttpRequest, delivery: InboundDelivery) -> dict[str, Any]:
    case = delivery.case
    return {
        "webhook_id": delivery.webhook_id,
        "outcome": delivery.outcome,
        "received_at": delivery.received_at,
        "case": {
            "ref": case.ref,
            "state": case.state,
            "url": request.build_absolute_uri(reverse("web:case-detail", args=[case.ref])),
            "api_url": request.build_absolute_uri(reverse("api:get_case", args=[case.ref])),
        },
    }


@router.post(
    "/{endpoint_id}/events",
    auth=None,
    response={
        200: DeliveryOut,
        401: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
        503: ErrorOut,
    },
    summary="Open a case from another system's signed event (inbound webhook)",
    description="Authenticated by the Standard Webhooks signature, not a bearer token. "
    "200 with the case opened; a repeat of a `webhook-id` answers the same and writes "
    "nothing. 404 unknown or revoked endpoint; 401 `bad_signature` (`details.fields` names "
    "the header: missing, stale timestamp, no matching signature); 422 `invalid` names the "
    "payload's field (`data.contract_reference`, …) or the endpoint's setting "
    "(`endpoint.case_owner`, `endpoint.playbook`); 409 `duplicate_case` while the client has "
    "an open case for the contract, or `delivery_id_reused` for a known id with another body. "
    "None of the refusals writes anything.",
    openapi_extra={"parameters": _HEADERS, "requestBody": _BODY},
)
def receive_event(request: HttpRequest, endpoint_id: str) -> Any:
    endpoint = selectors.live_endpoint(endpoint_id)
    body = _read_body(request)
    now = clock.now()
    try:
        endpoint_secrets = selectors.valid_secrets(endpoint, now)
    except SealedValueUnavailable as exc:
        log.error("inbound endpoint %s: %s", endpoint.public_id, exc)
        raise EndpointUnavailable(
            "This endpoint's secret cannot be read on the server; an admin must restore the "
            "sealing key or create a new endpoint. Try again later."
        ) from None
    try:
        signed = verify(
            endpoint_secrets=endpoint_secrets,
            msg_id=request.headers.get("webhook-id"),
            timestamp=request.headers.get("webhook-timestamp"),
            signatures=request.headers.get("webhook-signature"),
            body=body,
            now=now.timestamp(),
        )
    except SignatureRefused as exc:
        raise SignatureNotVerified(
            f"{exc.header}: {exc.problem}.", details={"fields": {exc.header: [exc.problem]}}
        ) from None
    try:
        received = services.receive_event(
            endpoint=endpoint,
            delivery=signed,
            body_sha256=hashlib.sha256(body).hexdigest(),
            event=_event(body),
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:300] or None,
        )
    except DuplicateCase as exc:
        raise Conflict(
            f"{exc.headline} The event opened no case.",
            code=exc.code,
            details=exc.details,
        ) from None
    return Status(200, _answer(request, received.delivery))
