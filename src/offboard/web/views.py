"""Staff pages: the case list and the evidence-pack download; the case workspace is in
`workspace.py`."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_POST

from offboard.cases import selectors
from offboard.cases.models import OffboardingCase
from offboard.core.errors import NotFound, PermissionDenied
from offboard.web.pages.common import actor_of, membership_of
from offboard.web.workspace import case_detail as case_detail  # the workspace, re-exported


@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    state = request.GET.get("state") or None
    if state not in (None, *OffboardingCase.State.values):
        state = None
    qs = selectors.cases(membership.org, state=state, search=request.GET.get("q", "").strip())
    counts = selectors.state_counts(membership.org)
    return render(
        request,
        "web/case_list.html",
        {
            "membership": membership,
            "cases": qs[:200],
            "state": state,
            "counts": counts,
            "q": request.GET.get("q", ""),
        },
    )


@require_POST
@login_required
def evidence_pack(request: HttpRequest, ref: str) -> HttpResponseBase:
    """The case's evidence pack as a download (auditors, managers, admins); recorded as an event.
    POST with the CSRF token: a link another site could make the browser follow would record
    exports nobody asked for."""
    from offboard.packs.api import pack_response
    from offboard.packs.export import start_export

    membership = membership_of(request)
    actor = actor_of(request, membership)
    try:
        plan = start_export(actor=actor, case=selectors.get_case(membership.org, ref))
    except NotFound as exc:
        raise Http404(str(exc)) from None
    except PermissionDenied as exc:
        return HttpResponseForbidden(exc.message, content_type="text/plain; charset=utf-8")
    return pack_response(plan)
