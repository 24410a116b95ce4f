"""The evidence pack's layout and its small text formats, shared by the exporter and the
offline verifier. Pure: the standard library and the ledger core only (no Django).

A pack is a zipped BagIt bag (RFC 8493) with one base directory; paths here are relative
to it. See docs/evidence-pack.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from offboard.ledger.merkle import HASH_SIZE

BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"
TAG_FILES = (BAGIT_TXT, BAG_INFO, MANIFEST, TAGMANIFEST)
BAGIT_TXT_CONTENT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"

README = "data/README.txt"
CERTIFICATE = "data/certificate.pdf"
CASE_JSON = "data/case.json"
CHECKPOINT = "data/checkpoint"
EVENTS_DIR = "data/events/"
PROOFS_DIR = "data/proofs/"
KEYS_DIR = "data/keys/"
TIMESTAMPS_DIR = "data/timestamps/"
CONSISTENCY_DIR = "data/consistency/"
FILES_DIR = "data/files/"

CASE_JSON_FORMAT = "offboard-case-state/1"
CONSISTENCY_HEADER = "offboard.evidence-pack/consistency-proof@v1"

_NUMBER = r"(0|[1-9][0-9]{0,18})"
_PAYLOAD_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("event", re.compile(rf"data/events/{_NUMBER}\.json")),
    ("redacted", re.compile(rf"data/events/{_NUMBER}\.redacted")),
    ("proof", re.compile(rf"data/proofs/{_NUMBER}\.tlog-proof")),
    ("key", re.compile(r"data/keys/[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.pub")),
    ("token", re.compile(rf"data/timestamps/{_NUMBER}\.tsr")),
    ("chain", re.compile(rf"data/timestamps/{_NUMBER}\.chain\.pem")),
    ("consistency", re.compile(rf"data/consistency/{_NUMBER}\.proof")),
    ("file", re.compile(r"data/files/([0-9a-f]{64})")),
]
_FIXED = {
    README: "readme",
    CERTIFICATE: "certificate",
    CASE_JSON: "case",
    CHECKPOINT: "checkpoint",
    **{name: "tag" for name in TAG_FILES},
}


def kind_of(path: str) -> str | None:
    """What a path in the bag is (`event`, `proof`, `file`, `tag`, …), or None if the
    layout has no such file."""
    if path in _FIXED:
        return _FIXED[path]
    for kind, pattern in _PAYLOAD_PATTERNS:
        if pattern.fullmatch(path):
            return kind
    return None


def number_in(path: str) -> int:
    """The decimal number a numbered path carries (`data/events/12.json` → 12)."""
    found = re.search(r"/(0|[1-9][0-9]*)\.", path)
    if found is None:
        raise ValueError(f"{path} carries no number")
    return int(found.group(1))


def event_path(index: int) -> str:
    return f"{EVENTS_DIR}{index}.json"


def redacted_path(index: int) -> str:
    return f"{EVENTS_DIR}{index}.redacted"


def proof_path(index: int) -> str:
    return f"{PROOFS_DIR}{index}.tlog-proof"


def file_path(sha256: str) -> str:
    return f"{FILES_DIR}{sha256}"


def consistency_path(old_size: int) -> str:
    return f"{CONSISTENCY_DIR}{old_size}.proof"


# --- manifests and bag-info --------------------------------------------------------------------


def manifest_line(sha256: str, path: str) -> str:
    """One manifest line in the form `sha256sum -c` reads (two spaces)."""
    if any(c in path for c in "\r\n%"):
        raise ValueError(f"path {path!r} would need percent-encoding")
    return f"{sha256}  {path}\n"


def parse_manifest(text: str, name: str) -> tuple[dict[str, str], list[str]]:
    """A BagIt manifest as {path: sha256}, and the problems found, each naming `name`."""
    entries: dict[str, str] = {}
    problems: list[str] = []
    if text and not text.endswith("\n"):
        problems.append(f"{name}: the last line does not end with a newline")
    for number, line in enumerate(text.splitlines(), start=1):
        found = re.fullmatch(r"([0-9a-fA-F]{64})[ \t]+\*?(\S.*)", line)
        if found is None:
            problems.append(f"{name} line {number} is not `<sha256>  <path>`: {line[:80]!r}")
            continue
        digest, path = found.group(1).lower(), found.group(2)
        if path in entries:
            problems.append(f"{name} lists {path} twice")
        entries[path] = digest
    return entries, problems


def parse_bag_info(text: str) -> tuple[dict[str, list[str]], list[str]]:
    """`Label: value` lines (continuations indented) as {label: [values]}, and the problems."""
    info: dict[str, list[str]] = {}
    problems: list[str] = []
    last: tuple[str, int] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line[:1] in (" ", "\t") and last is not None:
            label, at = last
            info[label][at] += " " + line.strip()
            continue
        label, colon, value = line.partition(":")
        if not colon or not label.strip() or label != label.strip():
            problems.append(f"{BAG_INFO} line {number} is not `Label: value`: {line[:80]!r}")
            last = None
            continue
        info.setdefault(label, []).append(value.strip())
        last = (label, len(info[label]) - 1)
    return info, problems


# --- consistency proofs ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    old_root: bytes
    new_size: int
    new_root: bytes
    hashes: list[bytes]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def encode_consistency_proof(
    old_size: int, old_root: bytes, new_size: int, new_root: bytes, hashes: Sequence[bytes]
) -> str:
    """RFC 9162 §2.1.4 PROOF(old, D[new]) as text: a header, `old N ROOT`, `new N ROOT`, then
    one base64 hash per line (the same base64 as checkpoints)."""
    lines = [
        CONSISTENCY_HEADER,
        f"old {old_size} {_b64(old_root)}",
        f"new {new_size} {_b64(new_root)}",
        *(_b64(h) for h in hashes),
    ]
    return "\n".join(lines) + "\n"


def _hash64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None
    if len(raw) != HASH_SIZE or _b64(raw) != text:
        raise ValueError(f"{what} is not a canonical base64 SHA-256 hash")
    return raw


def parse_consistency_proof(text: str) -> ConsistencyProof:
    """Strict inverse of encode_consistency_proof; ValueError saying what is wrong."""
    if not text.endswith("\n"):
        raise ValueError("the last line does not end with a newline")
    lines = text[:-1].split("\n")
    if lines[0] != CONSISTENCY_HEADER:
        raise ValueError(f"the first line must be {CONSISTENCY_HEADER!r}")
    if len(lines) < 3 or len(lines) > 3 + 2 * 64:
        raise ValueError("needs an `old` line, a `new` line and at most 128 hashes")
    sizes: list[tuple[int, bytes]] = []
    for line, word in ((lines[1], "old"), (lines[2], "new")):
        found = re.fullmatch(rf"{word} {_NUMBER} (\S+)", line)
        if found is None:
            raise ValueError(f"the `{word}` line must be `{word} <size> <base64 root>`")
        sizes.append((int(found.group(1)), _hash64(found.group(2), f"the {word} root")))
    hashes = [_hash64(h, f"proof hash {i}") for i, h in enumerate(lines[3:], start=1)]
    (old_size, old_root), (new_size, new_root) = sizes
    return ConsistencyProof(old_size, old_root, new_size, new_root, hashes)


# --- the state digest --------------------------------------------------------------------------

_SAFE_INT = 2**53


def _check_canonicalizable(value: Any, where: str = "$") -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -_SAFE_INT < value < _SAFE_INT:
            raise ValueError(f"{where}: integer {value} is outside ±2^53")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_canonicalizable(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_canonicalizable(item, f"{where}.{key}")
        return
    raise ValueError(f"{where}: {type(value).__name__} values are not used in case state")


def _canonical(value: Any) -> str:
    if isinstance(value, dict):
        # RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their names.
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(f"{_canonical(k)}:{_canonical(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of what case state holds (strings, integers within ±2^53,
    booleans, null, arrays, objects); ValueError for anything else, such as floats."""
    _check_canonicalizable(value)
    return _canonical(value).encode("utf-8")


def state_digest(state: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of a case state, as the approvals and the closure
    event record it."""
    return hashlib.sha256(canonical_json(state)).hexdigest()
