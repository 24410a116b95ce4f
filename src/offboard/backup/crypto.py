"""The backup file's encryption: AES-256-GCM over fixed-size chunks (the STREAM construction),
so a backup of any size is written and read with bounded memory and any truncation, reordering,
splice or bit flip is detected. Standard library and `cryptography` only.

File layout (all integers big-endian):

    header   magic "OFFBOARD-BACKUP\\n" (16) | format version (1) | key kind (1: key file,
             2: passphrase) | scrypt log2 N, r, p (1 each; 0 for a key file) | chunk size (4)
             | salt (32) | key check (16)                                        = 75 bytes
    chunks   AES-256-GCM(file key, nonce = chunk number (11) ‖ last flag (1),
                         aad = header) of each `chunk size` bytes of plaintext, + 16-byte tag;
             every chunk but the last holds exactly `chunk size` bytes, the last 0..chunk size.

The file key is unique to each backup: HKDF-SHA256(key file bytes, salt) or
scrypt(passphrase, salt, N, r, p), so counter nonces never repeat under one key. The key check
(HMAC-SHA256(file key, "key check"), 16 bytes) tells a wrong key from a damaged file.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"OFFBOARD-BACKUP\n"
VERSION = 1
KIND_KEY_FILE = 1
KIND_PASSPHRASE = 2
CHUNK = 1024 * 1024
TAG = 16
HEADER_SIZE = len(MAGIC) + 1 + 1 + 3 + 4 + 32 + 16
# scrypt as OWASP recommends (N=2^17, r=8, p=1: 128 MiB, a fraction of a second); a header may
# ask for more, up to a bound that keeps a hostile file from exhausting memory.
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 17, 8, 1
MAX_SCRYPT_LOG2_N = 20
MIN_PASSPHRASE = 12
KEY_ENV = "OFFBOARD_BACKUP_KEY"

Progress = Callable[[int], None]  # bytes done since the last call


class BackupKeyError(ValueError):
    """The key the operator gave is unusable, or it does not open this backup."""


class BackupDamaged(ValueError):
    """The backup file is not intact: truncated, altered, reordered, or not a backup at all."""


@dataclass(frozen=True)
class BackupKey:
    """What the operator provides: 32 bytes from a key file, or a passphrase."""

    kind: int
    secret: bytes
    source: str  # said in errors: "key file backup.key" / "$OFFBOARD_BACKUP_KEY"

    @classmethod
    def from_file(cls, path: Path) -> "BackupKey":
        """32 random bytes, raw or as base64 or hex text (`openssl rand -base64 32 > FILE`)."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise BackupKeyError(f"Cannot read the key file {path}: {exc.strerror}.") from None
        if len(raw) == 32:
            return cls(KIND_KEY_FILE, raw, f"key file {path}")
        text = raw.strip()
        for decode in (_b64, binascii.unhexlify):
            try:
                key = decode(text)
            except (ValueError, binascii.Error):
                continue
            if len(key) == 32:
                return cls(KIND_KEY_FILE, key, f"key file {path}")
        raise BackupKeyError(
            f"The key file {path} does not hold a 32-byte key (raw, base64 or hex): make one "
            "with `openssl rand -base64 32 > FILE` and keep it away from the backups."
        )

    @classmethod
    def from_passphrase(cls, passphrase: str, source: str = f"${KEY_ENV}") -> "BackupKey":
        if len(passphrase) < MIN_PASSPHRASE:
            raise BackupKeyError(
                f"The passphrase in {source} is shorter than {MIN_PASSPHRASE} characters: use a "
                "long random one, or a key file (--key-file)."
            )
        return cls(KIND_PASSPHRASE, passphrase.encode("utf-8"), source)


def _b64(text: bytes) -> bytes:
    return base64.b64decode(text, validate=True)


@dataclass(frozen=True)
class Header:
    kind: int
    log2_n: int
    r: int
    p: int
    chunk: int
    salt: bytes
    check: bytes = b""

    def pack(self) -> bytes:
        return (
            MAGIC
            + bytes([VERSION, self.kind, self.log2_n, self.r, self.p])
            + self.chunk.to_bytes(4, "big")
            + self.salt
            + self.check
        )

    @classmethod
    def parse(cls, data: bytes, name: str) -> "Header":
        if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
            raise BackupDamaged(f"{name} is not an Offboard backup (its first bytes differ).")
        if len(data) < HEADER_SIZE:
            raise BackupDamaged(f"{name} ends inside its header: the file is truncated.")
        at = len(MAGIC)
        version, kind, log2_n, r, p = data[at : at + 5]
        if version != VERSION:
            raise BackupDamaged(
                f"{name} is in backup format {version}; this Offboard reads format {VERSION}: "
                "restore it with the Offboard version that made it, or a newer one."
            )
        chunk = int.from_bytes(data[at + 5 : at + 9], "big")
        salt = data[at + 9 : at + 41]
        check = data[at + 41 : at + 57]
        if kind not in (KIND_KEY_FILE, KIND_PASSPHRASE) or not 4096 <= chunk <= 64 * CHUNK:
            raise BackupDamaged(f"{name}: its header is damaged (key kind or chunk size).")
        if kind == KIND_PASSPHRASE and not (
            10 <= log2_n <= MAX_SCRYPT_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16
        ):
            raise BackupDamaged(f"{name}: its header is damaged (scrypt parameters).")
        return cls(kind, log2_n, r, p, chunk, salt, check)


