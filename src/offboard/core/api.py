"""API plumbing shared by every router: bearer-token auth, the actor, and JSON errors."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from offboard.core.actor import Actor
from offboard.core.errors import OffboardError


class BearerToken(HttpBearer):
    """`Authorization: Bearer obt_…` — a per-user, per-organization, revocable token."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        from offboard.accounts.models import Membership
        from offboard.accounts.services import authenticate_token

        api_token = authenticate_token(token)
        if api_token is None:
            return None
        membership = (
            Membership.objects.select_related("user", "org")
            .filter(org=api_token.org, user=api_token.user)
            .first()
        )
        if membership is None:
            return None
        request.actor = Actor.from_membership(  # type: ignore[attr-defined]
            membership,
            auth_method="token",
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:300] or None,
        )
        return api_token


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def actor_of(request: HttpRequest) -> Actor:
    return request.actor  # type: ignore[attr-defined]


class ErrorBody(Schema):
    code: str
    message: str
    details: Any = None


class ErrorOut(Schema):
    error: ErrorBody


def _error(
    api: NinjaAPI, request: HttpRequest, status: int, code: str, message: str, details: Any = None
) -> HttpResponse:
    return api.create_response(
        request,
        {"error": {"code": code, "message": message, "details": details or {}}},
        status=status,
    )


def _field_errors(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for err in errors:
        loc = [str(p) for p in err.get("loc", [])]
        if loc and loc[0] in ("body", "query", "path", "form", "file", "header", "cookie"):
            loc = loc[1:]
        loc = [p for p in loc if p != "payload"]
        fields.setdefault(".".join(loc) or "body", []).append(str(err.get("msg", "is invalid")))
    return fields


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(OffboardError)
    def domain_error(request: HttpRequest, exc: OffboardError) -> HttpResponse:
        return _error(api, request, exc.status, exc.code, exc.message, exc.details)

    @api.exception_handler(NinjaValidationError)
    def schema_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        fields = _field_errors(list(exc.errors))
        message = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
        return _error(api, request, 422, "invalid", message, {"fields": fields})

    @api.exception_handler(AuthenticationError)
    def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return _error(
            api,
            request,
            401,
            "unauthorized",
            "Send a valid API token: 'Authorization: Bearer obt_…'. Create one with "
            "POST /api/v1/tokens or in Settings.",
        )

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        codes = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
        }
        return _error(api, request, exc.status_code, codes.get(exc.status_code, "error"), str(exc))

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        import logging

        from django.http import Http404

        if isinstance(exc, Http404):
            return _error(api, request, 404, "not_found", str(exc) or "Not found.")
        logging.getLogger("offboard.api").exception("unhandled API error")
        return _error(api, request, 500, "internal", "Unexpected server error; it has been logged.")
