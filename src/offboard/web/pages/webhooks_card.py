"""The Settings card of outbound webhook endpoints, for admins: each endpoint with its address,
filter, state and latest outcome, the form that adds one, and a new secret in the answer that
made it."""

from typing import Any

from django.http import HttpRequest

from offboard.accounts.models import Membership
from offboard.core.permissions import can
from offboard.web.pages.common import actor_of
from offboard.webhooks import selectors as webhooks
from offboard.webhooks.services import IssuedEndpoint

FIELDS = ("name", "url", "event_types")


def webhooks_card(
    request: HttpRequest,
    membership: Membership,
    *,
    issued: IssuedEndpoint | None = None,
    rotated: bool = False,
    errors: dict[str, list[str]] | None = None,
    error: str = "",
) -> dict[str, Any]:
    if not can(actor_of(request, membership), "webhooks.manage"):
        return {"shown": False}
    endpoints = list(webhooks.endpoints(membership.org))
    errors = errors or {}
    values = request.POST if errors else {}
    return {
        "shown": True,
        "rows": endpoints,
        "active": sum(1 for e in endpoints if e.active),
        "issued": {"endpoint": issued.endpoint, "secret": issued.secret, "rotated": rotated}
        if issued
        else None,
        "error": error,
        "errors": errors,
        "field_errors": {name: errors.get(name, []) for name in FIELDS},
        "other_errors": {k: v for k, v in errors.items() if k not in FIELDS},
        "values": {
            "name": values.get("name", ""),
            "url": values.get("url", ""),
            "event_types": values.get("event_types", ""),
        },
    }
