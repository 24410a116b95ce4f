"""Staff pages: the case list and the downloads of a case (its evidence pack, its evidence
files, its closure certificate); the case workspace is in `workspace.py`."""

import re

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from offboard.accounts.models import Membership
from offboard.cases import selectors
from offboard.cases.models import OffboardingCase
from offboard.core.errors import NotFound, PermissionDenied
from offboard.core.permissions import require
from offboard.evidence.models import EvidenceFile
from offboard.evidence.storage import StorageUnavailable, open_stored
from offboard.notifications.selectors import receipt_for
from offboard.web.pages.common import actor_of, membership_of, staff_page
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


# --- evidence files and the closure certificate --------------------------------------------------

# Downloaded, never rendered: a file that is really HTML or SVG cannot run in our origin.
FILE_CSP = "default-src 'none'; sandbox"


def safe_filename(name: str, fallback: str) -> str:
    """The file's own name, made safe for a Content-Disposition header: no path, no control
    characters, no quotes or separators, at most 150 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r'[\x00-\x1f\x7f"<>:|?*;]+', "_", base).strip(" .")
    return base[:150] or fallback


def attachment(file: EvidenceFile) -> HttpResponseBase:
    """The stored bytes as a download, under their own name and sniffed type, checked against
    their SHA-256 as they stream: a corrupted file's download is cut short of its length."""
    try:
        stream = open_stored(file.storage_name, sha256=file.sha256)
    except StorageUnavailable as exc:
        return HttpResponse(exc.message, status=503, content_type="text/plain; charset=utf-8")
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=safe_filename(file.original_name, f"evidence-{file.sha256[:12]}"),
        content_type=file.media_type or "application/octet-stream",
    )
    response["Content-Length"] = str(stream.size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@staff_page
def evidence_file(
    request: HttpRequest, membership: Membership, ref: str, sha256: str
) -> HttpResponseBase:
    """One evidence file attached to this case, for the roles that read evidence. Reads are not
    recorded (the API's download is not either); the portal records the client's."""
    actor = actor_of(request, membership)
    case = selectors.get_case(membership.org, ref)
    require(actor, "evidence.read")
    return attachment(selectors.case_file(case, sha256))


@require_GET
@staff_page
def closure_certificate(request: HttpRequest, membership: Membership, ref: str) -> HttpResponseBase:
    """The closure certificate of a closed case: the signed PDF its receipt carries."""
    actor = actor_of(request, membership)
    case = selectors.get_case(membership.org, ref)
    require(actor, "evidence.read")
    receipt = receipt_for(case) if case.state == OffboardingCase.State.CLOSED else None
    if receipt is None or receipt.certificate is None:
        message = (
            f"Case {case.ref} is {case.state}: only a closed case has a closure certificate."
            if receipt is None
            else f"The closure certificate of {case.ref} is not issued yet: it is made in the "
            "background right after closing. Reload the case in a minute."
        )
        context = {"membership": membership, "case": case, "message": message}
        return render(request, "web/unavailable.html", context, status=404)
    return attachment(receipt.certificate)
