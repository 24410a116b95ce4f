"""`offboard verify`: check an evidence pack offline — no database, no network, no Django.

`verify_pack(path, keys=…, receipt=…, client_checkpoint=…, tsa_roots=…)` reads the zip as
hostile input (`archive`), runs the checks — bag and fixity (`bag`), the log proofs and who
signed (`proofs`), completeness and closure (`chain`), what the events refer to and commit to
(`content`) — and answers the five questions from the events that are anchored (`answers`).

Trust comes only from outside the pack (decision 0010): `keys` (--key) and the key in the
client's closure `receipt` (--receipt). A pack that passes every check but is anchored by
neither is reported `unanchored`, and nothing in it is PROVEN. Every problem names the file
it is about. The layout and its small formats are in `layout` and docs/evidence-pack.md.

Pure: the standard library, `cryptography`, `rfc3161-client` and the ledger core only (an
import-linter contract keeps the whole package so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from offboard.ledger.note import NoteError, Verifier
from offboard.packs.verify.answers import Answer, Evidence, VerifiedEvent, answer_questions, when
from offboard.packs.verify.archive import PackUnreadable, read_archive
from offboard.packs.verify.bag import check_bag, check_fixity
from offboard.packs.verify.chain import check_closure, check_completeness
from offboard.packs.verify.content import (
    check_bound,
    check_case_json,
    check_certificate,
    check_files,
    check_timestamps,
    unique_certificates,
)
from offboard.packs.verify.proofs import (
    check_checkpoint,
    check_consistency,
    check_events,
    check_receipt,
)
from offboard.packs.verify.run import Check, Run

__all__ = ["EXIT_CODES", "Check", "Report", "parse_key", "parse_roots", "verify_pack"]

# The verifier's exit codes (docs/evidence-pack.md).
EXIT_CODES = {"verified": 0, "failed": 1, "usage": 2, "unanchored": 3}


@dataclass
class Report:
    pack: str
    case_ref: str | None = None
    checks: list[Check] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    error: str | None = None  # the pack could not be read at all
    checkpoint: dict[str, Any] | None = None
    anchors: list[str] = field(default_factory=list)  # what the trust rests on
    receipt: dict[str, Any] | None = None
    after_receipt: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check passed (whether or not the pack is anchored)."""
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def outcome(self) -> str:
        """`verified` (every check passed, anchored outside the pack), `failed`, or
        `unanchored` (internally consistent, but nothing outside the pack vouches for it)."""
        if not self.ok:
            return "failed"
        return "verified" if self.anchors else "unanchored"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def as_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "outcome": self.outcome,
            "ok": self.ok,
            "anchors": self.anchors,
            "error": self.error,
            "case": self.case_ref,
            "checkpoint": self.checkpoint,
            "receipt": self.receipt,
            "questions": [a.as_dict() for a in self.answers],
            "after_receipt": self.after_receipt,
            "checks": [c.as_dict() for c in self.checks],
        }


CHECKS: list[tuple[str, Callable[[Run], None]]] = [
    ("bag", check_bag),
    ("fixity", check_fixity),
    ("checkpoint", check_checkpoint),
    ("receipt", check_receipt),
    ("events", check_events),
    ("consistency", check_consistency),
    ("completeness", check_completeness),
    ("closure", check_closure),
    ("files", check_files),
    ("bound", check_bound),
    ("case", check_case_json),
    ("certificate", check_certificate),
    ("timestamps", check_timestamps),
]


def parse_key(text: str) -> Verifier:
    """A note verifier key given on the command line; ValueError saying what is wrong."""
    try:
        return Verifier.from_verifier_key(text.strip())
    except NoteError as exc:
        raise ValueError(str(exc)) from None


def parse_roots(pem: bytes) -> list[x509.Certificate]:
    try:
        roots = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ValueError(f"not PEM certificates: {exc}") from None
    return unique_certificates(roots)


def _anchors(run: Run) -> list[str]:
    anchors = []
    if run.pack_trusted and run.given_keys:
        anchors.append("--key")
    if run.receipt is not None and run.receipt_size is not None:
        anchors.append("--receipt")
    if run.client_size is not None:
        anchors.append("--checkpoint")
    return anchors


