"""The client portal's pages at /portal/<token>/: no account, the token is the credential.

Every answer carries strict headers (no framing, no referrer, no caching, CSP 'self'). Every
request counts against a per-address and a per-link rate limit (offboard.portal.ratelimit).
A token that is unknown, expired or revoked gets the same 404 page, byte for byte, which
names nothing: not the case, not the organization, not whether the link ever existed.
"""

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from offboard.core import clock
from offboard.core.errors import CaseClosed, Conflict, NotFound, ValidationFailed
from offboard.evidence.storage import StorageUnavailable, open_stored
from offboard.portal import ratelimit, selectors, services
from offboard.portal.models import PortalLink, PortalResponse

PAGE_CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
FILE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"

View = Callable[..., HttpResponseBase]
R = TypeVar("R", bound=HttpResponseBase)


class PortalCsrf(CsrfViewMiddleware):
    """Django's CSRF check (the token in the form must match the cookie), fitted to
    `Referrer-Policy: no-referrer`: under it browsers send `Origin: null` on the page's own
    form posts. `null` is accepted only when Fetch Metadata does not say the post came from
    another site; any other Origin must be this site's, as Django checks it."""

    def _origin_verified(self, request: HttpRequest) -> bool:
        if request.META.get("HTTP_ORIGIN") == "null":
            return request.META.get("HTTP_SEC_FETCH_SITE", "same-origin") == "same-origin"
        return bool(super()._origin_verified(request))  # type: ignore[misc]  # not in the stubs


# The site-wide CSRF middleware skips the portal's forms (csrf_exempt); this one checks them.
portal_csrf = cast(Callable[[View], View], decorator_from_middleware(PortalCsrf))


def secure(response: R, csp: str = PAGE_CSP) -> R:
    response["Content-Security-Policy"] = csp
    response["X-Frame-Options"] = "DENY"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL: never pass it on
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def invalid_link(request: HttpRequest) -> HttpResponse:
    return secure(render(request, "portal/invalid.html", {}, status=404))


