"""Content-addressed storage on Django's default storage backend: a local directory, or an
S3-compatible bucket (OFFBOARD_STORAGE=s3, evidence/s3.py). Every read of stored bytes goes
through `open_stored`, which checks them against their SHA-256 as they stream.

What a reader sees when stored bytes do not hash to their name (decision 0031): the stream
raises `StoredFileCorrupted` before it hands out its last chunk, so a download is cut short
of its Content-Length (the browser reports a failed download, never a complete wrong file),
`offboard ledger verify` lists the file, an export stops with a Conflict, and a closure
receipt is not sent. A store that cannot be reached raises `StorageUnavailable` (HTTP 503):
nothing that needed it is recorded.
"""

import hashlib
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Sequence
from typing import IO, Any, NamedTuple

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from offboard.core.errors import OffboardError, ValidationFailed

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
_SHA256_NAME = re.compile(r"(?:^|/)([0-9a-f]{64})$")


class StorageUnavailable(OffboardError):
    """The evidence store did not answer or refused: nothing that needed it was recorded."""

    status = 503
    code = "storage_unavailable"


class StoredFileCorrupted(Exception):
    """Stored bytes that do not hash to the SHA-256 they were stored under."""

    def __init__(self, name: str, expected: str, problem: str) -> None:
        super().__init__(f"stored file {name}: {problem} (expected sha256 {expected})")
        self.name = name
        self.expected = expected
        self.problem = problem


_SIGNATURES: list[tuple[bytes, str]] = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
]


def sniff_media_type(head: bytes) -> str:
    """Decide the type from the bytes, never from the name the uploader chose."""
    for magic, media_type in _SIGNATURES:
        if head.startswith(magic):
            return media_type
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the end of the sniffed head.
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
    return "text/plain"


def storage_name_for(org_id: int, sha256: str) -> str:
    return f"evidence/{org_id}/{sha256[:2]}/{sha256}"


class Spooled(NamedTuple):
    file: IO[bytes]
    sha256: str
    size: int
    head: bytes  # the first 512 bytes, for the media type
    crc32: int


def spool_and_hash(stream: IO[bytes], field: str = "file") -> Spooled:
    """Copy an upload to a temporary file while hashing it (SHA-256 and CRC-32), refusing it
    past the size limit."""
    limit = settings.OFFBOARD_MAX_UPLOAD_BYTES
    digest = hashlib.sha256()
    crc = 0
    size = 0
    head = b""
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, who closes it
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            tmp.close()
            raise ValidationFailed(
                {field: [f"is larger than the {limit // (1024 * 1024)} MiB upload limit"]}
            )
        if len(head) < 512:
            head += chunk[: 512 - len(head)]
        digest.update(chunk)
        crc = zlib.crc32(chunk, crc)
        tmp.write(chunk)
    tmp.seek(0)
    return Spooled(tmp, digest.hexdigest(), size, head, crc)


def _store_errors() -> tuple[type[BaseException], ...]:
    """What the configured backend raises when the store fails (object storage's client
    errors; a local directory's are OSErrors)."""
    return (OSError, *getattr(default_storage, "errors", ()))


def _unavailable(action: str, exc: BaseException, what_next: str) -> StorageUnavailable:
    log.error("evidence storage: %s failed: %r", action, exc)
    return StorageUnavailable(
        f"Evidence storage is unavailable ({action} failed: {type(exc).__name__}). "
        f"{what_next} If it persists, ask your administrator to check the storage "
        "(GET /health/ready names it).",
        details={"action": action},
    )


def put(name: str, spooled: IO[bytes]) -> bool:
    """Store bytes under their hash name; an existing object is never overwritten. True if
    this call created it. A store that fails raises StorageUnavailable and leaves no object
    (an interrupted multipart upload is aborted by the client library)."""
    try:
        if default_storage.exists(name):
            return False
        saved = default_storage.save(name, File(spooled))
    except _store_errors() as exc:
        raise _unavailable(
            "storing a file",
            exc,
            "The file was not stored and nothing was recorded: send it again later.",
        ) from exc
    if saved != name:  # a concurrent writer stored the same content first
        default_storage.delete(saved)
        return False
    return True