def _evidence(run: Run, outcome: str) -> Evidence:
    evidence = Evidence(
        case_ref=run.case_ref,
        outcome=outcome,
        failed_checks=[c.name for c in run.checks if not c.ok],
        state=run.bound_state,
        timestamps=run.timestamps,
        checkpoint=run.checkpoint,
        pack_trusted=run.pack_trusted,
        signed_by=run.signed_by.split("+")[1] if run.signed_by.count("+") >= 2 else "?",
        anchors=_anchors(run),
        receipt_size=run.receipt_size,
        receipt_key=run.receipt.key.key_id.hex() if run.receipt is not None else "",
        client_size=run.client_size,
    )
    limit = min(run.anchor_size, run.cutoff if run.cutoff is not None else run.anchor_size)
    for entry in run.ordered():
        if not entry.included or entry.index >= limit:
            continue
        if entry.redacted:
            evidence.redacted.append(entry.index)
        elif entry.body is not None:
            evidence.events.append(VerifiedEvent(entry.index, entry.body, entry.path))
    return evidence


def _after_receipt(run: Run) -> list[dict[str, Any]]:
    """The case's entries recorded after the receipt's checkpoint, listed apart."""
    if run.receipt_size is None:
        return []
    out = []
    for entry in run.ordered():
        if entry.index < run.receipt_size:
            continue
        body = entry.body or {}
        actor = body.get("actor") if isinstance(body.get("actor"), dict) else {}
        out.append(
            {
                "index": entry.index,
                "path": entry.path,
                "type": entry.type or ("erased" if entry.redacted else "unreadable"),
                "at": when(body.get("at")) if body else None,
                "actor": actor.get("name") if actor else None,
                "anchored": entry.included and entry.index < run.anchor_size,
            }
        )
    return out


def verify_pack(
    path: Path,
    *,
    keys: list[Verifier] | None = None,
    receipt: bytes | None = None,
    client_checkpoint: bytes | None = None,
    tsa_roots: list[x509.Certificate] | None = None,
    progress: Callable[[int], None] | None = None,
    key: Verifier | None = None,
) -> Report:
    """Every check on the pack at `path`, and the five questions answered from what is
    anchored. `keys`: the organization's verifier keys the user trusts (--key); `receipt`:
    the bytes of the client's closure receipt (--receipt). `key` is one of `keys`."""
    trusted = [*(keys or []), *([key] if key is not None else [])]
    report = Report(pack=str(path))
    try:
        archive = read_archive(path, progress)
    except PackUnreadable as exc:
        report.error = str(exc)
    except Exception as exc:  # a zip library surprise is still a refusal, not a traceback
        report.error = f"{path.name} cannot be read as a zip archive ({type(exc).__name__}: {exc})"
    if report.error is not None:
        report.answers = answer_questions(Evidence(), unreadable=report.error)
        return report
    run = Run(archive, trusted, receipt, client_checkpoint, tsa_roots)
    for name, check in CHECKS:
        try:
            check(run)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # hostile input ends in a failed check, never a traceback
            # (BaseException: a panic in a Rust extension is not an Exception)
            run.add(name, "", [f"the {name} check could not complete: {type(exc).__name__}: {exc}"])
    report.case_ref = run.case_ref
    report.checks = run.checks
    report.anchors = _anchors(run)
    try:
        report.answers = answer_questions(_evidence(run, report.outcome))
    except Exception as exc:  # as above: a crafted case state must not crash the verifier
        report.answers = answer_questions(Evidence(), unreadable=f"{type(exc).__name__}: {exc}")
    report.after_receipt = _after_receipt(run)
    if run.checkpoint is not None:
        report.checkpoint = {
            "origin": run.checkpoint.origin,
            "size": run.checkpoint.size,
            "root": run.checkpoint.root.hex(),
            "key": run.signed_by,
            "trusted": run.pack_trusted,
        }
    if run.receipt is not None:
        report.receipt = {
            "case": run.receipt.case_ref,
            "closed_event": run.receipt.closed_index,
            "checkpoint_size": run.receipt_checkpoint.size if run.receipt_checkpoint else None,
            "key": run.receipt.key.verifier_key(),
        }
    return report
