"""Security headers Django's SecurityMiddleware does not set (a Content-Security-Policy), and
request bodies refused before they are read (too large, broken multipart).

The policy is `settings.OFFBOARD_CSP`: scripts from our own origin only (vendored htmx; no
inline script, no eval), nothing may frame our pages, forms post only to us. Inline style
attributes stay allowed: htmx adds its indicator style, and a style attribute runs no code.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render


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
    """Refuse, before anything reads it, a body Django would refuse later with an exception:
    larger than DATA_UPLOAD_MAX_MEMORY_SIZE (413; multipart bodies are files, bounded by the
    upload limit instead) or multipart without a valid boundary (400). The API gets its JSON
    error, a page gets a page; a body refused while a view reads it gets the same answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._refuse(request)
        return refused if refused is not None else self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, RequestDataTooBig):
            return _too_large(request)
        if isinstance(exc, MultiPartParserError):
            return _unreadable(request, f"is not valid multipart/form-data ({exc})")
        return None

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _unreadable(request, "has an invalid Content-Length")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.startswith("multipart/"):
            boundary = _boundary(content_type)
            if not boundary or len(boundary) > 70 or not boundary.isascii():
                return _unreadable(request, "is multipart/form-data without a valid boundary")
        elif limit is not None and length > limit:
            return _too_large(request)
        return None


def _boundary(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    return ""


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _too_large(request: HttpRequest) -> HttpResponse:
    from offboard.core.api import too_large_message

    message = too_large_message()
    if _is_api(request):
        return _json_error(413, "too_large", message, {"fields": {"body": [message]}})
    return render(request, "web/request_refused.html", {"too_large": True}, status=413)


def _unreadable(request: HttpRequest, problem: str) -> HttpResponse:
    if _is_api(request):
        return _json_error(400, "bad_request", f"body: {problem}", {"fields": {"body": [problem]}})
    return render(request, "web/request_refused.html", {"problem": problem}, status=400)


def _json_error(status: int, code: str, message: str, details: dict[str, object]) -> HttpResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "details": details}}, status=status
    )
