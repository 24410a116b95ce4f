"""The actions posted from the case workspace (the page itself is `workspace_page.py`).

Every action parses its form, calls one service function and answers with the workspace:
an HTMX request gets the changed item plus the regions every change can move (header,
closure panel, approvals, tab counts, waivers, timeline), which the page swaps in place; a
plain post is redirected back to the item. A refused action re-renders with the service's
message next to the form that caused it (per field for validation errors).
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from offboard.cases import selectors, services
from offboard.cases.models import OffboardingCase, Step
from offboard.cases.registers import REGISTERS, RegisterSpec
from offboard.core.actor import Actor
from offboard.core.errors import NotFound, OffboardError, ValidationFailed
from offboard.core.permissions import can
from offboard.evidence.selectors import files_by_hash
from offboard.evidence.services import atomic_with_files, store_file, upload_evidence
from offboard.web import workspace_forms as forms
from offboard.web.pages.common import actor_of, membership_of
from offboard.web.uploads import members_who_may, takes_files
from offboard.web.workspace_page import (
    REGIONS,
    Failure,
    case_detail,
    case_or_404,
    case_url,
    item_anchor,
    page_of,
    workspace_context,
)

__all__ = ["REGIONS", "case_detail", "item_anchor", "require_confirmation", "urlpatterns"]

# --- actions -------------------------------------------------------------------------------------


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _evidence(actor: Actor, request: HttpRequest) -> list[Any]:
    """Files for an action: uploaded beforehand (sha256 in `evidence`, the drop zone) or sent
    with the form itself (`evidence_file`, the no-JavaScript fallback). Those are stored as
    part of the action (`_with_files`) and recorded by its event, which lists them."""
    files = files_by_hash(actor.org, request.POST.getlist("evidence"))
    for upload in request.FILES.getlist("evidence_file"):
        files.append(
            store_file(actor=actor, stream=upload, name=upload.name or "file", field="evidence")
        )
    return files


def _with_files(do: Callable[[Actor, OffboardingCase], Any]) -> Callable[..., Any]:
    """An action whose form may carry files: one transaction for the files' rows and the
    action, whose checks run before the bytes are written (at its end). A refused action —
    403, 409, 422 — leaves no row, no event and no file behind."""

    def run(actor: Actor, case: OffboardingCase) -> Any:
        with atomic_with_files():
            return do(actor, case)

    return run


def _case_named(membership: Any, kwargs: dict[str, Any]) -> OffboardingCase:
    return case_or_404(membership, kwargs["ref"])


# Who may send files to the workspace: checked before the body is read (web/uploads.py).
FILES_GATE = members_who_may("evidence.upload", find=_case_named)


def act(
    request: HttpRequest,
    ref: str,
    *,
    form: str,
    target: str,
    anchor: str,
    do: Callable[[Actor, OffboardingCase], Any],
    show: str = "",
) -> HttpResponse:
    """Run `do` and answer with the workspace. With `show`, what `do` returns is shown once
    under that name (a portal link's URL), so even a plain post is answered in place."""
    membership = membership_of(request)
    actor = actor_of(request, membership)
    case = case_or_404(membership, ref)
    failure = None
    result = None
    try:
        result = do(actor, case)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except ValidationFailed as exc:
        failure = Failure(
            form, exc.message, exc.status, exc.errors, forms.submitted_values(request.POST)
        )
    except OffboardError as exc:
        failure = Failure(
            form, exc.message, exc.status, values=forms.submitted_values(request.POST)
        )
    if failure is None and not _is_htmx(request) and not show:
        return redirect(case_url(ref, anchor), permanent=False)
    context = workspace_context(request, membership, ref, failure=failure, target=target)
    if show and failure is None:
        context[show] = result
    status = failure.status if failure else 200
    if _is_htmx(request):
        response = render(request, "web/partials/ws_update.html", context, status=status)
    else:
        response = page_of(request, membership, context, status=status)
    if show:
        response["Cache-Control"] = "no-store"  # what is shown once must not be kept either
    return response


def _step(case: OffboardingCase, key: str) -> Step:
    step = selectors.get_step(case, key)
    step.case = case
    return step


@takes_files(FILES_GATE)
@require_POST
@login_required
def step_action(request: HttpRequest, ref: str, key: str, action: str) -> HttpResponse:
    post = request.POST

    @_with_files
    def do(actor: Actor, case: OffboardingCase) -> None:
        step = _step(case, key)
        if action == "complete":
            services.complete_step(
                actor=actor,
                step=step,
                evidence=_evidence(actor, request),
                note=post.get("note", ""),
                link=post.get("link", "").strip(),
                attestation=post.get("attestation", ""),
            )
        elif action == "not-applicable":
            services.mark_step_not_applicable(actor=actor, step=step, reason=post.get("reason", ""))
        elif action == "reopen":
            services.reopen_step(actor=actor, step=step, reason=post.get("reason", ""))
        else:
            raise Http404(f"No step action '{action}'.")

    try:
        step = _step(case_or_404(membership_of(request), ref), key)
    except NotFound as exc:
        raise Http404(exc.message) from None
    anchor = f"step-{step.pk}"
    return act(request, ref, form=f"{anchor}-{action}", target=anchor, anchor=anchor, do=do)


def _spec_or_404(register: str) -> RegisterSpec:
    if register not in REGISTERS:
        raise Http404(f"No register '{register}'.")
    return REGISTERS[register]


@takes_files(FILES_GATE)
@require_POST
@login_required
def register_add(request: HttpRequest, ref: str, register: str) -> HttpResponse:
    spec = _spec_or_404(register)

    @_with_files
    def do(actor: Actor, case: OffboardingCase) -> None:
        values = forms.values_to_add(spec, request.POST, str(case.owner_id))
        files = _evidence(actor, request)
        forms.resolve_attached(values, files)
        item = services.add_register_item(
            actor=actor, case=case, register=register, values=values, evidence=files
        )
        added.append(item.pk)

    added: list[int] = []
    response = act(
        request, ref, form=f"{register}-add", target=f"panel-{register}", anchor=register, do=do
    )
    if added and response.status_code == 302:
        response["Location"] = case_url(ref, item_anchor(register, added[0]))
    return response


@takes_files(FILES_GATE)
@require_POST
@login_required
def register_item_action(
    request: HttpRequest, ref: str, register: str, item_id: int, action: str
) -> HttpResponse:
    spec = _spec_or_404(register)
    post = request.POST
    if action not in ("edit", "revoke", "verify", "transfer"):
        raise Http404(f"No action '{action}'.")
    if action != "edit" and register != "access_grants":
        raise Http404(f"'{action}' is for access grants.")

    @_with_files
    def do(actor: Actor, case: OffboardingCase) -> None:
        item = selectors.get_register_item(case, register, item_id)
        values: dict[str, Any]
        if action == "edit":
            values = forms.values_to_update(spec, item, post)
        elif action == "transfer":
            values = {"status": "transferred", **forms.fact_time(spec, post, "actioned_at")}
        else:
            if action == "revoke":
                values = {"status": "revoked", **forms.fact_time(spec, post, "actioned_at")}
            else:
                values = forms.fact_time(spec, post, "verified_at")
            if post.get("verification_level") or action == "verify":
                values["verification_level"] = post.get("verification_level", "")
                values["verification_note"] = post.get("verification_note", "")
        if action != "edit":
            values.update(forms.source_values(post, item, status_set=action != "verify"))
        files = _evidence(actor, request)
        forms.resolve_attached(values, files)
        services.update_register_item(actor=actor, item=item, values=values, evidence=files)

    anchor = item_anchor(register, item_id)
    return act(
        request, ref, form=f"{anchor}-{action}", target=f"panel-{register}", anchor=anchor, do=do
    )


@takes_files(members_who_may("evidence.upload", find=_case_named, answer_json=True))
@require_POST
@login_required
def upload(request: HttpRequest, ref: str) -> JsonResponse:
    """The drop zone's upload: store the file, answer with what identifies it."""
    membership = membership_of(request)
    actor = actor_of(request, membership)
    case_or_404(membership, ref)
    file = request.FILES.get("file")
    if file is None:
        return JsonResponse({"error": "No file was sent."}, status=422)
    try:
        stored = upload_evidence(actor=actor, stream=file, name=file.name or "file")
    except OffboardError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    return JsonResponse(
        {
            "sha256": stored.sha256,
            "name": stored.original_name,
            "size": stored.size,
            "media_type": stored.media_type,
        },
        status=201,
    )


def _expiry(raw: str) -> Any:
    """A waiver's expiry date: valid to the end of that day (UTC)."""
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed({"expires_at": ["give the date the waiver expires"]}) from None
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


@takes_files(FILES_GATE)
@require_POST
@login_required
def waiver_add(request: HttpRequest, ref: str) -> HttpResponse:
    @_with_files
    def do(actor: Actor, case: OffboardingCase) -> None:
        kind, _, pk = request.POST.get("target", "").partition(":")
        if not pk.isdigit():
            raise ValidationFailed({"target": ["choose what the waiver covers"]})
        services.grant_waiver(
            actor=actor,
            case=case,
            target_type=kind,
            target_id=int(pk),
            justification=request.POST.get("justification", ""),
            expires_at=_expiry(request.POST.get("expires_at", "")),
            evidence=_evidence(actor, request),
        )

    return act(request, ref, form="waiver-add", target="waivers", anchor="waivers", do=do)


@require_POST
@login_required
def waiver_revoke(request: HttpRequest, ref: str, waiver_id: int) -> HttpResponse:
    def do(actor: Actor, case: OffboardingCase) -> None:
        waiver = selectors.get_waiver(case, waiver_id)
        services.revoke_waiver(actor=actor, waiver=waiver, reason=request.POST.get("reason", ""))

    return act(
        request, ref, form=f"waiver-{waiver_id}-revoke", target="waivers", anchor="waivers", do=do
    )


@require_POST
@login_required
def approve(request: HttpRequest, ref: str) -> HttpResponse:
    def do(actor: Actor, case: OffboardingCase) -> None:
        services.approve_case(
            actor=actor,
            case=case,
            decision=request.POST.get("decision", ""),
            state_digest_seen=request.POST.get("state_digest_seen", ""),
            comment=request.POST.get("comment", ""),
        )

    return act(request, ref, form="approve", target="approvals", anchor="approvals", do=do)


@takes_files(FILES_GATE)
@require_POST
@login_required
def addendum(request: HttpRequest, ref: str) -> HttpResponse:
    @_with_files
    def do(actor: Actor, case: OffboardingCase) -> None:
        services.add_addendum(
            actor=actor,
            case=case,
            text=request.POST.get("text", ""),
            evidence=_evidence(actor, request),
        )

    return act(request, ref, form="addendum", target="addenda", anchor="addenda", do=do)


@require_POST
@login_required
def edit_case(request: HttpRequest, ref: str) -> HttpResponse:
    """Reassign the owner or move the effective end date (steps anchored on it move along)."""

    def do(actor: Actor, case: OffboardingCase) -> None:
        owner = request.POST.get("owner_id", "").strip()
        end = request.POST.get("effective_end_date", "").strip()
        if owner and not owner.isdigit():
            raise ValidationFailed({"owner_id": ["choose the new owner from the list"]})
        try:
            end_date = dt.date.fromisoformat(end) if end else None
        except ValueError:
            raise ValidationFailed(
                {"effective_end_date": [f"'{end}' is not a date (YYYY-MM-DD)"]}
            ) from None
        services.update_case(
            actor=actor,
            case=case,
            owner_id=int(owner) if owner else None,
            effective_end_date=end_date,
        )

    return act(request, ref, form="case-edit", target="case-header", anchor="", do=do)


def require_confirmation(request: HttpRequest, action: str, refused: str, *, allowed: bool) -> None:
    """A final action runs only with its dialog's explicit confirmation (`confirm=<action>`)
    posted along: without it — a stray click, a page without JavaScript — nothing is written
    and the page shows the dialog, which says what the action will do. Someone who may not do
    the action at all is told that instead, by the service (`allowed` false)."""
    if allowed and request.POST.get("confirm") != action:
        raise ValidationFailed(
            {"confirm": [f"confirm that you mean to {action}: it cannot be undone"]},
            message=refused,
        )


def _close(actor: Actor, case: OffboardingCase, request: HttpRequest) -> Any:
    require_confirmation(
        request,
        "close",
        f"Case {case.ref} was not closed: closing is final, so it needs your confirmation. "
        "Read what closing does and confirm it, or keep the case open.",
        allowed=can(actor, "cases.transition"),
    )
    return services.close_case(actor=actor, case=case)


def _cancel(actor: Actor, case: OffboardingCase, request: HttpRequest) -> Any:
    require_confirmation(
        request,
        "cancel",
        f"Case {case.ref} was not cancelled: cancelling is final, so it needs your "
        "confirmation. Give the reason and confirm it, or keep the case.",
        allowed=can(actor, "cases.transition"),
    )
    return services.cancel_case(actor=actor, case=case, reason=request.POST.get("reason", ""))


LIFECYCLE: dict[str, Callable[[Actor, OffboardingCase, HttpRequest], Any]] = {
    "activate": lambda a, c, r: services.activate_case(actor=a, case=c),
    "closing": lambda a, c, r: services.enter_closing(actor=a, case=c),
    "close": _close,
    "cancel": _cancel,
}


@require_POST
@login_required
def lifecycle(request: HttpRequest, ref: str, action: str) -> HttpResponse:
    """Activate, enter closing, close or cancel: the whole page changes, so a plain post."""
    if action not in LIFECYCLE:
        raise Http404(f"No case action '{action}'.")
    return act(
        request,
        ref,
        form=f"lifecycle-{action}",
        target="case-header",
        anchor="",
        do=lambda actor, case: LIFECYCLE[action](actor, case, request),
    )


urlpatterns = [
    path("cases/<str:ref>/evidence/upload", upload, name="ws-upload"),
    path("cases/<str:ref>/steps/<str:key>/<str:action>", step_action, name="ws-step"),
    path("cases/<str:ref>/lifecycle/<str:action>", lifecycle, name="ws-lifecycle"),
    path("cases/<str:ref>/edit", edit_case, name="ws-case-edit"),
    path("cases/<str:ref>/waivers/add", waiver_add, name="ws-waiver-add"),
    path("cases/<str:ref>/waivers/<int:waiver_id>/revoke", waiver_revoke, name="ws-waiver-revoke"),
    path("cases/<str:ref>/approve", approve, name="ws-approve"),
    path("cases/<str:ref>/addenda", addendum, name="ws-addendum"),
    path("cases/<str:ref>/registers/<str:register>/add", register_add, name="ws-register-add"),
    path(
        "cases/<str:ref>/registers/<str:register>/<int:item_id>/<str:action>",
        register_item_action,
        name="ws-register-item",
    ),
]
