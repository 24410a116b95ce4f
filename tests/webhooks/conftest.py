"""A real HTTP receiver on loopback for the outbound webhook tests: `http.server` in a thread.

It records every request, checks each one's Standard Webhooks signature with its own
implementation (tests/inbound/conftest.py's, written from the specification, not Offboard's),
and can be told to answer a status, to be slow (sleep past the deliverer's timeout), or to be
`down()` (its port closed: connection refused) and `up()` again on the same port.
"""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.inbound.conftest import standard_webhooks_signature
from tests.smtp import free_port, smtp

__all__ = ["smtp"]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_with: list[str] = field(default_factory=list)  # which secrets' signatures matched

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.delay = 0.0
        self.answer = b'{"ok": true}'
        self.secrets: list[str] = []
        self.requests: list[Request] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks/offboard?source=test"

    def verify(self, request: Request) -> list[str]:
        """The secrets (of `self.secrets`) one of the request's signatures was made with."""
        sent = request.headers.get("webhook-signature", "").split(" ")
        timestamp = int(request.headers["webhook-timestamp"])
        return [
            secret
            for secret in self.secrets
            if standard_webhooks_signature(secret, request.id, timestamp, request.body) in sent
        ]

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                got = Request(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                got.verified_with = receiver.verify(got)
                receiver.requests.append(got)
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(receiver.answer)))
                    self.end_headers()
                    self.wfile.write(receiver.answer)
                except OSError:
                    pass  # the deliverer gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.OFFBOARD_WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is on loopback
    settings.OFFBOARD_WEBHOOK_TIMEOUT = 1.0
    server = Receiver()
    server.up()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture
def endpoint(alice: Any, receiver: Receiver) -> Any:
    from offboard.webhooks.services import create_webhook_endpoint

    issued = create_webhook_endpoint(
        actor=alice, name="CRM", url=receiver.url, event_types=["client.*", "case.*"]
    )
    receiver.secrets = [issued.secret]
    return issued.endpoint