def slow_down(request: HttpRequest, retry_after: int) -> HttpResponse:
    """Past a rate limit: 429, when to come back, and that an answer sent now was not kept."""
    response = render(
        request,
        "portal/slow_down.html",
        {"retry_after": retry_after, "posted": request.method == "POST"},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return secure(response)


def _limited(request: HttpRequest, token: str | None) -> HttpResponse | None:
    """The slow-down page when this address or this link is over its limit, else None."""
    verdict = ratelimit.check_request(_client_ip(request), token)
    return None if verdict.allowed else slow_down(request, verdict.retry_after)


def with_link(view: View) -> View:
    """Count the request against the rate limits, then resolve the token to a live link, or
    answer the one invalid-link page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if limited := _limited(request, token):
            return limited
        link = selectors.link_for_token(token)
        if link is None:
            return invalid_link(request)
        services.note_use(link)
        try:
            response = view(request, link, token, *args, **kwargs)
        except NotFound:  # revoked or expired while the contact was on the page
            return invalid_link(request)
        if "Content-Security-Policy" not in response:
            secure(response)
        return response

    return wrapper


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _user_agent(request: HttpRequest) -> str:
    return request.headers.get("User-Agent", "")[:300]


def _page_url(token: str, **query: str) -> str:
    url = reverse("portal:case", args=[token])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def _answerable(link: PortalLink) -> bool:
    from offboard.cases.models import OffboardingCase

    return link.case.is_open and link.case.state != OffboardingCase.State.DRAFT


def _register(
    items: list[selectors.Entry], register: str, title: str, later_title: str
) -> dict[str, Any]:
    """One register as the page lays it out: what needs the contact first, then disputes,
    then what is settled; what is not delivered yet goes in a compact list at the end."""
    mine = [e for e in items if e.register == register]
    now = [e for e in mine if e.awaiting or e.disputed or e.settled]
    now.sort(key=lambda e: 0 if e.awaiting else 1 if e.disputed else 2)
    return {
        "key": register,
        "title": title,
        "count": len(mine),
        "now": now,
        "later": [e for e in mine if e not in now],
        "later_title": later_title,
    }


def _context(link: PortalLink, token: str) -> dict[str, Any]:
    case = link.case
    value = selectors.manifest(case)
    items = selectors.entries(value)
    owner = case.owner
    return {
        "token": token,
        "link": link,
        "case": case,
        "contact": link.contact,
        "manifest": value,
        "digest": selectors.manifest_digest(value),
        "registers": [
            _register(items, "deliverables", "Deliverables", "Not delivered yet"),
            _register(items, "handover_items", "Handover", "Not handed over yet"),
        ],
        "awaiting": [e for e in items if e.awaiting],
        "counts": {
            "total": len(items),
            "awaiting": sum(e.awaiting for e in items),
            "settled": sum(e.settled for e in items),
            "accepted": sum(e.settled and not e.waived for e in items),
            "waived": sum(e.waived for e in items),
            "disputed": sum(e.disputed for e in items),
            "not_yet": sum(not (e.awaiting or e.settled or e.disputed) for e in items),
        },
        "answerable": _answerable(link),
        "owner_name": owner.get_full_name() or owner.username,
        "responses": list(selectors.responses(case, link.contact.pk).order_by("-at", "-id")),
        "now": clock.now(),
    }


def _case_page(
    request: HttpRequest, link: PortalLink, token: str, *, status: int = 200, **extra: Any
) -> HttpResponse:
    context = _context(link, token)
    context.update(extra)
    return render(request, "portal/case.html", context, status=status)


@require_GET
@with_link
def case_page(request: HttpRequest, link: PortalLink, token: str) -> HttpResponse:
    recorded = None
    if (wanted := request.GET.get("r", "")).isdigit():
        recorded = PortalResponse.objects.filter(pk=int(wanted), link=link, case=link.case).first()
    notice = None
    if request.GET.get("changed"):
        notice = (
            "The list changed since you opened it. Here is the current version: review it and "
            "respond again."
        )
    elif request.GET.get("none"):
        notice = "Choose at least one item to acknowledge: tick its box, or use Acknowledge all."
    return _case_page(request, link, token, recorded=recorded, notice=notice)


def _refused(
    request: HttpRequest, link: PortalLink, token: str, exc: Exception, *, status: int = 409
) -> HttpResponse:
    """A response refused for the state of things: show the page as it is now, and why."""
    if isinstance(exc, CaseClosed):
        message = "This offboarding is complete: its record is final and takes no more responses."
    elif isinstance(exc, ValidationFailed):
        message = " ".join(f"{p[0].upper()}{p[1:]}." for p in exc.errors.get("items", []))
    else:
        message = str(getattr(exc, "message", exc))
    return _case_page(request, link, token, status=status, refused=message)


def _review(
    request: HttpRequest,
    link: PortalLink,
    token: str,
    template: str,
    *,
    acknowledging: bool,
    errors: dict[str, list[str]] | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The confirmation step: exactly the chosen items, and the form that signs for them."""
    source = request.POST if request.method == "POST" else request.GET
    seen = source.get("manifest_sha256") or source.get("m") or ""
    if not _answerable(link):
        return HttpResponseRedirect(_page_url(token))
    value = selectors.manifest(link.case)
    digest = selectors.manifest_digest(value)
    if seen != digest:
        return HttpResponseRedirect(_page_url(token, changed="1"))
    all_awaiting = source.get("all") == "1" and acknowledging
    if all_awaiting:
        keys = [e.key for e in selectors.entries(value) if e.awaiting]
    else:
        keys = source.getlist("item")
    try:
        chosen = selectors.pick(value, keys, acknowledging=acknowledging)
    except ValidationFailed:
        return HttpResponseRedirect(_page_url(token, none="1"))
    return render(
        request,
        template,
        {
            "token": token,
            "link": link,
            "case": link.case,
            "contact": link.contact,
            "manifest": value,
            "digest": digest,
            "chosen": chosen,
            "all_awaiting": all_awaiting,
            "errors": errors or {},
            "form": form or {},
            "ip": _client_ip(request),
        },
        status=status,
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
@portal_csrf
@with_link
def acknowledge(request: HttpRequest, link: PortalLink, token: str) -> HttpResponse:
    if request.method == "GET":
        return _review(request, link, token, "portal/acknowledge.html", acknowledging=True)
    form = {
        "typed_name": request.POST.get("typed_name", ""),
        "confirm": request.POST.get("confirm"),
    }
    try:
        response = services.acknowledge_items(
            link=link,
            items=request.POST.getlist("item"),
            all_awaiting=request.POST.get("all") == "1",
            typed_name=form["typed_name"] or "",
            confirmed=request.POST.get("confirm") == "yes",
            manifest_sha256=request.POST.get("manifest_sha256", ""),
            ip=_client_ip(request),
            user_agent=_user_agent(request),
        )
    except ValidationFailed as exc:
        if "items" in exc.errors:
            return _refused(request, link, token, exc, status=422)
        return _review(
            request,
            link,
            token,
            "portal/acknowledge.html",
            acknowledging=True,
            errors=exc.errors,
            form=form,
            status=422,
        )
    except Conflict as exc:
        return _refused(request, link, token, exc)
    return HttpResponseRedirect(_page_url(token, r=str(response.pk)) + "#recorded", status=303)


@csrf_exempt
@require_http_methods(["GET", "POST"])
@portal_csrf
@with_link
def dispute(request: HttpRequest, link: PortalLink, token: str) -> HttpResponse:
    if request.method == "GET":
        return _review(request, link, token, "portal/dispute.html", acknowledging=False)
    form = {"comment": request.POST.get("comment", "")}
    try:
        response = services.dispute_item(
            link=link,
            item=request.POST.get("item", ""),
            comment=form["comment"],
            manifest_sha256=request.POST.get("manifest_sha256", ""),
            ip=_client_ip(request),
            user_agent=_user_agent(request),
        )
    except ValidationFailed as exc:
        if "items" in exc.errors:
            return _refused(request, link, token, exc, status=422)
        return _review(
            request,
            link,
            token,
            "portal/dispute.html",
            acknowledging=False,
            errors=exc.errors,
            form=form,
            status=422,
        )
    except Conflict as exc:
        return _refused(request, link, token, exc)
    return HttpResponseRedirect(_page_url(token, r=str(response.pk)) + "#recorded", status=303)


@require_GET
@with_link
def download(request: HttpRequest, link: PortalLink, token: str, sha256: str) -> HttpResponseBase:
    """A file of one of this case's deliverables or handover items, as an attachment."""
    found = selectors.case_file(link.case, sha256)
    if found is None:
        return secure(
            render(request, "portal/no_file.html", {"token": token, "link": link}, status=404)
        )
    try:  # opened first: a download the store cannot serve is not recorded
        stream = open_stored(found.storage_name, sha256=found.sha256)
    except StorageUnavailable:
        unavailable = HttpResponse(
            "This file cannot be downloaded right now. Please try again in a few minutes.",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        return secure(unavailable)
    try:
        services.record_download(
            link=link, file=found, ip=_client_ip(request), user_agent=_user_agent(request)
        )
    except BaseException:
        stream.close()
        raise
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=found.original_name,
        content_type=found.media_type or "application/octet-stream",
    )
    response["Content-Length"] = str(stream.size)  # a corrupted file's download ends short
    return secure(response, FILE_CSP)


def not_found(request: HttpRequest, token: str = "", rest: str = "") -> HttpResponse:
    """Any other address under /portal/: the same page as an invalid link (rate limited like
    the rest, so that guessing addresses costs the same)."""
    if limited := _limited(request, None):
        return limited
    return invalid_link(request)
