"""Read queries for outbound webhook endpoints, their deliveries and attempts."""

import datetime as dt
import uuid
from typing import Any

from django.db.models import Count, Max, Q, QuerySet

from offboard.accounts.models import Membership
from offboard.core.errors import NotFound
from offboard.core.sealing import unseal
from offboard.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

State = WebhookEndpoint.State


def endpoints(org: object) -> QuerySet[WebhookEndpoint]:
    """The organization's endpoints (not deleted), active first, with delivery counts."""
    return (
        WebhookEndpoint.objects.for_org(org)
        .exclude(state=State.DELETED)
        .select_related("created_by")
        .annotate(
            delivery_count=Count("deliveries"),
            pending_count=Count(
                "deliveries", filter=Q(deliveries__state=WebhookDelivery.State.PENDING)
            ),
            last_delivered_at=Max("deliveries__delivered_at"),
        )
        .order_by("state", "-created_at", "-id")
    )


def get_endpoint(org: object, endpoint_id: object) -> WebhookEndpoint:
    """An endpoint of `org` by its public id (API) or row id (web); deleted ones are gone."""
    lookup: dict[str, object]
    if isinstance(endpoint_id, int):
        lookup = {"pk": endpoint_id}
    else:
        try:
            lookup = {"public_id": uuid.UUID(str(endpoint_id))}
        except ValueError:
            raise NotFound(f"No webhook endpoint {str(endpoint_id)[:80]!r} here.") from None
    found = WebhookEndpoint.objects.for_org(org).exclude(state=State.DELETED).filter(**lookup)
    endpoint = found.select_related("org", "created_by").first()
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {str(endpoint_id)[:80]!r} in this organization.")
    return endpoint


def deliveries(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(org_id=endpoint.org_id, endpoint=endpoint).order_by(
        "-created_at", "-id"
    )


def get_delivery(endpoint: WebhookEndpoint, msg_id: str) -> WebhookDelivery:
    found = deliveries(endpoint).filter(msg_id=str(msg_id)[:64]).first()
    if found is None:
        raise NotFound(f"No delivery {str(msg_id)[:80]!r} to this endpoint.")
    return found


def attempts_of(delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    """Every attempt of the given deliveries, newest first, in one query."""
    found: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        for attempt in WebhookAttempt.objects.filter(delivery_id__in=delivery_ids).order_by(
            "-started_at", "-id"
        ):
            found[attempt.delivery_id].append(attempt)
    return found


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one until
    its grace period after a rotation ends. `SealedValueUnavailable` if one cannot be opened."""
    found = [unseal(endpoint.secret_sealed, context=endpoint.seal_context).decode()]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_sealed and expires is not None and now < expires:
        found.append(
            unseal(endpoint.previous_secret_sealed, context=endpoint.seal_context).decode()
        )
    return found


def admin_emails(org: Any) -> list[str]:
    """Who is told when an endpoint is disabled: the organization's active admins."""
    return sorted(
        Membership.objects.filter(org=org, role=Membership.Role.ADMIN, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
