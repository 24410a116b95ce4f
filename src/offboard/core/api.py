"""API plumbing shared by every router: bearer-token auth, the actor, JSON errors for every
failure a request can cause (a 4xx naming the field, never a 500 for bad input), and the
errors every operation may answer documented in the OpenAPI document."""

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.security import HttpBearer

from offboard.core.actor import Actor
from offboard.core.bodies import BodyTooLarge, allow_files
from offboard.core.errors import InsufficientScope, OffboardError, RateLimited
from offboard.core.permissions import require
from offboard.core.scopes import SCOPES, missing_scope_message, scope_of


def _scheme_description() -> str:
    rows = "\n".join(f"- `{name}`: {words}" for name, words in SCOPES.items())
    return (
        "`Authorization: Bearer obt_…`: a per-member token (Settings → API tokens, or POST "
        "/api/v1/tokens), stored hashed, expiring, revocable. Each operation lists the one "
        "scope it needs; a token without it gets 403 `insufficient_scope`. A scope never "
        "grants what the member's role does not. The scopes:\n" + rows
    )


class BearerToken(HttpBearer):
    """`Authorization: Bearer obt_…` — a per-user, per-organization, revocable, expiring token
    that carries scopes.

    Every operation's token check is made for the scope it declared (`offboard.core.scopes`;
    `require_scopes` below gives each operation its own `BearerToken(scope=…)`): a token
    without it is refused with 403 `insufficient_scope` before the body is read.

    An operation that takes files authenticates with `BearerToken(uploads=capability)`: the
    token's member must also hold `capability`, checked before django-ninja reads the body
    (a 403 then), and only then may the body carry files (`core/bodies.py`)."""

    openapi_description = _scheme_description()

    def __init__(self, *, uploads: str = "", scope: str = "") -> None:
        super().__init__()
        self.uploads = uploads
        self.scope = scope

    def for_scope(self, scope: str) -> "BearerToken":
        return BearerToken(uploads=self.uploads, scope=scope)

    def __call__(self, request: HttpRequest) -> Any:
        api_token = super().__call__(request)
        if api_token and self.scope and self.scope not in api_token.scopes:
            raise InsufficientScope(
                missing_scope_message(self.scope),
                details={"scope": self.scope, "token_scopes": list(api_token.scopes)},
            )
        if api_token and self.uploads:
            require(actor_of(request), self.uploads)
            allow_files(request)
        return api_token

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        from offboard.accounts.models import Membership
        from offboard.accounts.services import authenticate_token

        api_token = authenticate_token(token)  # an expired token raises TokenExpired (401)
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


def require_scopes(run: Callable[..., Any]) -> Callable[..., Any]:
    """Give an operation a token check for the scope its view declared (`@scope`, or `read`
    for a GET): `api.add_decorator(require_scopes, mode="view")`, which django-ninja applies
    to each operation's bound `run` as the routers are mounted. Returns `run` unchanged."""
    operation = getattr(run, "__self__", None)
    if not isinstance(operation, Operation):
        raise TypeError("require_scopes must be the first view decorator of the API")
    callbacks = list(operation.auth_callbacks)
    if any(isinstance(cb, BearerToken) for cb in callbacks):
        methods = [m.upper() for m in operation.methods]
        needed = {scope_of(operation.view_func, method) for method in methods}
        if len(needed) != 1:
            raise LookupError(f"{operation.view_func.__name__}: one scope per operation")
        operation.auth_callbacks = [
            cb.for_scope(needed.pop()) if isinstance(cb, BearerToken) else cb for cb in callbacks
        ]
    return run


class _ScopedSchema(OpenAPISchema):
    """django-ninja's document, with each operation's scope in its security requirement
    (`{"BearerToken": ["cases:write"]}`)."""

    def operation_security(self, operation: Operation) -> list[dict[str, Any]] | None:
        if not operation.auth_callbacks:
            return None
        result: list[dict[str, Any]] = []
        for auth in operation.auth_callbacks:
            if hasattr(auth, "openapi_security_schema"):
                name = auth.__class__.__name__
                scope = getattr(auth, "scope", "")
                result.append({name: [scope] if scope else []})
                self.securitySchemes[name] = auth.openapi_security_schema
        return result


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


