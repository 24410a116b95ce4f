"""The HTTP client connectors to web APIs share (SCIM today; Google Workspace, Microsoft Graph,
GitHub and Slack later): standard library only, a timeout on every call, one persistent
connection per client, the retry policy of the contract, and secret scrubbing.

Retry policy: network errors, timeouts, 429 and 5xx are retried up to `attempts` times in all,
with exponential backoff (`backoff` · 2ⁿ, capped at `max_delay`) — or the server's Retry-After
(seconds or an HTTP date) when it gives one, capped at `max_retry_after`. Every other 4xx is
final at once: 401/403 raise `CredentialsRefused`, the rest a non-retryable `ConnectorError`
unless the caller listed the status in `accept` (a 404 a read expects, say). After the last
attempt a retryable `ConnectorError` is raised. No message carries the secret.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import http.client
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from offboard.connectors.base import (
    REDACTED,
    ConnectorError,
    CredentialsRefused,
    Exchange,
    _now,
    canonical_request_sha256,
    secret_forms,
    sha256_hex,
)

REQUEST_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "x-ms-request-id",
    "x-github-request-id",
    "x-amzn-requestid",
    "x-slack-req-id",
    "x-correlation-id",
)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes  # scrubbed
    exchange: Exchange

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ConnectorError(
                f"The server answered {self.status} with a body that is not JSON."
            ) from exc


class HttpClient:
    """A small client for one base URL. `auth_header` is the full Authorization value (it is
    a secret: scrubbed from everything recorded, along with `secrets`)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth_header: str,
        secrets: Iterable[str] = (),
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.25,
        max_delay: float = 8.0,
        max_retry_after: float = 30.0,
        user_agent: str = "Offboard-connector",
        content_type: str = "application/json",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConnectorError(f"Not an http(s) URL: {base_url!r}.")
        self.base_url = base_url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._auth = auth_header
        self._secrets = [s for s in (auth_header, *secrets) if s]
        # Each secret's forms (as is, JSON-escaped, URL-quoted), worked out once: scrubbing
        # runs on every response.
        self._forms = sorted(
            {f for s in self._secrets for f in secret_forms(s)}, key=len, reverse=True
        )
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self.user_agent = user_agent
        self.content_type = content_type
        self.sleep = sleep
        self._conn: http.client.HTTPConnection | None = None

    # -- plumbing ----------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self._host,
                    self._port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout
                )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def scrub(self, data: bytes | str) -> bytes:
        """`data` with every form of each secret replaced (what `base.scrub` does)."""
        out = data.encode() if isinstance(data, str) else bytes(data)
        for form in self._forms:
            if form in out:
                out = out.replace(form, REDACTED)
        return out

    def _safe(self, text: str) -> str:
        return self.scrub(text).decode(errors="replace")

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """The full URL of `path` (relative to the base), as recorded."""
        q = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.base_url}{path}{q}"

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            seconds: float | None = None
            try:
                seconds = float(retry_after)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=dt.UTC)
                    seconds = (when - _now()).total_seconds()
                except (TypeError, ValueError):
                    seconds = None  # unreadable: our own backoff
            if seconds is not None:
                return min(max(seconds, 0.0), self.max_retry_after)
        return min(self.backoff * (2**attempt), self.max_delay)

    # -- the call ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        accept: Collection[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One logical call, retried per the policy. Returns 2xx responses and those whose
        status is in `accept`; raises ConnectorError / CredentialsRefused otherwise."""
        q = f"?{urllib.parse.urlencode(query)}" if query else ""
        url = f"{self.base_url}{path}{q}"
        target = f"{self._prefix}{path}{q}"
        payload = None if body is None else json.dumps(body).encode()
        send_headers = {
            "Authorization": self._auth,
            "Accept": self.content_type,
            "User-Agent": self.user_agent,
        }
        if payload is not None:
            send_headers["Content-Type"] = self.content_type
        send_headers.update(headers or {})
        request_sha = canonical_request_sha256(method, url, body)
        started = _now()
        last_error = ""
        for attempt in range(self.attempts):
            retry_after: str | None = None
            try:
                conn = self._connection()
                conn.request(method, target, body=payload, headers=send_headers)
                raw = conn.getresponse()
                data = raw.read()
                resp_headers = {k.lower(): v for k, v in raw.getheaders()}
                if resp_headers.get("connection", "").lower() == "close" or raw.version == 10:
                    self.close()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                kind = "timed out" if isinstance(exc, socket.timeout | TimeoutError) else ""
                last_error = (
                    f"{method} {self._safe(url)}: {kind or 'network error'} "
                    f"({self._safe(type(exc).__name__)}: {self._safe(str(exc))})"
                )
            else:
                status = raw.status
                request_id = next(
                    (resp_headers[h] for h in REQUEST_ID_HEADERS if resp_headers.get(h)), ""
                )
                clean = self.scrub(data)
                exchange = Exchange(
                    request_sha256=request_sha,
                    response_sha256=sha256_hex(clean),
                    request_id=self._safe(request_id) if request_id else "",
                    response=clean,
                    status=status,
                    started_at=started,
                    ended_at=_now(),
                )
                if 200 <= status < 300 or status in accept:
                    return Response(status, resp_headers, clean, exchange)
                detail = _error_detail(clean)
                where = f"{method} {self._safe(url)}"
                if status in RETRYABLE_STATUS:
                    retry_after = resp_headers.get("retry-after")
                    last_error = f"{where}: the server answered {status}{detail}"
                elif status in (401, 403):
                    raise CredentialsRefused(
                        f"{where}: the server refused the connection's credentials "
                        f"({status}{detail}).",
                        status=status,
                        request_id=exchange.request_id,
                    )
                else:
                    raise ConnectorError(
                        f"{where}: the server answered {status}{detail}.",
                        status=status,
                        request_id=exchange.request_id,
                    )
            if attempt + 1 < self.attempts:
                self.sleep(self._delay(attempt, retry_after))
        raise ConnectorError(
            f"{last_error} — gave up after {self.attempts} attempt(s).", retryable=True
        )


def _error_detail(body: bytes) -> str:
    """A short reason from an error body (SCIM `detail`, or a JSON `message`/`error`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict):
        for key in ("detail", "message", "error_description", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return f": {value[:200]}"
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return f": {value['message'][:200]}"
    return ""
