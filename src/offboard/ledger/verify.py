"""`verify_log`: recompute an organization's whole log from its stored entries and check
everything that claims to describe it — nodes, log head, signed checkpoints (and their
consistency with each other), timestamp tokens, and the evidence files events refer to.

It reads the database but trusts none of it: every hash is recomputed from entry bodies.
"""

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

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


def _chunks(sql: str, params: list[Any], start: int, stop: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of `sql` (with `"index" >= %s AND "index" < %s` last) a chunk at a time: bounded
    memory on both databases, each chunk one range scan of a unique index."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        import psycopg

        # Binary results, server-side binding: bytea arrives as bytes, not hex text to decode.
        with psycopg.Cursor(connection.connection) as pg:
            for low in range(start, stop, CHUNK):
                pg.execute(sql, [*params, low, min(low + CHUNK, stop)], binary=True)
                yield pg.fetchall()
        return
    with connection.cursor() as cursor:
        for low in range(start, stop, CHUNK):
            cursor.execute(sql, [*params, low, min(low + CHUNK, stop)])
            yield cursor.fetchall()


def _as_bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _entries(
    org: Any,
    report: VerifyReport,
    tree: merkle.MerkleTree,
    files: set[str],
    total: int,
    progress: Progress | None,
) -> None:
    sql = (
        'SELECT "index", body, leaf_hash, redacted FROM ledger_entry '
        'WHERE org_id = %s AND "index" >= %s AND "index" < %s ORDER BY "index"'
    )
    last = (
        LedgerEntry.objects.filter(org=org)
        .order_by("-index")
        .values_list("index", flat=True)
        .first()
    )
    stop = max(total, (last + 1) if last is not None else 0)
    expected = 0
    sha256 = hashlib.sha256
    for rows in _chunks(sql, [org.pk], 0, stop):
        batch: list[bytes] = []
        for index, body, stored_leaf, redacted in rows:
            if index != expected:
                report.problems.append(f"entry #{expected}: missing (next stored index is {index})")
                tree.extend(batch)
                report.entries = expected
                return
            body = _as_bytes(body)
            if redacted:
                report.redacted += 1
                if body:
                    report.problems.append(f"entry #{index}: marked redacted but still has a body")
                leaf = bytes(stored_leaf)
            else:
                leaf = sha256(b"\x00" + body).digest()
                if leaf != bytes(stored_leaf):
                    report.problems.append(
                        f"entry #{index}: body does not match its stored leaf hash"
                    )
                # Canonical JSON writes an empty list as exactly this; parse only bodies with files.
                if b'"files":[]' not in body:
                    try:
                        files.update(json.loads(body).get("files", []))
                    except (ValueError, AttributeError):
                        report.problems.append(f"entry #{index}: body is not a JSON event")
            batch.append(leaf)
            expected += 1
        tree.extend(batch)
        if progress:
            progress("entries", expected, total)
    report.entries = expected


def _nodes(
    org: Any, report: VerifyReport, tree: merkle.MerkleTree, progress: Progress | None
) -> None:
    n = tree.size
    expected_count = 2 * n - bin(n).count("1")
    sql = (
        'SELECT "index", hash FROM ledger_node WHERE org_id = %s AND level = %s '
        'AND "index" >= %s AND "index" < %s ORDER BY "index"'
    )
    checked = 0
    level = 0
    while (n >> level) > 0:
        width = n >> level  # complete nodes at this level
        for rows in _chunks(sql, [org.pk, level], 0, width):
            if not rows:
                break
            first = rows[0][0]
            indices = [r[0] for r in rows]
            stored = b"".join(bytes(r[1]) for r in rows)
            if indices != list(range(first, first + len(rows))) or stored != tree.level_hashes(
                level, first, first + len(rows)
            ):
                for ix, h in rows:
                    if ix >= width or bytes(h) != tree.node(level, ix):
                        span = f"entries #{ix << level}..#{((ix + 1) << level) - 1}"
                        report.problems.append(
                            f"node ({level}, {ix}) covering {span}: stored hash differs from the "
                            "recomputed one"
                        )
                        break
            checked += len(rows)
            if progress:
                progress("nodes", checked, expected_count)
        level += 1
    stored_count = LedgerNode.objects.filter(org=org).count()
    report.nodes = stored_count
    if stored_count != expected_count or checked != expected_count:
        report.problems.append(
            f"nodes: {stored_count} stored, {expected_count} expected for {n} entries"
        )


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
