"""Staff views that take files, and who may send them.

A view marked `@takes_files(gate)` has its gate asked by RequestBodyLimitsMiddleware before
anything reads the request body, CSRF included: a visitor without a session, a member whose
role may not upload there, or a request for another organization's object is refused
without the server reading — let alone spooling — what was sent. Past the gate the body may
carry files up to OFFBOARD_MAX_UPLOAD_BYTES (core/bodies.py); elsewhere, a form's worth.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound, JsonResponse
from django.views.defaults import ERROR_PAGE_TEMPLATE

from offboard.accounts.models import Membership
from offboard.core.errors import NotFound, PermissionDenied
from offboard.core.permissions import require
from offboard.web.pages.common import actor_of, forbidden, membership_of

Gate = Callable[[HttpRequest, dict[str, Any]], HttpResponse | None]
ViewT = TypeVar("ViewT", bound=Callable[..., Any])


def takes_files(gate: Gate) -> Callable[[ViewT], ViewT]:
    """Mark a view (the outermost decorator) as taking files, sent only past `gate`."""

    def mark(view: ViewT) -> ViewT:
        view.files_gate = gate  # type: ignore[attr-defined]
        return view

    return mark


def members_who_may(
    *capabilities: str,
    find: Callable[[Membership, dict[str, Any]], Any] | None = None,
    refusal: str = "",
    answer_json: bool = False,
) -> Gate:
    """A gate letting in a signed-in member whose role holds every capability and, with
    `find`, who can see the object the URL names (another organization's is a 404). Pages
    get the login redirect and the 403 page (saying `refusal`, with `{role}`, if given, as
    the view itself would); `answer_json` (the drop zone) gets `{"error"}`."""

    def gate(request: HttpRequest, kwargs: dict[str, Any]) -> HttpResponse | None:
        if not request.user.is_authenticated:
            if answer_json:
                return JsonResponse({"error": "Your session has ended: sign in again."}, status=401)
            return redirect_to_login(request.get_full_path())
        try:
            membership = membership_of(request)
        except Http404 as exc:
            return _not_found(str(exc), answer_json)
        try:
            for capability in capabilities:
                require(actor_of(request, membership), capability)
        except PermissionDenied as exc:
            message = refusal.format(role=membership.role) if refusal else exc.message
            if answer_json:
                return JsonResponse({"error": message}, status=403)
            return forbidden(request, message, membership)
        if find is not None:
            try:
                find(membership, kwargs)
            except (NotFound, Http404) as exc:
                return _not_found(getattr(exc, "message", str(exc)), answer_json)
        return None

    return gate


def _not_found(message: str, answer_json: bool) -> HttpResponse:
    """Answered here rather than raised: Django's 404 view checks the CSRF token first, which
    reads the form — the body this gate keeps unread."""
    if answer_json:
        return JsonResponse({"error": message}, status=404)
    page = ERROR_PAGE_TEMPLATE % {
        "title": "Not Found",
        "details": "The requested resource was not found on this server.",
    }
    return HttpResponseNotFound(page)
