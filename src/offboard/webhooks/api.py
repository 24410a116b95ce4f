"""/api/v1/webhooks: the organization's outbound webhook endpoints and their delivery log
(admins; docs/webhooks-out.md). A secret is in the answer that made it only."""

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from offboard.core.api import actor_of
from offboard.core.permissions import require
from offboard.core.schemas import Input, error_responses, paginated
from offboard.core.scopes import scope
from offboard.webhooks import delivery, selectors, services
from offboard.webhooks.models import WebhookDelivery, WebhookEndpoint

router = Router(tags=["outbound webhooks"])


class EndpointOut(Schema):
    id: str = Field(description="The endpoint's id (a UUID).")
    name: str
    url: str
    event_types: list[str] = Field(
        description="Event types or prefixes (`case.*`) posted here; empty: every event."
    )
    state: Literal["active", "disabled"]
    consecutive_failures: int = Field(description="Failed attempts in a row (0 after a 2xx).")
    disabled_at: dt.datetime | None
    disabled_reason: str
    created_at: dt.datetime
    secret_rotated_at: dt.datetime | None
    previous_secret_valid_until: dt.datetime | None = Field(
        description="After a rotation: until when the previous secret signs too."
    )


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_…`). Shown this once; stored encrypted."
    )


class EndpointIn(Input):
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="https:// (or http://) address the events are posted to; no user:password@. "
        "Internal addresses are refused unless OFFBOARD_WEBHOOKS_ALLOW_PRIVATE is on.",
    )
    event_types: list[str] = Field(
        [],
        max_length=50,
        description="Event types (`case.closed`) or prefixes (`case.*`); empty: every event.",
    )


class DisableIn(Input):
    reason: str = Field("", max_length=500, description="Why; kept in the record.")


class AttemptOut(Schema):
    number: int
    manual: bool = Field(description="Asked for by an admin (a redelivery).")
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    response_excerpt: str = Field(description="The first 1,000 characters of the answer.")
    error: str


class DeliveryOut(Schema):
    id: str = Field(description="The delivery's `webhook-id`, the same at every attempt.")
    event_index: int = Field(description="The event's index in the organization's ledger.")
    event_type: str
    state: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    last_status: int | None
    last_error: str
    attempt_log: list[AttemptOut] = Field(description="Every attempt, newest first.")

    @staticmethod
    def resolve_id(obj: WebhookDelivery) -> str:
        return obj.msg_id

    @staticmethod
    def resolve_attempt_log(obj: WebhookDelivery) -> list[Any]:
        return list(obj.attempt_log.all())


def _manager(request: HttpRequest) -> Any:
    actor = actor_of(request)
    require(actor, "webhooks.manage")
    return actor


@router.get(
    "",
    response={200: list[EndpointOut], **error_responses(403)},
    summary="The organization's webhook endpoints (admins)",
)
@paginated
def list_endpoints(request: HttpRequest) -> Any:
    return [endpoint_out(e) for e in selectors.endpoints(_manager(request).org)]


@router.post(
    "",
    response={201: EndpointCreatedOut, **error_responses(403, 422)},
    summary="Add a webhook endpoint (admins); its secret is returned once",
)
@scope("admin")
def create_endpoint(request: HttpRequest, payload: EndpointIn) -> Any:
    issued = services.create_webhook_endpoint(
        actor=actor_of(request),
        name=payload.name,
        url=payload.url,
        event_types=payload.event_types,
    )
    return Status(201, _with_secret(issued))


def _with_secret(issued: services.IssuedEndpoint) -> dict[str, Any]:
    return {**endpoint_out(issued.endpoint), "secret": issued.secret}


def endpoint_out(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": str(e.public_id),
        "name": e.name,
        "url": e.url,
        "event_types": list(e.event_types),
        "state": e.state,
        "consecutive_failures": e.consecutive_failures,
        "disabled_at": e.disabled_at,
        "disabled_reason": e.disabled_reason,
        "created_at": e.created_at,
        "secret_rotated_at": e.secret_rotated_at,
        "previous_secret_valid_until": (
            e.previous_secret_expires_at if e.previous_secret_sealed else None
        ),
    }


@router.get(
    "/{endpoint_id}",
    response={200: EndpointOut, **error_responses(403, 404)},
    summary="One webhook endpoint (admins)",
)
def get_endpoint(request: HttpRequest, endpoint_id: str) -> Any:
    return endpoint_out(selectors.get_endpoint(_manager(request).org, endpoint_id))


@router.post(
    "/{endpoint_id}/rotate",
    response={200: EndpointCreatedOut, **error_responses(403, 404)},
    summary="Rotate an endpoint's secret (admins); the previous one signs too for 24 hours",
)
@scope("admin")
def rotate_secret(request: HttpRequest, endpoint_id: str) -> Any:
    actor = actor_of(request)
    endpoint = selectors.get_endpoint(actor.org, endpoint_id)
    return _with_secret(services.rotate_webhook_secret(actor=actor, endpoint=endpoint))


@router.post(
    "/{endpoint_id}/disable",
    response={200: EndpointOut, **error_responses(403, 404, 409, 422)},
    summary="Disable an endpoint (admins): nothing is posted, its deliveries wait",
)
@scope("admin")
def disable_endpoint(request: HttpRequest, endpoint_id: str, payload: DisableIn) -> Any:
    actor = actor_of(request)
    endpoint = selectors.get_endpoint(actor.org, endpoint_id)
    return endpoint_out(
        services.disable_webhook_endpoint(actor=actor, endpoint=endpoint, reason=payload.reason)
    )


@router.post(
    "/{endpoint_id}/enable",
    response={200: EndpointOut, **error_responses(403, 404, 409)},
    summary="Enable an endpoint again (admins): its waiting deliveries go at once",
)
@scope("admin")
def enable_endpoint(request: HttpRequest, endpoint_id: str) -> Any:
    actor = actor_of(request)
    endpoint = selectors.get_endpoint(actor.org, endpoint_id)
    return endpoint_out(services.enable_webhook_endpoint(actor=actor, endpoint=endpoint))


@router.delete(
    "/{endpoint_id}",
    response={204: None, **error_responses(403, 404)},
    summary="Delete an endpoint (admins): its secret is erased, its waiting deliveries cancelled",
)
@scope("admin")
def delete_endpoint(request: HttpRequest, endpoint_id: str) -> Any:
    actor = actor_of(request)
    endpoint = selectors.get_endpoint(actor.org, endpoint_id)
    services.delete_webhook_endpoint(actor=actor, endpoint=endpoint)
    return Status(204, None)


@router.get(
    "/{endpoint_id}/deliveries",
    response={200: list[DeliveryOut], **error_responses(403, 404)},
    summary="An endpoint's delivery log, newest first, each with its attempts (admins)",
)
@paginated
def list_deliveries(request: HttpRequest, endpoint_id: str) -> Any:
    endpoint = selectors.get_endpoint(_manager(request).org, endpoint_id)
    return selectors.deliveries(endpoint).prefetch_related("attempt_log")


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    response={200: DeliveryOut, **error_responses(403, 404, 409)},
    summary="Post a delivery again now, with the same webhook-id (admins)",
    description="Attempted within the request (up to OFFBOARD_WEBHOOK_TIMEOUT seconds); the "
    "answer is the delivery with that attempt in its log. 409 `endpoint_disabled` while the "
    "endpoint is disabled, `delivery_in_progress` while a worker is attempting it.",
)
@scope("admin")
def redeliver(request: HttpRequest, endpoint_id: str, delivery_id: str) -> Any:
    actor = actor_of(request)
    endpoint = selectors.get_endpoint(actor.org, endpoint_id)
    found = selectors.get_delivery(endpoint, delivery_id)
    services.redeliver(actor=actor, delivery=found)
    delivery.deliver_one(found.pk, manual=True)
    return selectors.deliveries(endpoint).prefetch_related("attempt_log").get(pk=found.pk)
