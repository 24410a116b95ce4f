"""The state of one verification run: the archive, what is established so far, the checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from offboard.ledger.note import Checkpoint, Verifier
from offboard.packs.verify import layout as fmt
from offboard.packs.verify.answers import Evidence
from offboard.packs.verify.archive import Archive


@dataclass
class Check:
    name: str
    ok: bool
    summary: str
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "ok": self.ok,
            "summary": self.summary,
            "problems": self.problems,
        }


class Run:
    """One verification: the archive, what has been established so far, and the checks."""

    def __init__(
        self,
        archive: Archive,
        key: Verifier | None,
        client_checkpoint: bytes | None,
        tsa_roots: list[x509.Certificate] | None,
    ) -> None:
        self.archive = archive
        self.key = key
        self.client_checkpoint = client_checkpoint
        self.tsa_roots = tsa_roots
        self.checks: list[Check] = []
        self.case_ref: str | None = None
        self.checkpoint: Checkpoint | None = None
        self.checkpoint_raw: bytes | None = None
        self.signed_by: str = ""
        self.trusted = False  # the checkpoint verified against the keys we trust
        self.bag_info: dict[str, list[str]] = {}
        self.evidence = Evidence()

    def has(self, path: str) -> bool:
        return path in self.archive.members

    def paths(self, kind: str) -> list[str]:
        found = [p for p in self.archive.members if fmt.kind_of(p) == kind]
        return sorted(found, key=lambda p: (len(p), p))

    def add(self, name: str, summary: str, problems: list[str]) -> Check:
        check = Check(name, not problems, summary, problems)
        self.checks.append(check)
        return check
