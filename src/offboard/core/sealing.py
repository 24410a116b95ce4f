"""Secrets Offboard must read back (an inbound webhook endpoint's HMAC secret), sealed at rest
with AES-256-GCM under a key kept outside the database: a 0600 file under OFFBOARD_KEY_DIR,
beside the checkpoint signing keys (decision 0020). A database dump or backup alone reveals
none of them. `context` (the owning row's identity) is authenticated with each value, so a
sealed value copied into another row does not open there.

Sealed text: `v1:<key id>:<base64url of 12-byte nonce ‖ ciphertext ‖ tag>`, where the key id
is the first 4 bytes of SHA-256(key) in hex: a value sealed under another key says so.
"""

import base64
import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

KEY_FILE = "sealing.key"
VERSION = "v1"


class SealedValueUnavailable(RuntimeError):
    """A sealed value cannot be opened: its key file is missing, another key sealed it, or
    it was altered. The message says which, never the value."""


def key_path() -> Path:
    return Path(settings.OFFBOARD_KEY_DIR) / KEY_FILE


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).digest()[:4].hex()


def _read_key(path: Path) -> bytes:
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise SealedValueUnavailable(
            f"Cannot read the sealing key at {path}: "
            f"{getattr(exc, 'strerror', None) or 'not base64'}."
        ) from exc
    if len(key) != 32:
        raise SealedValueUnavailable(f"The sealing key at {path} is not 32 bytes.")
    return key


def _key(*, create: bool) -> bytes:
    """The sealing key; made on first use (`create`), atomically, so two processes that both
    find none end up with the same one."""
    path = key_path()
    if path.exists() or not create:
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    os.chmod(temp, 0o600)  # the umask may have widened it
    try:
        os.link(temp, path)  # fails if another process made it first: theirs is the key
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    return _read_key(path)


def seal(value: bytes, *, context: str) -> str:
    key = _key(create=True)
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, value, context.encode())
    return f"{VERSION}:{_key_id(key)}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(text: str, *, context: str) -> bytes:
    version, _, rest = text.partition(":")
    key_id, _, payload = rest.partition(":")
    if version != VERSION or not payload:
        raise SealedValueUnavailable("The sealed value is not in a form this Offboard reads.")
    key = _key(create=False)
    if _key_id(key) != key_id:
        raise SealedValueUnavailable(
            f"The value was sealed under key {key_id}, but the sealing key at {key_path()} is "
            f"{_key_id(key)}: restore the key file it was sealed with."
        )
    try:
        raw = base64.urlsafe_b64decode(payload)
        return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode())
    except (ValueError, InvalidTag):
        raise SealedValueUnavailable(
            "The sealed value does not open under its key: it was altered or moved."
        ) from None