def too_large_message() -> str:
    return (
        f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes: send "
        "less, and files as multipart uploads (POST /api/v1/evidence)."
    )


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(OffboardError)
    def domain_error(request: HttpRequest, exc: OffboardError) -> HttpResponse:
        response = _error(api, request, exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response

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

    @api.exception_handler(RequestDataTooBig)
    def too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        if isinstance(exc, BodyTooLarge):  # a file or a body past its limit, as it was read
            message = f"{exc.field}: {exc.problem}"
            details = {"fields": {exc.field: [exc.problem]}}
            return _error(api, request, 413, "too_large", message, details)
        message = too_large_message()
        return _error(api, request, 413, "too_large", message, {"fields": {"body": [message]}})

    @api.exception_handler(MultiPartParserError)
    @api.exception_handler(SuspiciousOperation)  # too many fields or files, a bad file name
    def unreadable_body(request: HttpRequest, exc: Exception) -> HttpResponse:
        problem = f"is not valid multipart/form-data ({exc})"
        return _error(
            api, request, 400, "bad_request", f"body: {problem}", {"fields": {"body": [problem]}}
        )

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
            problem = "is not JSON in UTF-8 that matches the operation's schema"
            return _error(
                api,
                request,
                400,
                "bad_request",
                "Cannot parse request body",
                {"fields": {"body": [problem]}},
            )
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
        if isinstance(exc, Http404):
            return _error(api, request, 404, "not_found", str(exc) or "Not found.")
        if isinstance(exc, UnicodeDecodeError):
            problem = "is not UTF-8 text"
            return _error(
                api,
                request,
                400,
                "bad_request",
                f"body: {problem}",
                {"fields": {"body": [problem]}},
            )
        logging.getLogger("offboard.api").exception("unhandled API error")
        return _error(api, request, 500, "internal", "Unexpected server error; it has been logged.")


# Errors any operation may answer, by what it takes: documented on every operation so the
# OpenAPI document lists every status code a client can get (tests/api/test_fuzz.py).
_ANY_INPUT = {"422": "A parameter or a field of the body is invalid: `details.fields` names it."}
_ANY_BODY = {
    "400": "The body cannot be read: not JSON, not UTF-8, or broken multipart.",
    "411": "The body was sent without a Content-Length (chunked): send it with its length.",
    "413": "The body, or a file in it, is larger than the server accepts: refused before it "
    "is read, or cut off where it passed the limit.",
}


def one_entry_per_status(responses: dict[Any, Any]) -> dict[str, Any]:
    """Responses keyed by status text, one entry each. django-ninja keys the statuses of
    `response=` by number and those of `openapi_extra` by text; JSON writes both as "200", a
    duplicated key that YAML parsers (the docs page's) refuse. The text entry, written by
    hand to describe the bytes, completes the generated one."""
    merged: dict[str, Any] = {}
    for status, response in responses.items():
        key = str(status)
        merged[key] = {**merged.get(key, {}), **response}
    return merged


class OffboardApi(NinjaAPI):
    """The project's NinjaAPI: its OpenAPI document lists the errors every operation shares."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        schema = _ScopedSchema(self, path_prefix)
        error = {"$ref": "#/components/schemas/ErrorOut"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation["responses"] = one_entry_per_status(operation.get("responses", {}))
                shared: dict[str, str] = {}
                if operation.get("security"):
                    shared["401"] = "No valid API token, or it expired (`token_expired`)."
                    shared["403"] = (
                        "The token lacks the operation's scope (`insufficient_scope`), or "
                        "the member's role may not do this (`forbidden`)."
                    )
                if operation.get("parameters") or operation.get("requestBody"):
                    shared.update(_ANY_INPUT)
                if operation.get("requestBody"):
                    shared.update(_ANY_BODY)
                responses = operation.setdefault("responses", {})
                for status, description in shared.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {"application/json": {"schema": error}},
                        },
                    )
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        return schema
