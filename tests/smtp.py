"""A real SMTP server on loopback for the email tests: aiosmtpd's `Controller` in a thread.

`LocalSMTP` keeps every message it accepted (envelope and parsed message), can go `down()`
(its port closed: connection refused) and come back `up()` on the same port, and can
misbehave on purpose: `reject` the message (451), refuse every recipient (550), or `hang`
before answering DATA. With `login=` set it demands SMTP AUTH (PLAIN/LOGIN) without TLS.
"""

import asyncio
import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

Mode = Literal["ok", "reject", "refuse_recipients", "hang"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage

    def attachments(self) -> dict[str, Any]:
        """File name → the attachment part."""
        return {part.get_filename(): part for part in self.message.iter_attachments()}

    def text(self) -> str:
        """The plain-text body as a reader sees it (SMTP carries lines ended by CRLF)."""
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content()).replace("\r\n", "\n")

    def html(self) -> str:
        body = self.message.get_body(preferencelist=("html",))
        assert body is not None
        return str(body.get_content()).replace("\r\n", "\n")


class _Handler:
    def __init__(self, server: "LocalSMTP") -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.server.mode == "refuse_recipients":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.server.data_attempts += 1
        if self.server.mode == "hang":
            await asyncio.sleep(self.server.hang_seconds)
        if self.server.mode == "reject":
            return "451 4.3.0 The test server is not accepting mail right now"
        raw = bytes(envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.server.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed)
        )
        return "250 2.0.0 Message accepted for delivery"


class LocalSMTP:
    host = "127.0.0.1"

    def __init__(self, *, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.login = login
        self.mode: Mode = "ok"
        self.hang_seconds = 2.0
        self.received: list[Received] = []
        self.data_attempts = 0
        self.controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.login is not None
        ok = ok and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)

    def up(self) -> None:
        if self.controller is not None:
            return
        options: dict[str, Any] = {}
        if self.login is not None:
            options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        self.controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, ready_timeout=10, **options
        )
        self.controller.start()

    def down(self) -> None:
        """Close the port: a client's connection is refused."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def configure(self, settings: Any, *, timeout: float = 5.0) -> None:
        """Point Django's SMTP backend at this server."""
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = self.host
        settings.EMAIL_PORT = self.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = timeout
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""


@pytest.fixture
def smtp(settings: Any) -> Iterator[LocalSMTP]:
    """A running server, and Django's mail settings pointing at it."""
    server = LocalSMTP()
    server.up()
    server.configure(settings)
    try:
        yield server
    finally:
        server.down()
