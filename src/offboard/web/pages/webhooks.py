"""Settings → Outbound webhooks: an admin adds an endpoint (its secret shown in that answer
only), rotates its secret, disables, enables or deletes it; the delivery log of an endpoint,
with a redeliver button on each delivery. Each action is one service call."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.permissions import require
from offboard.web.pages.common import actor_of, staff_page
from offboard.web.pages.settings import _render
from offboard.webhooks import selectors as webhooks
from offboard.webhooks.delivery import deliver_one
from offboard.webhooks.services import (
    create_webhook_endpoint,
    delete_webhook_endpoint,
    disable_webhook_endpoint,
    enable_webhook_endpoint,
    redeliver,
    rotate_webhook_secret,
)

PAGE = 50


def _shown_once(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # the secret is in this answer only
    return response


def _back() -> HttpResponse:
    return redirect(reverse("web:settings") + "#webhooks")


@require_POST
@staff_page
def create_endpoint(request: HttpRequest, membership: Membership) -> HttpResponse:
    post = request.POST
    try:
        issued = create_webhook_endpoint(
            actor=actor_of(request, membership),
            name=post.get("name", ""),
            url=post.get("url", ""),
            event_types=post.get("event_types", ""),
        )
    except ValidationFailed as exc:
        return _render(request, membership, webhooks={"errors": exc.errors}, status=422)
    return _shown_once(_render(request, membership, webhooks={"issued": issued}))


@require_POST
@staff_page
def rotate_secret(request: HttpRequest, membership: Membership, endpoint_id: int) -> HttpResponse:
    endpoint = webhooks.get_endpoint(membership.org, endpoint_id)
    issued = rotate_webhook_secret(actor=actor_of(request, membership), endpoint=endpoint)
    return _shown_once(_render(request, membership, webhooks={"issued": issued, "rotated": True}))


@require_POST
@staff_page
def endpoint_state(
    request: HttpRequest, membership: Membership, endpoint_id: int, action: str
) -> HttpResponse:
    """Disable, enable or delete an endpoint."""
    if action not in ("disable", "enable", "delete"):
        raise Http404(f"No webhook endpoint action '{action[:40]}'.")
    endpoint = webhooks.get_endpoint(membership.org, endpoint_id)
    actor = actor_of(request, membership)
    try:
        if action == "disable":
            disable_webhook_endpoint(
                actor=actor, endpoint=endpoint, reason=request.POST.get("reason", "")
            )
        elif action == "enable":
            enable_webhook_endpoint(actor=actor, endpoint=endpoint)
        else:
            delete_webhook_endpoint(actor=actor, endpoint=endpoint)
    except (Conflict, ValidationFailed) as exc:
        return _render(request, membership, webhooks={"error": exc.message}, status=409)
    return _back()


@staff_page
def deliveries(request: HttpRequest, membership: Membership, endpoint_id: int) -> HttpResponse:
    """The delivery log of one endpoint: the latest deliveries, each with its attempts."""
    endpoint = webhooks.get_endpoint(membership.org, endpoint_id)
    require(actor_of(request, membership), "webhooks.manage")
    return _log(request, membership, endpoint)


def _log(
    request: HttpRequest,
    membership: Membership,
    endpoint: object,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    shown = list(webhooks.deliveries(endpoint)[:PAGE])  # type: ignore[arg-type]
    attempts = webhooks.attempts_of([d.pk for d in shown])
    return render(
        request,
        "web/settings/webhook_deliveries.html",
        {
            "membership": membership,
            "endpoint": endpoint,
            "rows": [{"delivery": d, "attempts": attempts[d.pk]} for d in shown],
            "total": webhooks.deliveries(endpoint).count(),  # type: ignore[arg-type]
            "page": PAGE,
            "error": error,
        },
        status=status,
    )


@require_POST
@staff_page
def redeliver_now(
    request: HttpRequest, membership: Membership, endpoint_id: int, delivery_id: str
) -> HttpResponse:
    endpoint = webhooks.get_endpoint(membership.org, endpoint_id)
    found = webhooks.get_delivery(endpoint, delivery_id)
    try:
        redeliver(actor=actor_of(request, membership), delivery=found)
    except Conflict as exc:
        return _log(request, membership, endpoint, error=exc.message, status=409)
    deliver_one(found.pk, manual=True)  # now, within this request (at most the timeout)
    return redirect(reverse("web:webhook-deliveries", args=[endpoint.pk]) + f"#{found.msg_id}")
