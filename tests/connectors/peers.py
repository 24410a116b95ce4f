"""A real SCIM 2.0 server (`scim2-server`) on loopback, and a small fault-injecting proxy to put
in front of it (500, 429 with Retry-After, a timeout, a dropped connection)."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from tests.smtp import free_port

SCIM_SERVER = Path(sys.executable).with_name("scim2-server")


class ScimServer:
    """`scim2-server --bearer-token TOKEN` on a free loopback port."""

    def __init__(self) -> None:
        self.token = "scim-" + uuid.uuid4().hex  # the secret the tests search for
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def start(self) -> ScimServer:
        self.process = subprocess.Popen(
            [str(SCIM_SERVER), "--port", str(self.port), "--bearer-token", self.token],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.call("GET", "/ServiceProviderConfig")
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("scim2-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(
                method,
                f"/v2{path}",
                body=None if body is None else json.dumps(body),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/scim+json",
                },
            )
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status >= 400:
            raise AssertionError(f"{method} {path}: {resp.status} {data!r}")
        return json.loads(data) if data else None

    # Seeding helpers
    def user(self, user_name: str, *, display: str = "", active: bool = True) -> str:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "displayName": display or user_name.split("@")[0].title(),
            "active": active,
            "emails": [{"value": user_name, "primary": True}],
        }
        return str(self.call("POST", "/Users", body)["id"])

    def group(self, name: str, members: list[str]) -> str:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": m} for m in members],
        }
        return str(self.call("POST", "/Groups", body)["id"])

    def members(self, group_id: str) -> list[str]:
        return [m["value"] for m in self.call("GET", f"/Groups/{group_id}").get("members") or ()]


class FaultProxy:
    """Forwards to `upstream_port`; `inject(fault, ...)` makes the next matching requests fail:
    ("status", 500) / ("status", 429, retry_after[, body]) / ("timeout", seconds) / ("drop",) /
    ("late", seconds) — forwarded, then the answer held back that long and the connection
    dropped (a write that lands but whose reply never arrives). Faults may be limited to a
    method and to requests whose body contains some bytes (`contains=b"Action=DeleteUser"`).
    `seen` lists (method, path, status-or-fault) of each request. `keep_host` forwards the
    client's Host header (a request signed over it, AWS SigV4, still verifies upstream)."""

    def __init__(self, upstream_port: int, *, keep_host: bool = False) -> None:
        self.upstream_port = upstream_port
        self.keep_host = keep_host
        self.port = free_port()
        self.faults: deque[tuple[str | None, bytes | None, tuple[Any, ...]]] = deque()
        self.seen: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy._take(self.command, body or b"")
                if fault is not None and fault[0] != "late":
                    proxy.seen.append((self.command, self.path, fault[0]))
                    if fault[0] == "status":
                        payload = fault[3] if len(fault) > 3 else b'{"detail": "injected"}'
                        self.send_response(fault[1])
                        if len(fault) > 2 and fault[2] is not None:
                            self.send_header("Retry-After", str(fault[2]))
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                    if fault[0] == "timeout":
                        time.sleep(fault[1])
                    self.close_connection = True
                    self.connection.close()
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {
                    k: v for k, v in self.headers.items() if proxy.keep_host or k.lower() != "host"
                }
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if fault is not None:  # "late": it landed upstream; the answer never comes
                    proxy.seen.append((self.command, self.path, "late"))
                    time.sleep(fault[1])
                    self.close_connection = True
                    self.connection.close()
                    return
                proxy.seen.append((self.command, self.path, resp.status))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("X-Request-Id", f"req-{len(proxy.seen)}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def _take(self, method: str, body: bytes = b"") -> tuple[Any, ...] | None:
        with self.lock:
            for i, (only, contains, fault) in enumerate(self.faults):
                if (only is None or only == method) and (contains is None or contains in body):
                    del self.faults[i]
                    return fault
        return None

    def inject(
        self, *fault: Any, times: int = 1, method: str | None = None, contains: bytes | None = None
    ) -> None:
        with self.lock:
            self.faults.extend((method, contains, fault) for _ in range(times))

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
