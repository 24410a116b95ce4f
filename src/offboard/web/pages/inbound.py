"""Settings → Inbound webhooks: an admin adds an endpoint (its secret shown in that answer
only), rotates its secret, or revokes it. Each is one service call; the page answers."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.core.errors import Conflict, ValidationFailed
from offboard.inbound import selectors as inbound
from offboard.inbound.services import (
    create_inbound_endpoint,
    revoke_inbound_endpoint,
    rotate_inbound_secret,
)
from offboard.web.pages.common import actor_of, staff_page
from offboard.web.pages.settings import _render


def _shown_once(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # the secret is in this answer only
    return response


@require_POST
@staff_page
def create_endpoint(request: HttpRequest, membership: Membership) -> HttpResponse:
    post = request.POST
    owner = post.get("case_owner_id", "")
    try:
        issued = create_inbound_endpoint(
            actor=actor_of(request, membership),
            name=post.get("name", ""),
            case_owner_id=int(owner) if owner.isdigit() and len(owner) < 19 else 0,
            playbook_slug=post.get("playbook", ""),
            open_as_draft=post.get("open_as_draft") == "on",
        )
    except ValidationFailed as exc:
        return _render(request, membership, inbound={"errors": exc.errors}, status=422)
    return _shown_once(_render(request, membership, inbound={"issued": issued}))


@require_POST
@staff_page
def rotate_secret(request: HttpRequest, membership: Membership, endpoint_id: int) -> HttpResponse:
    endpoint = inbound.get_endpoint(membership.org, endpoint_id)
    try:
        issued = rotate_inbound_secret(actor=actor_of(request, membership), endpoint=endpoint)
    except Conflict as exc:
        return _render(request, membership, inbound={"error": exc.message}, status=409)
    return _shown_once(_render(request, membership, inbound={"issued": issued, "rotated": True}))


@require_POST
@staff_page
def revoke_endpoint(request: HttpRequest, membership: Membership, endpoint_id: int) -> HttpResponse:
    endpoint = inbound.get_endpoint(membership.org, endpoint_id)
    try:
        revoke_inbound_endpoint(actor=actor_of(request, membership), endpoint=endpoint)
    except Conflict as exc:
        return _render(request, membership, inbound={"error": exc.message}, status=409)
    return redirect(reverse("web:settings") + "#inbound")
