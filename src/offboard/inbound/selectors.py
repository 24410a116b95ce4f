"""Read queries for inbound webhook endpoints and their deliveries."""

import datetime as dt
import uuid
from collections.abc import Iterable

from django.db.models import Count, F, Max, QuerySet, Window
from django.db.models.functions import RowNumber

from offboard.core.errors import NotFound
from offboard.core.sealing import unseal
from offboard.inbound.models import InboundDelivery, InboundEndpoint

RECENT_DELIVERIES = 5


def endpoints(org: object) -> QuerySet[InboundEndpoint]:
    """The organization's endpoints, live first, with their delivery count and latest."""
    return (
        InboundEndpoint.objects.for_org(org)
        .select_related("case_owner", "playbook", "created_by")
        .annotate(
            delivery_count=Count("deliveries"), last_delivery_at=Max("deliveries__received_at")
        )
        .order_by("revoked_at", "-created_at", "-id")
    )


def get_endpoint(org: object, endpoint_id: int) -> InboundEndpoint:
    return InboundEndpoint.objects.get_in_org(org, "inbound endpoint", pk=endpoint_id)


def live_endpoint(public_id: str) -> InboundEndpoint:
    """The live endpoint a delivery is addressed to, whichever organization it belongs to:
    its unguessable id is the address. Unknown and revoked ones are alike not found."""
    try:
        key = uuid.UUID(public_id)
    except ValueError:
        key = None
    found = (
        InboundEndpoint.objects.select_related("org", "playbook")
        .filter(public_id=key, revoked_at__isnull=True)
        .first()
        if key is not None
        else None
    )
    if found is None:
        raise NotFound(
            f"No inbound endpoint {public_id[:80]!r} is receiving events: check the URL in the "
            "sender's configuration against Offboard's Settings → Inbound webhooks."
        )
    return found


def recent_deliveries(
    endpoint_ids: Iterable[int], per_endpoint: int = RECENT_DELIVERIES
) -> dict[int, list[InboundDelivery]]:
    """The latest deliveries of each endpoint, newest first, in one query."""
    ids = list(endpoint_ids)
    if not ids:
        return {}
    latest = (
        InboundDelivery.objects.select_related("case")
        .filter(endpoint_id__in=ids)
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("endpoint_id")],
                order_by=[F("received_at").desc(), F("id").desc()],
            )
        )
        .filter(place__lte=per_endpoint)
        .order_by("endpoint_id", "place")
    )
    found: dict[int, list[InboundDelivery]] = {i: [] for i in ids}
    for d in latest:
        found[d.endpoint_id].append(d)
    return found


def delivery(endpoint: InboundEndpoint, webhook_id: str) -> InboundDelivery | None:
    return (
        InboundDelivery.objects.select_related("case")
        .filter(endpoint=endpoint, webhook_id=webhook_id)
        .first()
    )


def valid_secrets(endpoint: InboundEndpoint, now: dt.datetime) -> list[str]:
    """The secrets a delivery may be signed with now: the current one, and the previous one
    until its grace period after a rotation ends. `SealedValueUnavailable` if one cannot be
    opened."""
    found = [unseal(endpoint.secret_sealed, context=endpoint.seal_context).decode()]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_sealed and expires is not None and now < expires:
        found.append(
            unseal(endpoint.previous_secret_sealed, context=endpoint.seal_context).decode()
        )
    return found
