"""Bounds of request bodies, kept before they are read (docs/security.md, "Uploads").

A body may have DATA_UPLOAD_MAX_MEMORY_SIZE bytes; sent to an endpoint that takes files, by a
member that endpoint let in (`allow_files`, called before anything reads the body), it may
carry OFFBOARD_MAX_UPLOAD_BYTES of files on top. `Content-Length` is checked before the
first byte is read (`web/middleware.py`, and `BoundedUploads.handle_raw_input` when the body
is parsed), and the bytes actually read are counted as they come (`BoundedBody`,
`BoundedUploads`), so a chunked body or a lying header is cut off at the limit instead of
being spooled to disk. Either way: a 413 naming the field (`body`, or the file's field).
The values the body holds are bounded after parsing, in `core/inputs.py`.
"""

from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

MIB = 1024 * 1024
# Room, beside the files and the fields, for a multipart body's boundaries and part headers.
MULTIPART_OVERHEAD = MIB


class BodyTooLarge(RequestDataTooBig):
    """A body, or a file in it, past its limit: a 413 naming `field`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def amount(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"


def upload_too_large(limit: int) -> str:
    """The problem of files past the upload limit, wherever it is found."""
    return f"is larger than the {amount(limit)} upload limit"


def allow_files(request: HttpRequest) -> None:
    """For an endpoint that takes files, once it knows the sender may upload there and before
    the body is read: the body may then carry OFFBOARD_MAX_UPLOAD_BYTES of files."""
    request.offboard_files_allowed = True  # type: ignore[attr-defined]


def files_allowed(request: HttpRequest | None) -> bool:
    return bool(getattr(request, "offboard_files_allowed", False))


def file_limit(request: HttpRequest | None) -> int:
    """How many bytes of files the request may carry, all its files together."""
    data = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if files_allowed(request) or data is None:
        return int(settings.OFFBOARD_MAX_UPLOAD_BYTES)
    return int(data)


def body_limit(*, files: bool) -> int | None:
    """The most bytes a body may have, with or without the upload limit's worth of files
    (None: no limit, which Django's own setting allows)."""
    data = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if not files:
        return data
    return int(settings.OFFBOARD_MAX_UPLOAD_BYTES) + (data or 0) + MULTIPART_OVERHEAD


def body_too_large(limit: int, *, files: bool = False) -> BodyTooLarge:
    problem = f"is larger than the {amount(limit)} a request may send"
    if files:
        upload = int(settings.OFFBOARD_MAX_UPLOAD_BYTES)
        problem += f" (its files: the {amount(upload)} upload limit)"
    return BodyTooLarge("body", problem)


class BoundedBody:
    """A request's input stream that gives at most `limit` bytes and refuses the next one,
    whatever `Content-Length` said (a chunked body, a lying header, a server that spools)."""

    def __init__(self, stream: IO[bytes], limit: int | None) -> None:
        self.stream = stream
        self.limit = limit
        self.consumed = 0

    def _want(self, size: int | None) -> int:
        wanted = -1 if size is None else size
        if self.limit is None:
            return wanted
        room = self.limit - self.consumed + 1  # one byte more than allowed shows it is too much
        return room if wanted < 0 else min(wanted, room)

    def _count(self, data: bytes) -> bytes:
        self.consumed += len(data)
        if self.limit is not None and self.consumed > self.limit:
            raise body_too_large(self.limit)
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._count(self.stream.read(self._want(size)))

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(self.stream.readline(self._want(size)))

    def close(self) -> None:
        close = getattr(self.stream, "close", None)
        if close is not None:
            close()


class BoundedUploads(FileUploadHandler):
    """The first of FILE_UPLOAD_HANDLERS: refuses a multipart body whose `Content-Length` is
    past its limit before reading it, and stops the files at theirs as they arrive, before
    the next handler spools one byte more."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = file_limit(request)
        self.received = 0

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: Any,
        encoding: str | None = None,
    ) -> None:
        allowed = files_allowed(self.request)
        limit = body_limit(files=allowed)
        if limit is not None and content_length > limit:
            raise body_too_large(limit, files=allowed)
        self.limit = file_limit(self.request)  # what the endpoint allowed since we were made

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            raise BodyTooLarge(str(self.field_name), upload_too_large(self.limit))
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
