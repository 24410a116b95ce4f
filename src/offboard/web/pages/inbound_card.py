"""The Settings card of inbound webhook endpoints, for admins: each endpoint with its address
and latest deliveries, the form that adds one, and a new secret in the answer that made it."""

from typing import Any

from django.conf import settings as conf
from django.http import HttpRequest
from django.urls import reverse

from offboard.accounts.models import Membership
from offboard.core.permissions import can
from offboard.inbound import selectors as inbound
from offboard.inbound.models import InboundEndpoint
from offboard.inbound.services import IssuedEndpoint
from offboard.playbooks.models import Playbook
from offboard.web.pages.common import actor_of

FIELDS = ("name", "case_owner_id", "playbook", "open_as_draft")


def endpoint_url(request: HttpRequest, endpoint: InboundEndpoint) -> str:
    """Where the sender posts: under OFFBOARD_BASE_URL when set (behind a proxy the address a
    request came to can be an internal one), else that address."""
    path = reverse("api:receive_event", args=[str(endpoint.public_id)])
    base = str(conf.OFFBOARD_BASE_URL or "").rstrip("/")
    return f"{base}{path}" if base else request.build_absolute_uri(path)


def inbound_card(
    request: HttpRequest,
    membership: Membership,
    *,
    issued: IssuedEndpoint | None = None,
    rotated: bool = False,
    errors: dict[str, list[str]] | None = None,
    error: str = "",
) -> dict[str, Any]:
    if not can(actor_of(request, membership), "inbound.manage"):
        return {"shown": False}
    org = membership.org
    endpoints = list(inbound.endpoints(org))
    recent = inbound.recent_deliveries(
        [e.pk for e in endpoints if getattr(e, "delivery_count", 0)]  # annotated
    )
    errors = errors or {}
    values = request.POST if errors else {}
    return {
        "shown": True,
        "rows": [
            {
                "endpoint": e,
                "path": reverse("api:receive_event", args=[str(e.public_id)]),
                "deliveries": recent.get(e.pk, []),
            }
            for e in endpoints
        ],
        "live": sum(1 for e in endpoints if e.enabled),
        "issued": (
            {
                "endpoint": issued.endpoint,
                "secret": issued.secret,
                "url": endpoint_url(request, issued.endpoint),
                "rotated": rotated,
            }
            if issued
            else None
        ),
        "error": error,
        "errors": errors,
        "field_errors": {name: errors.get(name, []) for name in FIELDS},
        "other_errors": {k: v for k, v in errors.items() if k not in FIELDS},
        "values": {
            "name": values.get("name", ""),
            "case_owner_id": values.get("case_owner_id", str(membership.user_id)),
            "playbook": values.get("playbook", ""),
            "open_as_draft": bool(values.get("open_as_draft")),
        },
        # The case owner is chosen among the page's `members` (no query of its own here).
        "playbooks": list(Playbook.objects.for_org(org).order_by("name").only("slug", "name")),
    }
