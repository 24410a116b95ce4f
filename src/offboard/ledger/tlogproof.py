"""C2SP tlog-proof@v1: an entry's offline-verifiable inclusion proof as text (`.tlog-proof`)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from offboard.ledger.merkle import HASH_SIZE, verify_inclusion
from offboard.ledger.note import (
    MAX_NOTE_SIZE,
    MAX_TREE_SIZE,
    Checkpoint,
    NoteError,
    Verifier,
    open_checkpoint,
    parse_note,
)

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 63  # a tree of at most 2**63 - 1 leaves has at most 63 levels
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class TlogProofError(ValueError):
    """A tlog-proof is malformed, or does not prove its entry."""


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: list[bytes]  # RFC 9162 §2.1.3.1 order: the leaf's sibling first
    checkpoint_text: str  # the signed checkpoint note, verbatim
    extra: bytes | None = None  # opaque, unauthenticated


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64, canonical only: each proof has exactly one encoding."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TlogProofError(f"tlog-proof: {what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise TlogProofError(f"tlog-proof: {what} is not canonical base64")
    return raw


def _check_checkpoint(signed: str) -> None:
    """The checkpoint must be a well-formed signed note with a tlog-checkpoint body."""
    try:
        Checkpoint.parse(parse_note(signed).text)
    except NoteError as e:
        raise TlogProofError(f"tlog-proof: checkpoint: {e}") from None


def encode_tlog_proof(
    index: int,
    proof_hashes: Sequence[bytes],
    signed_checkpoint_text: str,
    extra_data: bytes | None = None,
) -> str:
    """The tlog-proof@v1 text (c2sp.org/tlog-proof §Format)."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_TREE_SIZE:
        raise TlogProofError(f"tlog-proof: entry index {index!r} is out of range")
    if len(proof_hashes) > MAX_PROOF_HASHES:
        raise TlogProofError(f"tlog-proof: more than {MAX_PROOF_HASHES} proof hashes")
    if any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in proof_hashes):
        raise TlogProofError(f"tlog-proof: every proof hash must be {HASH_SIZE} bytes")
    _check_checkpoint(signed_checkpoint_text)
    lines = [HEADER]
    if extra_data is not None:
        if not extra_data:
            raise TlogProofError("tlog-proof: extra data is empty; pass None to omit the line")
        lines.append("extra " + base64.b64encode(extra_data).decode("ascii"))
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode("ascii") for h in proof_hashes]
    return "\n".join(lines) + "\n\n" + signed_checkpoint_text


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Strictly parse a tlog-proof@v1; encode_tlog_proof gives back exactly the same text."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise TlogProofError("tlog-proof: not valid UTF-8") from None
    if len(text) > 2 * MAX_NOTE_SIZE:
        raise TlogProofError("tlog-proof: too large")
    # Header lines and proof hashes are all non-empty, so the first blank line ends them.
    head, blank, checkpoint_text = text.partition("\n\n")
    if not blank:
        raise TlogProofError("tlog-proof: no blank line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"tlog-proof: the first line must be {HEADER!r}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _b64decode(rest.pop(0)[len("extra ") :], "extra data")
        if not extra:
            raise TlogProofError("tlog-proof: the extra line has no data")
    if not rest or not rest[0].startswith("index "):
        raise TlogProofError("tlog-proof: missing the 'index N' line")
    digits = rest.pop(0)[len("index ") :]
    if len(digits) > 19 or not _DECIMAL.fullmatch(digits) or int(digits) > MAX_TREE_SIZE:
        raise TlogProofError(
            f"tlog-proof: index {digits!r} is not a decimal number without leading zeros"
        )
    if len(rest) > MAX_PROOF_HASHES:
        raise TlogProofError(f"tlog-proof: more than {MAX_PROOF_HASHES} proof hashes")
    hashes = []
    for number, line in enumerate(rest, start=1):
        h = _b64decode(line, f"proof hash {number}")
        if len(h) != HASH_SIZE:
            raise TlogProofError(
                f"tlog-proof: proof hash {number} is {len(h)} bytes, not {HASH_SIZE}"
            )
        hashes.append(h)
    _check_checkpoint(checkpoint_text)
    return TlogProof(int(digits), hashes, checkpoint_text, extra)


def verify_tlog_proof(
    proof: TlogProof | str | bytes,
    leaf_hash: bytes,
    verifiers: Sequence[Verifier],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Check the checkpoint's signature (and origin) and the entry's inclusion; return the checkpoint.

    Raises NoteError for a checkpoint not signed by a trusted key, TlogProofError when the
    entry is not in the checkpointed tree.
    """
    if not isinstance(proof, TlogProof):
        proof = parse_tlog_proof(proof)
    checkpoint = open_checkpoint(proof.checkpoint_text, verifiers, origin=origin)
    if proof.index >= checkpoint.size:
        raise TlogProofError(
            f"tlog-proof: entry {proof.index} is beyond the checkpoint's tree size {checkpoint.size}"
        )
    if not verify_inclusion(leaf_hash, proof.index, checkpoint.size, proof.hashes, checkpoint.root):
        raise TlogProofError(
            f"tlog-proof: entry {proof.index} is not included in the checkpointed tree "
            f"of size {checkpoint.size} (wrong entry or altered proof)"
        )
    return checkpoint
