"""C2SP signed-note (Ed25519 keys, signing, opening) and C2SP tlog-checkpoint note bodies."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100  # golang.org/x/mod/sumdb/note refuses notes with more
MAX_NOTE_SIZE = 1 << 20  # bytes, for the whole signed note
MAX_TREE_SIZE = (1 << 63) - 1  # fits a signed 64-bit column, like Go's int64
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII controls except newline
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A note, key or checkpoint is malformed, or its signatures do not verify."""


def _is_valid_name(name: str) -> bool:
    """signed-note §Format: non-empty, no Unicode spaces, no '+' (and no control characters)."""
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() or c < " " for c in name)
        and _is_utf8(name)
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _is_valid_name(name):
        raise NoteError(
            f"{what}: invalid key name {name!r} (must be non-empty, without spaces or '+')"
        )
    return name


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4), canonical only, so one value has one spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def key_id(name: str, public_key_bytes: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4] (signed-note §Ed25519 signatures)."""
    if len(public_key_bytes) != 32:
        raise NoteError("an Ed25519 public key is 32 bytes")
    encoded = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key_bytes
    return hashlib.sha256(encoded).digest()[:4]


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _parse_key_id(hex_id: str, what: str) -> bytes:
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise NoteError(f"{what}: the key id must be 8 hex digits")
    return bytes.fromhex(hex_id)


def _parse_key_data(key64: str, what: str) -> bytes:
    data = _b64decode(key64, f"{what}: the key data")
    if not data or data[0] != ALG_ED25519:
        raise NoteError(f"{what}: unknown key algorithm (only Ed25519, 0x01, is supported)")
    if len(data) != 33:
        raise NoteError(f"{what}: an Ed25519 key is 32 bytes after the algorithm byte")
    return data[1:]


@dataclass(frozen=True)
class Verifier:
    """A public key that can check note signatures; text form `<name>+<hex id>+<base64(0x01 || key)>`."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey = field(compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "verifier")
        expected = key_id(self.name, _raw_public(self.public_key))
        if self.key_id != expected:
            raise NoteError(
                f"verifier {self.name}: key id {self.key_id.hex()} does not match the key "
                f"({expected.hex()})"
            )

    @classmethod
    def from_public_key(cls, name: str, public_key_bytes: bytes) -> Verifier:
        kid = key_id(_check_name(name, "verifier"), public_key_bytes)
        return cls(name, kid, Ed25519PublicKey.from_public_bytes(public_key_bytes))

    @classmethod
    def from_verifier_key(cls, text: str) -> Verifier:
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must look like <name>+<hex key id>+<base64 key>")
        name, hex_id, key64 = parts
        what = f"verifier key {name}"
        _check_name(name, what)
        kid = _parse_key_id(hex_id, what)
        raw = _parse_key_data(key64, what)
        if kid != key_id(name, raw):
            raise NoteError(f"{what}: key id {hex_id} does not match the key")
        return cls(name, kid, Ed25519PublicKey.from_public_bytes(raw))

    def verifier_key(self) -> str:
        raw = bytes([ALG_ED25519]) + _raw_public(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{_b64(raw)}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether sig (without the 4-byte key id) is this key's Ed25519 signature of msg."""
        if len(sig) != 64:
            return False
        try:
            self.public_key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


class NoteSigner(Protocol):
    """What signs a note: a key name, its 4-byte key id and Ed25519 signing of a message.

    `Signer` below holds the key in memory; `ledger.keys` also signs through a PKCS#11 token.
    Either way the signature line, and so its verification, are the same.
    """

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, msg: bytes) -> bytes: ...


@dataclass(frozen=True)
class Signer:
    """A private signing key; text form `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`."""

    name: str
    key_id: bytes
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "signer")
        if self.key_id != key_id(self.name, _raw_public(self.private_key.public_key())):
            raise NoteError(
                f"signer {self.name}: key id {self.key_id.hex()} does not match the key"
            )

    @classmethod
    def generate(cls, name: str) -> Signer:
        private_key = Ed25519PrivateKey.generate()
        public = _raw_public(private_key.public_key())
        return cls(name, key_id(_check_name(name, "signer"), public), private_key)

    @classmethod
    def from_signer_key(cls, text: str) -> Signer:
        # Messages never quote the text: it is a secret.
        parts = text.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError(
                "signer key must look like PRIVATE+KEY+<name>+<hex key id>+<base64 key>"
            )
        name, hex_id, key64 = parts[2:]
        what = f"signer key {name}"
        _check_name(name, "signer key")
        kid = _parse_key_id(hex_id, what)
        private_key = Ed25519PrivateKey.from_private_bytes(_parse_key_data(key64, what))
        if kid != key_id(name, _raw_public(private_key.public_key())):
            raise NoteError(f"{what}: key id {hex_id} does not match the key")
        return cls(name, kid, private_key)

    def to_signer_key(self) -> str:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw = bytes([ALG_ED25519]) + seed
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{_b64(raw)}"

    def sign(self, msg: bytes) -> bytes:
        return self.private_key.sign(msg)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.private_key.public_key())

    def verifier_key(self) -> str:
        return self.verifier().verifier_key()


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes  # without the key id
    verified: bool


@dataclass(frozen=True)
class Note:
    text: str
    signatures: list[NoteSignature]


