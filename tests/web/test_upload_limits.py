"""Upload limits hold before the body is read (security review, issue 11, item 4).

Through a real server (pytest-django's live server) and a raw socket: each request sends its
head and only the start of its body, then waits for the answer. A server that read the body
before refusing would wait for the rest and never answer (the socket times out); one that
refuses first answers at once. A file past its limit is cut off where it passes it, and a
body longer than its `Content-Length` said is cut off at the body limit (core/bodies.py).
"""

import contextlib
import io
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.test import Client

from offboard.core.bodies import BodyTooLarge, body_limit
from offboard.evidence.models import EvidenceFile
from offboard.ledger.models import LedgerEntry
from offboard.web.middleware import RequestBodyLimitsMiddleware
from tests.api.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
BOUNDARY = "offboard-test-boundary"
ANSWER_WITHIN = 10  # seconds; a server waiting for the rest of the body never answers
CSRF = "k" * 32  # a CSRF secret, as the cookie and the header of a signed-in browser


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    settings.OFFBOARD_MAX_UPLOAD_BYTES = MIB
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024


def _multipart_head(field: str = "file", name: str = "big.pdf") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()


def _multipart(content: bytes, field: str = "file") -> bytes:
    return _multipart_head(field) + content + f"\r\n--{BOUNDARY}--\r\n".encode()


class Answer:
    def __init__(self, status: int, head: str, body: bytes) -> None:
        self.status, self.head, self.body = status, head, body


def _exchange(
    live_server: Any,
    path: str,
    *,
    headers: dict[str, str],
    sent: bytes,
    rest: bytes = b"",
) -> Answer:
    """Send the request head and `sent`, and `rest` from another thread (a server that stops
    reading may leave it unsent); return the answer that arrives meanwhile."""
    url = urlsplit(live_server.url)
    if not path.startswith("/api/"):
        headers = _as_a_browser(headers)
    sock = socket.create_connection((url.hostname, url.port), timeout=ANSWER_WITHIN)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    try:
        sock.sendall(head.encode() + b"\r\n" + sent)
        if rest:
            threading.Thread(target=_send_quietly, args=(sock, rest), daemon=True).start()
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed without answering: {received!r}"
            received += chunk
        head_bytes, _, body = received.partition(b"\r\n\r\n")
        head_text = head_bytes.decode("latin-1")
        length = re.search(r"(?im)^content-length:\s*([0-9]+)", head_text)
        while length and len(body) < int(length.group(1)):
            chunk = sock.recv(65536)
            assert chunk, "the server closed in the middle of its answer"
            body += chunk
        return Answer(int(head_text.split()[1]), head_text, body)
    except TimeoutError:
        pytest.fail(f"no answer within {ANSWER_WITHIN} s: the server waited for the body")
    finally:
        sock.close()


def _as_a_browser(headers: dict[str, str]) -> dict[str, str]:
    """With the CSRF cookie and header a staff page gives: CSRF then reads the form, so only
    a refusal before it keeps the body unread."""
    cookies = "; ".join(c for c in (headers.get("Cookie", ""), f"csrftoken={CSRF}") if c)
    return {**headers, "Cookie": cookies, "X-CSRFToken": CSRF}


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    # The server answered and we closed the socket before all was sent: that is the point.
    with contextlib.suppress(OSError):
        sock.sendall(data)


def _multipart_headers(length: int, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(length),
        **extra,
    }


@pytest.fixture
def session(cast: dict[str, Any]) -> Iterator[Any]:
    """`session("alice")`: the Cookie header of a signed-in member."""

    def cookie(name: str) -> str:
        client = Client()
        client.force_login(cast[name].user)
        return f"sessionid={client.cookies['sessionid'].value}"

    yield cookie


@pytest.fixture
def bearer(cast: dict[str, Any]) -> Any:
    return lambda name: f"Bearer {token_for(cast[name])}"


def _nothing_written(before: tuple[int, int]) -> None:
    assert (EvidenceFile.objects.count(), LedgerEntry.objects.count()) == before


def _counts() -> tuple[int, int]:
    return EvidenceFile.objects.count(), LedgerEntry.objects.count()


