"""Domain errors: each carries a stable code, a sentence for the user and structured details.

Interfaces map them to HTTP statuses (API), exit codes (CLI) and messages (web).
"""

from typing import Any


class OffboardError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details if details is not None else {}


class NotFound(OffboardError):
    status = 404
    code = "not_found"


class PermissionDenied(OffboardError):
    status = 403
    code = "forbidden"


class Conflict(OffboardError):
    status = 409
    code = "conflict"


class RateLimited(OffboardError):
    """Too many requests of one kind: try again in `retry_after` seconds (HTTP 429)."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, details={**(details or {}), "retry_after": self.retry_after})


class CaseClosed(Conflict):
    code = "case_closed"


class GatesUnmet(Conflict):
    code = "gates_unmet"


class ValidationFailed(OffboardError):
    """Input that cannot be accepted; details map each field to its problems."""

    status = 422
    code = "invalid"

    def __init__(self, errors: dict[str, list[str]] | dict[str, str], message: str = "") -> None:
        normalized = {k: ([v] if isinstance(v, str) else list(v)) for k, v in errors.items()}
        if not message:
            message = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in normalized.items())
        super().__init__(message, details={"fields": normalized})
        self.errors = normalized


def invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed({field: [problem]})


class InsufficientScope(PermissionDenied):
    """An API token without the scope an operation needs (core/scopes.py)."""

    code = "insufficient_scope"


class TokenExpired(OffboardError):
    """An API token past its expiry: the request is unauthenticated (HTTP 401)."""

    status = 401
    code = "token_expired"


class UpstreamFailed(OffboardError):
    """Another system (a connector's peer) failed or refused: the request was fine, the call
    was not. `details` names the connection."""

    status = 502
    code = "upstream_failed"
