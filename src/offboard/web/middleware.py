"""Security headers Django's SecurityMiddleware does not set (a Content-Security-Policy), and
request bodies refused before they are read (too large, without a length, broken multipart,
files from someone who may not send them there).

The policy is `settings.OFFBOARD_CSP`: scripts from our own origin only (vendored htmx; no
inline script, no eval), nothing may frame our pages, forms post only to us. Inline style
attributes stay allowed: htmx adds its indicator style, and a style attribute runs no code.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render

from offboard.core.bodies import BodyTooLarge, BoundedBody, allow_files, body_limit, body_too_large


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "OFFBOARD_CSP", "")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


class RequestBodyLimitsMiddleware:
    """Refuse a body before anything reads it (core/bodies.py has the limits).

    On the way in: an invalid `Content-Length` or multipart without a valid boundary (400), a
    body without a length (411: chunked, which the WSGI server would hand over as empty), a
    `Content-Length` past the most any request may send (413: DATA_UPLOAD_MAX_MEMORY_SIZE,
    or for multipart that plus the upload limit). The input stream then gives no more bytes
    than that, whatever the header said.

    Before the view (`process_view`, which runs before CSRF reads a form): a staff view that
    takes files has its gate (`web/uploads.py`) refuse a visitor without a session or a role
    that may not upload there, without reading the body; a multipart body is then read here,
    files allowed only past such a gate, so a body cut off at its limit is a 413 page. The
    API's upload operations do the same with their token (`core/api.py`) before django-ninja
    reads the body. The API gets its JSON error, a fetch asking for JSON gets `{"error"}`, a
    page gets a page; a body refused while a view reads it gets the same answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._refuse(request)
        if refused is not None:
            # Sized: this answer comes before CommonMiddleware, and a client still sending
            # the body it was told not to should know where the answer ends.
            refused["Content-Length"] = str(len(refused.content))
            return refused
        # Django has no public hook for the input stream; both of its requests keep it here.
        limit = body_limit(files=_is_multipart(request))
        request._stream = BoundedBody(request._stream, limit)  # type: ignore[assignment]
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if _is_api(request) or request.method != "POST" or not _is_multipart(request):
            return None
        gate = getattr(view, "files_gate", None)
        if gate is not None:
            refused = gate(request, kwargs)
            if refused is not None:
                return refused
            allow_files(request)
        try:
            request.POST  # noqa: B018 - read here, where a refusal is ours to answer
        except RequestDataTooBig as exc:
            return _too_large(request, exc)
        except MultiPartParserError as exc:
            return _unreadable(request, f"is not valid multipart/form-data ({exc})")
        return None

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, RequestDataTooBig):
            return _too_large(request, exc)
        if isinstance(exc, MultiPartParserError):
            return _unreadable(request, f"is not valid multipart/form-data ({exc})")
        return None

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        raw_length = request.META.get("CONTENT_LENGTH") or ""
        try:
            length = int(raw_length or 0)
        except ValueError:
            return _unreadable(request, "has an invalid Content-Length")
        if length < 0:
            return _unreadable(request, "has an invalid Content-Length")
        if request.META.get("HTTP_TRANSFER_ENCODING") and not raw_length:
            return _length_required(request)
        content_type = request.META.get("CONTENT_TYPE", "")
        if _is_multipart(request):
            boundary = _boundary(content_type)
            if not boundary or len(boundary) > 70 or not boundary.isascii():
                return _unreadable(request, "is multipart/form-data without a valid boundary")
        limit = body_limit(files=_is_multipart(request))
        if limit is not None and length > limit:
            multipart = _is_multipart(request)
            return _too_large(request, body_too_large(limit, files=True) if multipart else None)
        return None


def _is_multipart(request: HttpRequest) -> bool:
    return str(request.META.get("CONTENT_TYPE", "")).lower().startswith("multipart/")


def _boundary(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    return ""


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _wants_json(request: HttpRequest) -> bool:
    """The workspace's drop zone: a fetch that reads `{"error": …}`."""
    return "application/json" in request.headers.get("Accept", "")


def _too_large(request: HttpRequest, exc: RequestDataTooBig | None = None) -> HttpResponse:
    from offboard.core.api import too_large_message

    if isinstance(exc, BodyTooLarge):
        field, problem = exc.field, exc.problem
        message = f"{field}: {problem}"
    else:
        field, problem = "body", too_large_message()
        message = problem
    if _is_api(request):
        return _json_error(413, "too_large", message, {"fields": {field: [problem]}})
    sentence = ""
    if isinstance(exc, BodyTooLarge):
        what = "The request" if field == "body" else f"The file sent as '{field}'"
        sentence = f"{what} {problem}."
    if _wants_json(request):
        return JsonResponse({"error": f"{sentence or message} Nothing was saved."}, status=413)
    context = {"too_large": True, "detail": sentence}
    return render(request, "web/request_refused.html", context, status=413)


def _length_required(request: HttpRequest) -> HttpResponse:
    problem = "was sent without a Content-Length (chunked); send it with its length"
    if _is_api(request):
        return _json_error(
            411, "length_required", f"body: {problem}", {"fields": {"body": [problem]}}
        )
    if _wants_json(request):
        return JsonResponse({"error": f"The request {problem}."}, status=411)
    return render(request, "web/request_refused.html", {"problem": problem}, status=411)


def _unreadable(request: HttpRequest, problem: str) -> HttpResponse:
    if _is_api(request):
        return _json_error(400, "bad_request", f"body: {problem}", {"fields": {"body": [problem]}})
    if _wants_json(request):
        return JsonResponse({"error": f"The request body {problem}."}, status=400)
    return render(request, "web/request_refused.html", {"problem": problem}, status=400)


def _json_error(status: int, code: str, message: str, details: dict[str, object]) -> HttpResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "details": details}}, status=status
    )
