"""Structured logs with a request id (issue 16, docs/deploy.md).

`RequestIdMiddleware` gives every request an id — the proxy's `X-Request-ID` when it sent a
well-formed one, else a new random one — answers it in `X-Request-ID`, and logs one line per
request on the `offboard.request` logger (method, route name, status, duration; never the
query string, which can hold a token). `JsonFormatter` writes each log record as one JSON
object with the id of the request it happened in, so an operator can follow one request
across every line of every process.
"""

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

_request_id: ContextVar[str | None] = ContextVar("offboard_request_id", default=None)
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
log = logging.getLogger("offboard.request")


def current_request_id() -> str | None:
    return _request_id.get()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get("X-Request-ID", "")
        request_id = sent if _WELL_FORMED.match(sent) else secrets.token_hex(16)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            match = getattr(request, "resolver_match", None)
            route = match.view_name if match is not None and match.view_name else "unmatched"
            log.info(
                "%s %s %s",
                request.method,
                route,  # the route's name: a path can hold a case reference or a token
                response.status_code,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "remote_addr": request.META.get("REMOTE_ADDR"),
                },
            )
            return response
        finally:
            _request_id.reset(token)


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id, any `extra`
    fields, and the exception's traceback as text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


JsonFormatter.converter = time.gmtime