# --- Content-Length past the limit: refused before reading ---------------------------------


@pytest.mark.parametrize("where", ["web", "api"])
def test_a_body_over_the_limit_is_413_from_its_content_length_before_it_is_read(
    live_server, case, session, bearer, where
):
    limit = body_limit(files=True)
    assert limit is not None
    if where == "web":
        path = f"/cases/{case.ref}/evidence/upload"
        auth = {"Cookie": session("alice"), "Accept": "application/json"}
    else:
        path, auth = "/api/v1/evidence", {"Authorization": bearer("alice")}
    before = _counts()
    answer = _exchange(
        live_server,
        path,
        headers=_multipart_headers(limit + 1, **auth),
        sent=_multipart_head() + b"%PDF-1.4 " + b"x" * 1024,  # of a body of 2.06 MiB
    )
    assert answer.status == 413, answer.body[:300]
    assert b"a request may send (its files: the 1 MiB upload limit)" in answer.body
    if where == "api":
        assert b'"fields": {"body": [' in answer.body
    _nothing_written(before)


def test_a_gigabyte_is_refused_before_it_is_read_even_from_a_member_who_may_upload(
    live_server, case, session
):
    answer = _exchange(
        live_server,
        f"/cases/{case.ref}/addenda",
        headers=_multipart_headers(1024 * MIB, Cookie=session("alice")),
        sent=_multipart_head("evidence_file"),
    )
    assert answer.status == 413
    assert "That request was too large" in answer.body.decode()


# --- who may send: refused before reading -------------------------------------------------


def _small_body() -> tuple[bytes, bytes]:
    """A body within every limit (512 KiB), split into what is sent and what is held back."""
    body = _multipart(b"%PDF-1.4 " + b"x" * (512 * 1024))
    return body[:1024], body[1024:]


def test_no_session_or_token_is_refused_before_the_body_is_read(live_server, case, cast):
    sent, _ = _small_body()
    length = len(_multipart(b"%PDF-1.4 " + b"x" * (512 * 1024)))
    step = case.steps.get(key="confirm_notice")
    for path, extra, status in [
        (f"/cases/{case.ref}/evidence/upload", {"Accept": "application/json"}, 401),
        (f"/cases/{case.ref}/steps/{step.key}/complete", {}, 302),
        ("/api/v1/evidence", {}, 401),
        ("/api/v1/evidence", {"Authorization": "Bearer obt_not-a-token"}, 401),
    ]:
        answer = _exchange(
            live_server, path, headers=_multipart_headers(length, **extra), sent=sent
        )
        assert answer.status == status, (path, answer.body[:300])
        if status == 302:
            assert "Location: /login/" in answer.head


def test_a_role_that_may_not_upload_is_refused_before_the_body_is_read(
    live_server, case, session, bearer
):
    sent, _ = _small_body()
    length = len(_multipart(b"%PDF-1.4 " + b"x" * (512 * 1024)))
    contract = case.contracts.get()
    step = case.steps.get(key="confirm_notice")
    erin = {"Cookie": session("erin"), "Accept": "application/json"}
    requests = [
        (f"/cases/{case.ref}/evidence/upload", erin),
        (f"/cases/{case.ref}/steps/{step.key}/complete", {"Cookie": session("erin")}),
        (
            f"/clients/{contract.client_id}/contracts/{contract.pk}/documents/",
            {"Cookie": session("dave")},
        ),
        ("/playbooks/upload/", {"Cookie": session("oscar")}),
        ("/api/v1/evidence", {"Authorization": bearer("erin")}),
        (f"/api/v1/clients/contracts/{contract.pk}/documents", {"Authorization": bearer("dave")}),
    ]
    before = _counts()  # the tokens above are events of their own
    for path, extra in requests:
        answer = _exchange(
            live_server, path, headers=_multipart_headers(length, **extra), sent=sent
        )
        assert answer.status == 403, (path, answer.body[:300])
    _nothing_written(before)


