"""The closure receipt: a small, self-contained text file the client receives at closure.

It says which event closed which case, and proves it with the organization's own signature:

    # (comment lines for the reader: what this is, how to use it)
    offboard.closure-receipt@v1
    case C-2026-0042
    closed-event <leaf hash of the case.closed event, 64 hex digits>
    key <the organization's note verifier key>
    c2sp.org/tlog-proof@v1            ┐
    index <the case.closed event's index in the log>   │ a C2SP tlog-proof of that event
    <inclusion proof hashes, base64>  │ against the checkpoint signed at closure
                                      │
    <the signed checkpoint note>      ┘

`offboard verify PACK --receipt FILE` trusts the key in the receipt and nothing in the pack:
whoever holds the file received it from the organization at closure, so that key and that
checkpoint are what the organization committed to then. The receipt's own check (the key's
signature on the checkpoint, the event's inclusion) needs nothing but this file.

Pure: the standard library and the ledger core (no Django), for the offline verifier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from offboard.ledger.note import Checkpoint, NoteError, Verifier
from offboard.ledger.tlogproof import TlogProof, TlogProofError, parse_tlog_proof, verify_tlog_proof

HEADER = "offboard.closure-receipt@v1"
MAX_RECEIPT_SIZE = 64 * 1024
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX = re.compile(r"[0-9a-f]{64}")


class ReceiptError(ValueError):
    """The file is not a closure receipt, or it does not prove itself; one line for the user."""


@dataclass(frozen=True)
class ClosureReceipt:
    case_ref: str
    closed_leaf: bytes  # leaf hash of the case.closed event
    key: Verifier
    proof: TlogProof  # inclusion of that event in the closure checkpoint

    @property
    def closed_index(self) -> int:
        return self.proof.index

    @property
    def checkpoint_text(self) -> str:
        return self.proof.checkpoint_text


def encode_receipt(
    *,
    case_ref: str,
    closed_leaf: bytes,
    verifier_key: str,
    tlog_proof: str,
    comments: Sequence[str] = (),
) -> str:
    """The receipt's text; `comments` are lines for the human reader, written first."""
    if not _REF.fullmatch(case_ref):
        raise ReceiptError(f"{case_ref!r} is not a case reference")
    if len(closed_leaf) != 32:
        raise ReceiptError("the closed event's leaf hash must be 32 bytes")
    lines = [f"# {c}".rstrip() if c else "#" for c in comments]
    lines += [
        HEADER,
        f"case {case_ref}",
        f"closed-event {closed_leaf.hex()}",
        f"key {verifier_key}",
    ]
    return "\n".join(lines) + "\n" + tlog_proof


def parse_receipt(raw: bytes | str) -> ClosureReceipt:
    """Strictly parse a receipt (leading `#` lines are comments); ReceiptError saying what is
    wrong. Parsing does not check the signature or the proof: `open_receipt` does."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_RECEIPT_SIZE:
            raise ReceiptError(f"a closure receipt is at most {MAX_RECEIPT_SIZE:,} bytes")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ReceiptError("a closure receipt is UTF-8 text") from None
    # A mail client or an editor on Windows may have turned the line ends into CRLF; the
    # signed note inside was LF only (a note cannot hold a CR), so this undoes exactly that.
    lines = raw.replace("\r\n", "\n").split("\n")
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    if not lines or lines[0] != HEADER:
        raise ReceiptError(f"not a closure receipt: the first line must be {HEADER!r}")
    fields = {}
    for position, name in enumerate(("case", "closed-event", "key"), start=1):
        line = lines[position] if len(lines) > position else ""
        label, _, value = line.partition(" ")
        if label != name or not value:
            raise ReceiptError(f"line {position + 1} of the receipt must be `{name} …`")
        fields[name] = value
    if not _REF.fullmatch(fields["case"]):
        raise ReceiptError(f"{fields['case']!r} is not a case reference")
    if not _HEX.fullmatch(fields["closed-event"]):
        raise ReceiptError("closed-event must be the 64-hex-digit leaf hash of the closure")
    try:
        key = Verifier.from_verifier_key(fields["key"])
    except NoteError as exc:
        raise ReceiptError(f"the receipt's key is not a note verifier key: {exc}") from None
    try:
        proof = parse_tlog_proof("\n".join(lines[4:]))
    except TlogProofError as exc:
        raise ReceiptError(f"the receipt's proof of the closure: {exc}") from None
    return ClosureReceipt(fields["case"], bytes.fromhex(fields["closed-event"]), key, proof)


def open_receipt(raw: bytes | str) -> tuple[ClosureReceipt, Checkpoint]:
    """Parse a receipt and check it proves itself: its checkpoint is signed by its key (for
    the key's own log) and the closure event is a leaf of that checkpoint."""
    receipt = parse_receipt(raw)
    try:
        checkpoint = verify_tlog_proof(
            receipt.proof, receipt.closed_leaf, [receipt.key], origin=receipt.key.name
        )
    except NoteError as exc:
        raise ReceiptError(
            f"the receipt's checkpoint is not signed by the receipt's key: {exc}"
        ) from None
    except TlogProofError as exc:
        raise ReceiptError(f"the receipt does not prove its closure event: {exc}") from None
    return receipt, checkpoint
