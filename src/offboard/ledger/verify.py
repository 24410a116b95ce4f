"""`verify_log`: recompute an organization's whole log from its stored entries and check
everything that claims to describe it — nodes, log head, signed checkpoints (and their
consistency with each other), timestamp tokens, and the evidence files events refer to.

It reads the database but trusts none of it: every hash is recomputed from entry bodies.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from offboard.ledger import merkle
from offboard.ledger.models import (
    Checkpoint,
    LedgerEntry,
    LedgerNode,
    LogHead,
    SigningKey,
    Timestamp,
)
from offboard.ledger.note import Checkpoint as CheckpointBody
from offboard.ledger.note import NoteError, Verifier, open_note

CHUNK = 5000
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class VerifyReport:
    org: str
    entries: int = 0
    nodes: int = 0
    checkpoints: int = 0
    timestamps: int = 0
    files: int = 0
    redacted: int = 0
    root: bytes = b""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "ok": self.ok,
            "entries": self.entries,
            "nodes": self.nodes,
            "checkpoints": self.checkpoints,
            "timestamps": self.timestamps,
            "files": self.files,
            "redacted": self.redacted,
            "root": self.root.hex(),
            "problems": self.problems,
        }


def _entries(
    org: Any,
    report: VerifyReport,
    tree: merkle.MerkleTree,
    files: set[str],
    total: int,
    progress: Progress | None,
) -> None:
    rows = (
        LedgerEntry.objects.filter(org=org)
        .order_by("index")
        .values_list("index", "body", "leaf_hash", "redacted")
        .iterator(chunk_size=CHUNK)
    )
    expected = 0
    batch: list[bytes] = []
    sha256 = hashlib.sha256
    for index, body, stored_leaf, redacted in rows:
        if index != expected:
            what = "missing" if index > expected else "duplicated"
            report.problems.append(f"entry #{expected}: {what} (next stored index is {index})")
            return
        body = bytes(body)
        if redacted:
            report.redacted += 1
            if body:
                report.problems.append(f"entry #{index}: marked redacted but still has a body")
            leaf = bytes(stored_leaf)
        else:
            leaf = sha256(b"\x00" + body).digest()
            if leaf != bytes(stored_leaf):
                report.problems.append(f"entry #{index}: body does not match its stored leaf hash")
            try:
                files.update(json.loads(body).get("files", []))
            except (ValueError, AttributeError):
                report.problems.append(f"entry #{index}: body is not a JSON event")
        batch.append(leaf)
        expected += 1
        if len(batch) == CHUNK:
            tree.extend(batch)
            batch.clear()
            if progress:
                progress("entries", expected, total)
    tree.extend(batch)
    report.entries = expected
    if progress:
        progress("entries", expected, total)


def _nodes(
    org: Any, report: VerifyReport, tree: merkle.MerkleTree, progress: Progress | None
) -> None:
    n = tree.size
    expected_count = 2 * n - bin(n).count("1")
    rows = (
        LedgerNode.objects.filter(org=org)
        .order_by("level", "index")
        .values_list("level", "index", "hash")
        .iterator(chunk_size=CHUNK)
    )
    seen = 0
    for level, index, stored in rows:
        seen += 1
        try:
            good = tree.node(level, index)
        except ValueError:
            report.problems.append(f"node ({level}, {index}): not a complete subtree of the log")
            continue
        if bytes(stored) != good:
            first = index << level
            report.problems.append(
                f"node ({level}, {index}) covering entries #{first}..#{first + (1 << level) - 1}: "
                "stored hash differs from the recomputed one"
            )
        if progress and seen % CHUNK == 0:
            progress("nodes", seen, expected_count)
    report.nodes = seen
    if seen != expected_count:
        report.problems.append(f"nodes: {seen} stored, {expected_count} expected for {n} entries")


def _checkpoints(org: Any, report: VerifyReport, tree: merkle.MerkleTree) -> list[Checkpoint]:
    keys = {k.pk: k for k in SigningKey.objects.filter(org=org)}
    good: list[Checkpoint] = []
    previous: tuple[int, bytes] | None = None
    for cp in Checkpoint.objects.filter(org=org).order_by("size", "id"):
        report.checkpoints += 1
        key = keys.get(cp.key_id)
        where = f"checkpoint {cp.pk} (size {cp.size})"
        if key is None:
            report.problems.append(f"{where}: signed by a key this organization does not have")
            continue
        if key.created_at > cp.created_at or (key.retired_at and key.retired_at < cp.created_at):
            report.problems.append(
                f"{where}: signed by key {key.key_id} outside its validity period"
            )
        try:
            note = open_note(cp.signed_note, [Verifier.from_verifier_key(key.verifier_key)])
            body = CheckpointBody.parse(note.text)
        except NoteError as exc:
            report.problems.append(f"{where}: signature or format does not verify: {exc}")
            continue
        if body.size != cp.size or body.root != bytes(cp.root):
            report.problems.append(f"{where}: the signed text disagrees with the stored size/root")
            continue
        if body.size > tree.size:
            report.problems.append(
                f"{where}: covers {body.size} entries but the log has {tree.size}"
            )
            continue
        if tree.root(body.size) != body.root:
            report.problems.append(
                f"{where}: its root is not the root of the first {body.size} entries"
            )
            continue
        if previous is not None:
            old_size, old_root = previous
            proof = tree.consistency_proof(old_size, body.size)
            if not merkle.verify_consistency(old_size, body.size, old_root, body.root, proof):
                report.problems.append(
                    f"{where}: not consistent with the checkpoint of size {old_size}"
                )
                continue
        previous = (body.size, body.root)
        good.append(cp)
    return good


def _timestamps(org: Any, report: VerifyReport) -> None:
    from offboard.ledger.timestamps import TimestampFailed, message_for, trust_roots, verify_token

    granted = Timestamp.objects.filter(org=org, status=Timestamp.Status.GRANTED).select_related(
        "checkpoint"
    )
    roots = None
    for ts in granted:
        report.timestamps += 1
        try:
            roots = roots if roots is not None else trust_roots()
            verify_token(bytes(ts.token or b""), message_for(ts.checkpoint), roots=roots)
        except TimestampFailed as exc:
            report.problems.append(
                f"timestamp {ts.pk} of checkpoint {ts.checkpoint_id} ({ts.tsa_url}): {exc}"
            )


def _files(org: Any, report: VerifyReport, wanted: set[str]) -> None:
    from offboard.evidence.models import EvidenceFile
    from offboard.evidence.storage import open_stored

    stored = {f.sha256: f for f in EvidenceFile.objects.filter(org=org, sha256__in=wanted)}
    for sha in sorted(wanted):
        report.files += 1
        evidence = stored.get(sha)
        if evidence is None:
            report.problems.append(f"file {sha}: referenced by an event but not recorded")
            continue
        digest = hashlib.sha256()
        try:
            with open_stored(evidence.storage_name) as f:
                while chunk := f.read(1024 * 1024):
                    digest.update(chunk)
        except OSError as exc:
            report.problems.append(f"file {sha} ({evidence.original_name}): cannot be read: {exc}")
            continue
        if digest.hexdigest() != sha:
            report.problems.append(
                f"file {sha} ({evidence.original_name}): stored bytes have another sha256"
            )


def verify_log(org: Any, *, progress: Progress | None = None) -> VerifyReport:
    """Check one organization's log end to end; `report.problems` lists what is wrong, first first."""
    report = VerifyReport(org=org.slug)
    head = LogHead.objects.filter(org=org).first()
    total = head.size if head else 0
    tree = merkle.MerkleTree()
    files: set[str] = set()
    _entries(org, report, tree, files, total, progress)
    if report.entries != total:
        report.problems.append(f"log head: says {total} entries, {report.entries} are stored")
    _nodes(org, report, tree, progress)
    report.root = tree.root()
    _checkpoints(org, report, tree)
    _timestamps(org, report)
    _files(org, report, files)
    return report