def _encode_note(text: str, what: str) -> bytes:
    """signed-note §Format: valid UTF-8, no ASCII control characters other than newline."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not valid UTF-8") from None
    if len(raw) > MAX_NOTE_SIZE:
        raise NoteError(f"{what} is {len(raw)} bytes, over the {MAX_NOTE_SIZE}-byte limit")
    bad = _CONTROL.search(text)
    if bad:
        raise NoteError(f"{what} contains control character {bad.group()!r}")
    return raw


def sign_note(text: str, *signers: NoteSigner) -> str:
    """The signed note: text, a blank line, then one `— <name> base64(id || sig)` line per signer."""
    if not signers:
        raise NoteError("a note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(f"a note can carry at most {MAX_SIGNATURES} signatures")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    msg = _encode_note(text, "note text")
    lines = [f"{SIGNATURE_PREFIX}{s.name} {_b64(s.key_id + s.sign(msg))}\n" for s in signers]
    signed = text + "\n" + "".join(lines)
    _encode_note(signed, "signed note")
    return signed


def _verifier_table(verifiers: Sequence[Verifier]) -> dict[tuple[str, bytes], Verifier | None]:
    """(name, key id) -> verifier; None marks two different keys claiming the same pair."""
    table: dict[tuple[str, bytes], Verifier | None] = {}
    for v in verifiers:
        k = (v.name, v.key_id)
        if k in table:
            known = table[k]
            if known is None or _raw_public(known.public_key) != _raw_public(v.public_key):
                table[k] = None
        else:
            table[k] = v
    return table


def _parse(signed: str | bytes) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its text and (name, key id, signature) triples (signed-note §Format)."""
    if isinstance(signed, bytes):
        if len(signed) > MAX_NOTE_SIZE:
            raise NoteError(f"malformed note: over the {MAX_NOTE_SIZE}-byte limit")
        try:
            signed = signed.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("malformed note: not valid UTF-8") from None
    _encode_note(signed, "malformed note: the note")
    # The text may itself contain blank lines: the last one separates the signatures.
    split = signed.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line separates the text from the signatures")
    text, block = signed[: split + 1], signed[split + 2 :]
    if not block:
        raise NoteError("malformed note: no signature lines after the blank line")
    if not block.endswith("\n"):
        raise NoteError("malformed note: the last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(
            f"malformed note: {len(lines)} signatures, over the limit of {MAX_SIGNATURES}"
        )

    parsed: list[tuple[str, bytes, bytes]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(
                f"malformed note: signature line {number} must start with an em dash (U+2014) and a space"
            )
        name, _, sig64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not _is_valid_name(name):
            raise NoteError(
                f"malformed note: signature line {number} has an invalid key name {name!r}"
            )
        raw = _b64decode(sig64, f"malformed note: signature line {number} ({name})")
        if len(raw) < 5:
            raise NoteError(f"malformed note: signature line {number} ({name}) is too short")
        if line not in seen:
            seen.add(line)
            parsed.append((name, raw[:4], raw[4:]))
    return text, parsed


def parse_note(signed: str | bytes) -> Note:
    """Parse a signed note without checking any signature (all come back verified=False)."""
    text, parsed = _parse(signed)
    return Note(text, [NoteSignature(name, kid, sig, verified=False) for name, kid, sig in parsed])


def open_note(signed: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note and check it against the trusted verifiers (signed-note §Signatures).

    Signatures from unknown keys (name and id not both matching a verifier) are kept with
    verified=False. Any signature from a known key that fails to verify rejects the whole
    note, and so does a note without at least one verified signature. Repeated identical
    signature lines are listed once.
    """
    text, parsed = _parse(signed)
    table = _verifier_table(verifiers)
    text_bytes = text.encode("utf-8")
    signatures = []
    for name, kid, sig in parsed:
        label = f"{name}+{kid.hex()}"
        if (name, kid) not in table:
            signatures.append(NoteSignature(name, kid, sig, verified=False))
            continue
        verifier = table[(name, kid)]
        if verifier is None:
            raise NoteError(
                f"ambiguous key {label}: two different trusted keys share its name and id"
            )
        if not verifier.verify(text_bytes, sig):
            raise NoteError(f"invalid signature for key {label}: the note was altered or forged")
        signatures.append(NoteSignature(name, kid, sig, verified=True))

    if not any(s.verified for s in signatures):
        found = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in signatures)
        trusted = ", ".join(f"{n}+{k.hex()}" for n, k in table) or "none"
        raise NoteError(
            f"note has no signature from a trusted key (signed by {found}; trusted: {trusted})"
        )
    return Note(text, signatures)


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint note body: origin, tree size, base64 root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _CONTROL.search(self.origin):
            raise NoteError(f"checkpoint origin {self.origin!r} must be one non-empty line")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError("checkpoint tree size must be an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size {self.size} is out of range")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise NoteError("checkpoint root hash must be 32 bytes")
        for ext in self.extensions:
            if not ext or "\n" in ext or _CONTROL.search(ext):
                raise NoteError(f"checkpoint extension line {ext!r} must be one non-empty line")

    def text(self) -> str:
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Strict tlog-checkpoint §Note text: exactly one spelling per checkpoint is accepted."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs an origin, a tree size and a root hash line")
        origin, size, root64, *extensions = lines
        if not origin:
            raise NoteError("checkpoint origin line is empty")
        if len(size) > 19 or not _DECIMAL.fullmatch(size) or int(size) > MAX_TREE_SIZE:
            raise NoteError(
                f"checkpoint tree size {size!r} is not a decimal number without leading zeros"
            )
        root = _b64decode(root64, "checkpoint root hash")
        if len(root) != 32:
            raise NoteError(f"checkpoint root hash is {len(root)} bytes, not 32")
        if any(not ext for ext in extensions):
            raise NoteError("checkpoint extension lines must not be empty")
        return cls(origin, int(size), root, tuple(extensions))


def open_checkpoint(
    signed: str | bytes, verifiers: Sequence[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """Open a signed checkpoint, parse its body and, if given, require its origin."""
    checkpoint = Checkpoint.parse(open_note(signed, verifiers).text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
