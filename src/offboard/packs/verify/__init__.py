"""`offboard verify`: check an evidence pack offline — no database, no network, no Django.

`verify_pack(path, key=…, client_checkpoint=…, tsa_roots=…)` reads the zip as hostile input
(`archive`), runs the checks — bag and fixity (`bag`), the log proofs (`proofs`), what the
events refer to (`content`) — and answers the five questions from the events that verified
(`answers`). Every problem names the file it is about. The layout and its small formats are
in `layout` (shared with the exporter) and docs/evidence-pack.md.

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
from offboard.packs.verify.answers import Answer, Evidence, answer_questions
from offboard.packs.verify.archive import PackUnreadable, read_archive
from offboard.packs.verify.bag import check_bag, check_fixity
from offboard.packs.verify.content import (
    check_case_json,
    check_certificate,
    check_files,
    check_timestamps,
    unique_certificates,
)
from offboard.packs.verify.proofs import check_checkpoint, check_consistency, check_events
from offboard.packs.verify.run import Check, Run

__all__ = ["Check", "Report", "parse_key", "parse_roots", "verify_pack"]


@dataclass
class Report:
    pack: str
    case_ref: str | None = None
    checks: list[Check] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    error: str | None = None  # the pack could not be read at all
    checkpoint: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "ok": self.ok,
            "error": self.error,
            "case": self.case_ref,
            "checkpoint": self.checkpoint,
            "questions": [a.as_dict() for a in self.answers],
            "checks": [c.as_dict() for c in self.checks],
        }


CHECKS: list[tuple[str, Callable[[Run], None]]] = [
    ("bag", check_bag),
    ("fixity", check_fixity),
    ("checkpoint", check_checkpoint),
    ("events", check_events),
    ("files", check_files),
    ("case", check_case_json),
    ("certificate", check_certificate),
    ("timestamps", check_timestamps),
    ("consistency", check_consistency),
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


def verify_pack(
    path: Path,
    *,
    key: Verifier | None = None,
    client_checkpoint: bytes | None = None,
    tsa_roots: list[x509.Certificate] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Every check on the pack at `path`, and the five questions answered from what verified."""
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
    run = Run(archive, key, client_checkpoint, tsa_roots)
    for name, check in CHECKS:
        try:
            check(run)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # hostile input ends in a failed check, never a traceback
            # (BaseException: a panic in a Rust extension is not an Exception)
            run.add(name, "", [f"the {name} check could not complete: {type(exc).__name__}: {exc}"])
    evidence = run.evidence
    evidence.case_ref = run.case_ref
    evidence.all_checks_ok = all(c.ok for c in run.checks)
    evidence.failed_checks = [c.name for c in run.checks if not c.ok]
    evidence.key_given = key is not None and run.trusted
    evidence.checkpoint = run.checkpoint
    evidence.signed_by = run.signed_by
    report.case_ref = run.case_ref
    report.checks = run.checks
    try:
        report.answers = answer_questions(evidence)
    except Exception as exc:  # as above: a crafted case state must not crash the verifier
        report.answers = answer_questions(Evidence(), unreadable=f"{type(exc).__name__}: {exc}")
    if run.checkpoint is not None:
        report.checkpoint = {
            "origin": run.checkpoint.origin,
            "size": run.checkpoint.size,
            "root": run.checkpoint.root.hex(),
            "key": run.signed_by,
        }
    return report