def test_another_organizations_case_is_404_before_the_body_is_read(live_server, case, mallory):
    client = Client()
    client.force_login(mallory.user)
    sent, _ = _small_body()
    length = len(_multipart(b"%PDF-1.4 " + b"x" * (512 * 1024)))
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    answer = _exchange(
        live_server,
        f"/cases/{case.ref}/addenda",
        headers=_multipart_headers(length, Cookie=cookie),
        sent=sent,
    )
    assert answer.status == 404, answer.body[:3000]


# --- the bytes actually read ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["web", "api"])
def test_a_file_past_the_limit_is_cut_off_where_it_passes_it(
    live_server, case, session, bearer, where
):
    """The Content-Length is within the body limit; the file in it is not (2 MiB of 1 MiB):
    the server stops reading at the file limit and answers while the rest is unsent."""
    body = _multipart(b"%PDF-1.4 " + b"x" * (2 * MIB))
    if where == "web":
        path = f"/cases/{case.ref}/evidence/upload"
        auth = {"Cookie": session("alice"), "Accept": "application/json"}
    else:
        path, auth = "/api/v1/evidence", {"Authorization": bearer("alice")}
    before = _counts()
    cut = MIB + 256 * 1024  # sent: past the limit by 256 KiB; held back: the other 768 KiB
    answer = _exchange(
        live_server,
        path,
        headers=_multipart_headers(len(body), **auth),
        sent=body[:cut],
        rest=body[cut:],
    )
    assert answer.status == 413, answer.body[:300]
    assert b"is larger than the 1 MiB upload limit" in answer.body
    _nothing_written(before)


def test_a_chunked_body_is_refused_before_it_is_read(live_server, case, bearer, session):
    for path, auth in [
        ("/api/v1/evidence", {"Authorization": bearer("alice")}),
        (f"/cases/{case.ref}/addenda", {"Cookie": session("alice")}),
    ]:
        answer = _exchange(
            live_server,
            path,
            headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Transfer-Encoding": "chunked",
                **auth,
            },
            sent=b"400\r\n" + _multipart_head() + b"x" * (1024 - len(_multipart_head())) + b"\r\n",
        )
        assert answer.status == 411, (path, answer.body[:300])
        assert b"Content-Length" in answer.body


class _Counting(io.BytesIO):
    """A body stream that remembers how far it was read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.furthest = max(self.furthest, self.tell())
        return data


def _request(body: _Counting, length: int, path: str = "/api/v1/evidence") -> ASGIRequest:
    """A request whose stream holds more than its Content-Length says: what a server that does
    not bound the body by its header (Django's ASGI handler) hands over."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", str(length).encode()),
        ],
    }
    return ASGIRequest(scope, body)


def _read_form(request: Any) -> HttpResponse:
    request.POST  # noqa: B018 - what a view or CSRF does first
    return HttpResponse("read")


def _read_to_the_end(request: Any) -> HttpResponse:
    while request.read(64 * 1024):
        pass
    return HttpResponse("read")


def test_a_body_longer_than_its_content_length_is_cut_off_at_the_body_limit(db):
    """Whoever reads the stream to its end gets no more than the body limit, whatever the
    header said and however much the server would hand over."""
    form = _multipart(b"%PDF-1.4 small")
    body = _Counting(form + b"y" * (8 * MIB))
    limit = body_limit(files=True)
    assert limit is not None and limit < 8 * MIB
    with pytest.raises(BodyTooLarge) as refused:
        RequestBodyLimitsMiddleware(_read_to_the_end)(_request(body, len(form)))
    assert refused.value.field == "body"
    assert body.furthest == limit + 1


def test_files_longer_than_the_content_length_said_are_cut_off_at_the_file_limit(db):
    from offboard.core.bodies import allow_files

    form = _multipart(b"%PDF-1.4 " + b"x" * (8 * MIB))
    body = _Counting(form)
    request = _request(body, 1000)
    allow_files(request)
    with pytest.raises(BodyTooLarge) as refused:
        RequestBodyLimitsMiddleware(_read_form)(request)
    assert refused.value.field == "file"
    assert "is larger than the 1 MiB upload limit" in refused.value.problem
    assert body.furthest <= MIB + 2 * 64 * 1024  # the limit, and the chunk that crossed it
