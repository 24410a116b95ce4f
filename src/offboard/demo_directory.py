"""The demo's directory: a real SCIM 2.0 server (`scim2-server`, a dependency) started on a
loopback port while the demo loads, so that one of the closed case's revocations is done — and
read back — by the SCIM connector, with real events and evidence. It is stopped when the load
ends: afterwards the demo's connection points at nothing, and its check says so.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER = Path(sys.executable).with_name("scim2-server")


@dataclass
class DemoDirectory:
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

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
            raise RuntimeError(f"demo directory: {method} {path}: {resp.status}")
        return json.loads(data) if data else None

    def user(self, user_name: str, display: str) -> str:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "displayName": display,
            "active": True,
            "emails": [{"value": user_name, "primary": True}] if "@" in user_name else [],
        }
        return str(self.call("POST", "/Users", body)["id"])

    def group(self, name: str, members: list[str]) -> str:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": m} for m in members],
        }
        return str(self.call("POST", "/Groups", body)["id"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_directory() -> Iterator[DemoDirectory | None]:
    """The running directory, or None when scim2-server cannot start (the demo then records
    that revocation as attested, like the others)."""
    if not SERVER.exists():
        yield None
        return
    directory = DemoDirectory(port=_free_port(), token="demo-" + secrets.token_urlsafe(24))
    process = subprocess.Popen(  # noqa: S603 - our own scim2-server, fixed arguments
        [str(SERVER), "--port", str(directory.port), "--bearer-token", directory.token],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                directory.call("GET", "/ServiceProviderConfig")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    yield None
                    return
                time.sleep(0.05)
        yield directory
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
