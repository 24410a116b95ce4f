"""Content-addressed storage on Django's default storage backend (local dir or S3)."""

import hashlib
import os
import tempfile
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from offboard.core.errors import ValidationFailed

CHUNK = 1024 * 1024

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


def spool_and_hash(stream: IO[bytes], field: str = "file") -> tuple[IO[bytes], str, int, bytes]:
    """Copy an upload to a temporary file while hashing it, refusing it past the size limit."""
    limit = settings.OFFBOARD_MAX_UPLOAD_BYTES
    digest = hashlib.sha256()
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
        tmp.write(chunk)
    tmp.seek(0)
    return tmp, digest.hexdigest(), size, head


def put(name: str, spooled: IO[bytes]) -> bool:
    """Store bytes under their hash name; an existing object is never overwritten. True if
    this call created it."""
    if default_storage.exists(name):
        return False
    saved = default_storage.save(name, File(spooled))
    if saved != name:  # a concurrent writer stored the same content first
        default_storage.delete(saved)
        return False
    return True


def delete(name: str) -> None:
    """Remove bytes this process stored for an action that is being undone."""
    default_storage.delete(name)


def open_stored(name: str) -> IO[bytes]:
    return default_storage.open(name, "rb")


def local_path(name: str) -> str:
    return os.fspath(default_storage.path(name))