def _file_key(key: BackupKey, header: Header) -> bytes:
    if key.kind == KIND_KEY_FILE:
        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=header.salt, info=b"offboard-backup v1"
        )
        return hkdf.derive(key.secret)
    scrypt = Scrypt(salt=header.salt, length=32, n=1 << header.log2_n, r=header.r, p=header.p)
    return scrypt.derive(key.secret)


def _key_check(file_key: bytes) -> bytes:
    return hmac.new(file_key, b"offboard-backup key check", hashlib.sha256).digest()[:16]


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """A write-only file object: what is written is encrypted in chunks onto `sink`.
    `close()` writes the final chunk; until then the file is (detectably) incomplete."""

    def __init__(self, sink: IO[bytes], key: BackupKey, *, chunk: int = CHUNK) -> None:
        salt = secrets.token_bytes(32)
        if key.kind == KIND_PASSPHRASE:
            header = Header(KIND_PASSPHRASE, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, chunk, salt)
        else:
            header = Header(KIND_KEY_FILE, 0, 0, 0, chunk, salt)
        file_key = _file_key(key, header)
        self.header = replace(header, check=_key_check(file_key)).pack()
        self._aead = AESGCM(file_key)
        self._sink = sink
        self._chunk = chunk
        self._buffer = bytearray()
        self._counter = 0
        self._closed = False
        sink.write(self.header)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed backup writer")
        self._buffer += data
        while len(self._buffer) > self._chunk:  # keep at least one byte back for the last chunk
            self._emit(bytes(self._buffer[: self._chunk]), last=False)
            del self._buffer[: self._chunk]
        return len(data)

    def _emit(self, plain: bytes, *, last: bool) -> None:
        nonce = _nonce(self._counter, last)
        self._sink.write(self._aead.encrypt(nonce, plain, self.header))
        self._counter += 1

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        if not self._closed:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._closed = True
            self._sink.flush()


class DecryptingReader:
    """A read-only file object over an encrypted backup: every byte it returns has been
    authenticated; reading past the last chunk checks that the file really ends there."""

    def __init__(
        self,
        source: IO[bytes],
        key: BackupKey,
        *,
        name: str = "the backup",
        progress: Progress | None = None,
    ) -> None:
        self._source = source
        self._name = name
        self._progress = progress
        self.header = Header.parse(source.read(HEADER_SIZE), name)
        if self.header.kind != key.kind:
            made = "a key file" if self.header.kind == KIND_KEY_FILE else "a passphrase"
            raise BackupKeyError(
                f"{name} was encrypted with {made}, but {key.source} was given: pass "
                f"{'--key-file' if self.header.kind == KIND_KEY_FILE else '$' + KEY_ENV}."
            )
        file_key = _file_key(key, self.header)
        if not hmac.compare_digest(_key_check(file_key), self.header.check):
            raise BackupKeyError(
                f"The {key.source} does not open {name}: it was made with another key (or its "
                "header is damaged). Nothing was written."
            )
        self._header_bytes = self.header.pack()
        self._aead = AESGCM(file_key)
        self._counter = 0
        self._pending = source.read(self.header.chunk + TAG)
        self._plain = b""
        self._at = 0
        self._done = False
        if self._progress:
            self._progress(HEADER_SIZE + len(self._pending))

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes:
        sealed = self._pending
        size = self.header.chunk + TAG
        following = self._source.read(size) if len(sealed) == size else b""
        last = not following
        if len(sealed) < TAG:
            raise BackupDamaged(
                f"{self._name} ends early (after chunk {self._counter}): the file is truncated."
            )
        try:
            plain = self._aead.decrypt(_nonce(self._counter, last), sealed, self._header_bytes)
        except InvalidTag:
            where = f"chunk {self._counter} (bytes from {HEADER_SIZE + self._counter * size})"
            problem = "ends early or is damaged at" if last else "is damaged at"
            raise BackupDamaged(
                f"{self._name} {problem} {where}: it is not the file that was written. "
                "Nothing was written; use another copy of the backup."
            ) from None
        self._counter += 1
        self._pending = following
        if self._progress:
            self._progress(len(following))
        if last:
            self._done = True
        return plain

    def read(self, n: int = -1) -> bytes:
        parts = []
        wanted = n if n >= 0 else None
        while wanted is None or wanted > 0:
            if self._at >= len(self._plain):
                if self._done:
                    break
                self._plain, self._at = self._next_chunk(), 0
                continue
            take = len(self._plain) - self._at if wanted is None else wanted
            piece = self._plain[self._at : self._at + take]
            self._at += len(piece)
            parts.append(piece)
            if wanted is not None:
                wanted -= len(piece)
        return b"".join(parts)

    def finish(self) -> None:
        """Read to the authenticated end: a stream cut short or with bytes after its last
        chunk fails here, even when what was read so far was whole."""
        while self.read(1024 * 1024):
            pass
        if not self._done:  # pragma: no cover - read() only stops at the last chunk
            raise BackupDamaged(f"{self._name} ends early: the file is truncated.")