def delete(name: str) -> None:
    """Remove bytes this process stored for an action that is being undone."""
    default_storage.delete(name)


def missing(names: Sequence[str]) -> list[str]:
    """Those of `names` not in the store, in order (object storage looks several up at once:
    one round trip each would dominate a pack export's checks)."""
    try:
        finder = getattr(default_storage, "missing", None)
        if finder is not None:
            return list(finder(names))
        return [name for name in names if not default_storage.exists(name)]
    except _store_errors() as exc:
        raise _unavailable("looking up files", exc, "Try again later.") from exc


def expected_sha256(name: str) -> str:
    """The SHA-256 an evidence name ends with."""
    found = _SHA256_NAME.search(name)
    if found is None:
        raise ValueError(f"{name} does not end with a sha256: pass the expected sha256")
    return found.group(1)


class StoredStream:
    """A stored file's bytes, hashed as they are read. Reading never returns the last bytes
    of a file whose SHA-256 is not the expected one: that read raises StoredFileCorrupted
    instead (so does a file that ends early). `size` is the stored size."""

    def __init__(self, raw: IO[bytes], *, name: str, sha256: str, size: int) -> None:
        self._raw = raw
        self.name_in_store = name
        self.sha256 = sha256
        self.size = size
        self._digest = hashlib.sha256()
        self._seen = 0
        self._checked = False
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self._checked:
            return b""
        remaining = self.size - self._seen
        want = remaining if n is None or n < 0 else min(n, remaining)
        chunk = self._raw.read(want) if want else b""
        if remaining and not chunk:
            self._fail(f"the store returned {self._seen} of {self.size} bytes")
        self._digest.update(chunk)
        self._seen += len(chunk)
        if self._seen == self.size:
            self._checked = True
            actual = self._digest.hexdigest()
            if actual != self.sha256:
                self._fail(f"its bytes hash to {actual}")
        return chunk

    def _fail(self, problem: str) -> None:
        self._checked = True
        error = StoredFileCorrupted(self.name_in_store, self.sha256, problem)
        log.error("evidence storage: %s; restore it from a backup", error)
        raise error

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._raw.close()

    def __enter__(self) -> "StoredStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stored(name: str, *, sha256: str | None = None) -> StoredStream:
    """The stored bytes of `name`, checked against `sha256` (by default the one the name ends
    with) as they are read. Object storage streams the object's body: never a whole copy in
    memory or on disk. FileNotFoundError if it is not stored; StorageUnavailable if the store
    does not answer."""
    expected = (sha256 or expected_sha256(name)).lower()
    raw: Any
    try:
        opener = getattr(default_storage, "open_stream", None)
        if opener is not None:
            raw, size = opener(name)
        else:
            raw = default_storage.open(name, "rb")
            size = raw.size
    except FileNotFoundError:
        raise
    except _store_errors() as exc:
        raise _unavailable("reading a file", exc, "Try again later.") from exc
    return StoredStream(raw, name=name, sha256=expected, size=size)


def read_stored(name: str, *, sha256: str | None = None) -> bytes:
    """A small stored file (a certificate), whole and checked."""
    with open_stored(name, sha256=sha256) as stream:
        return stream.read()


class NotReady(Exception):
    """Why the store cannot take files now, in words without a path or an address."""


def check_ready() -> dict[str, Any]:
    """Readiness: the store takes new files (a local directory exists or can be made and is
    writable; a bucket answers). NotReady, or the backend's own error, otherwise."""
    checker = getattr(default_storage, "check_ready", None)
    if checker is not None:
        return dict(checker())
    path = default_storage.path("")
    try:  # a new installation has stored nothing yet: the first upload would make it
        os.makedirs(path, exist_ok=True)
    except OSError:
        raise NotReady("the evidence storage directory cannot be made") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise NotReady("the evidence storage directory is not writable")
    return {"kind": "filesystem"}


def local_path(name: str) -> str:
    """Where a file of the local directory backend is (tests and benchmarks)."""
    return os.fspath(default_storage.path(name))
