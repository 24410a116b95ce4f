"""The state of one verification run: the archive, what the user trusts, what is established
so far, and the checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from offboard.ledger.note import Checkpoint, Verifier
from offboard.ledger.receipt import ClosureReceipt
from offboard.packs.verify import layout as fmt
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


@dataclass
class Entry:
    """One entry of the case in the pack: an event, or the placeholder of an erased one."""

    index: int
    path: str
    leaf: bytes | None  # None when unusable (said by the events check)
    body: dict[str, Any] | None  # None when redacted or not a well-formed event
    redacted: bool
    included: bool = False  # its inclusion proof leads to data/checkpoint's root

    @property
    def type(self) -> str:
        return str((self.body or {}).get("type", ""))

    @property
    def data(self) -> dict[str, Any]:
        data = (self.body or {}).get("data")
        return data if isinstance(data, dict) else {}


class Run:
    """One verification: the archive, the trust the user brought, and what is established."""

    def __init__(
        self,
        archive: Archive,
        keys: list[Verifier],
        receipt_raw: bytes | None,
        client_checkpoint: bytes | None,
        tsa_roots: list[x509.Certificate] | None,
    ) -> None:
        self.archive = archive
        self.given_keys = keys  # --key: trusted, and data/checkpoint must be signed by one
        self.receipt_raw = receipt_raw
        self.client_checkpoint = client_checkpoint
        self.tsa_roots = tsa_roots
        self.checks: list[Check] = []
        self.case_ref: str | None = None  # from bag-info, until an anchored source confirms it
        self.checkpoint: Checkpoint | None = None  # data/checkpoint, parsed
        self.checkpoint_raw: bytes | None = None
        self.signed_by: str = ""  # the verifier key (from data/keys/) whose signature verified
        self.pack_trusted = False  # data/checkpoint is signed by a key the user trusts
        self.receipt: ClosureReceipt | None = None  # the receipt, after it proved itself
        self.receipt_checkpoint: Checkpoint | None = None
        self.receipt_size: int | None = None  # the receipt's tree, shown to be a prefix
        self.client_size: int | None = None  # --checkpoint's tree, shown to be a prefix
        self.entries: dict[int, Entry] = {}
        self.bag_info: dict[str, list[str]] = {}
        self.timestamps: list[tuple[str, Any, str, bool]] = []  # path, time, TSA, anchored
        self.bound_state: dict[str, Any] | None = None  # case.json's state, bound by closure

    @property
    def trusted_keys(self) -> list[Verifier]:
        keys = list(self.given_keys)
        if self.receipt is not None:
            keys.append(self.receipt.key)
        return keys

    @property
    def anchor_size(self) -> int:
        """Entries below this index are anchored outside the pack: by a trusted signature on
        data/checkpoint, or by a checkpoint the user holds that the log is shown to extend."""
        if self.pack_trusted and self.checkpoint is not None:
            return self.checkpoint.size
        return max(self.receipt_size or 0, self.client_size or 0)

    @property
    def cutoff(self) -> int | None:
        """With a receipt, the answers are computed from the history up to its checkpoint."""
        return self.receipt_size if self.receipt is not None else None

    def has(self, path: str) -> bool:
        return path in self.archive.members

    def paths(self, kind: str) -> list[str]:
        found = [p for p in self.archive.members if fmt.kind_of(p) == kind]
        return sorted(found, key=lambda p: (len(p), p))

    def ordered(self) -> list[Entry]:
        return [self.entries[i] for i in sorted(self.entries)]

    def last_entry(self) -> Entry | None:
        return self.entries[max(self.entries)] if self.entries else None

    def add(self, name: str, summary: str, problems: list[str]) -> Check:
        check = Check(name, not problems, summary, problems)
        self.checks.append(check)
        return check
