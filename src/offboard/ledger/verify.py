"""`verify_log`: recompute an organization's whole log from its stored entries and check
everything that claims to describe it — nodes, log head, signed checkpoints (and their
consistency with each other), timestamp tokens, and the evidence files events refer to.

It reads the database but trusts none of it: every hash is recomputed from entry bodies.
"""

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections

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
from offboard.ledger.store import STORED_FROM_LEVEL

CHUNK = 5000
MIN_PART = 4096  # entries per forked reader's part (a power of two)
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


# A forked reader's own connection (see `_reader_init`); None in the parent process.
_READER: Any = None


def _reader_init() -> None:
    """Pool initializer: every forked reader opens a connection of its own.

    The connection objects a child inherits hold the parent's socket. `_parallel` closes the
    parent's connections before forking, but `close_all` only sees the connections of the
    current thread (or, while an event loop runs in it, the current context), so an open one
    can survive into the child; two processes talking over one socket then wait for each
    other's replies forever. So a reader never uses what it inherited, and never lets it be
    garbage-collected either, which would end the parent's session (readers leave through
    `os._exit`)."""
    global _READER
    inherited = connections[DEFAULT_DB_ALIAS]
    _READER = type(inherited)(dict(inherited.settings_dict), DEFAULT_DB_ALIAS)


def _chunks(sql: str, params: list[Any], start: int, stop: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of `sql` (with `"index" >= %s AND "index" < %s` last) a chunk at a time: bounded
    memory on both databases, each chunk one range scan of a unique index."""
    db = _READER if _READER is not None else connection
    db.ensure_connection()
    if db.vendor == "postgresql":
        import psycopg

        # Binary results, server-side binding: bytea arrives as bytes, not hex text to decode.
        with psycopg.Cursor(db.connection) as pg:
            for low in range(start, stop, CHUNK):
                pg.execute(sql, [*params, low, min(low + CHUNK, stop)], binary=True)
                yield pg.fetchall()
        return
    with db.cursor() as cursor:
        for low in range(start, stop, CHUNK):
            cursor.execute(sql, [*params, low, min(low + CHUNK, stop)])
            yield cursor.fetchall()


def _as_bytes(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    return value.encode() if isinstance(value, str) else bytes(value)


@dataclass
class _EntriesPart:
    """What one reader found in entries [start, stop)."""

    start: int
    count: int = 0
    leaves: bytes = b""
    redacted: int = 0
    files: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    gap: bool = False


def _check_row(
    part: _EntriesPart, index: int, body: bytes, stored_leaf: bytes, redacted: bool
) -> None:
    """One entry, the slow and exact way: what the fast path falls back to on any doubt."""
    if redacted:
        part.redacted += 1
        if body:
            part.problems.append(f"entry #{index}: marked redacted but still has a body")
        return
    if merkle.leaf_hash(body) != stored_leaf:
        part.problems.append(f"entry #{index}: body does not match its stored leaf hash")
    _note_files(part, index, body)


def _note_files(part: _EntriesPart, index: int, body: bytes) -> None:
    # Canonical JSON writes an empty list as exactly this; parse only bodies with files.
    if b'"files":[]' not in body:
        try:
            part.files.update(json.loads(body).get("files", []))
        except (ValueError, AttributeError):
            part.problems.append(f"entry #{index}: body is not a JSON event")


def _entries_part(
    org_id: int,
    start: int,
    stop: int,
    progress: Progress | None = None,
    total: int = 0,
) -> _EntriesPart:
    """Read entries [start, stop) a chunk at a time and recompute their leaf hashes.

    The common chunk (dense indices, nothing redacted) is checked in bulk: every leaf hash
    recomputed and the concatenation compared with the stored ones at once; any mismatch,
    gap or redaction sends the chunk through `_check_row` to name the entry.
    """
    sql = (
        'SELECT "index", body, leaf_hash, redacted FROM ledger_entry '
        'WHERE org_id = %s AND "index" >= %s AND "index" < %s ORDER BY "index"'
    )
    part = _EntriesPart(start=start)
    leaves = bytearray()
    expected = start
    sha256 = hashlib.sha256
    for rows in _chunks(sql, [org_id], start, stop):
        if not rows:
            break
        count = len(rows)
        dense = rows[0][0] == expected and rows[-1][0] == expected + count - 1
        if dense and not any(row[3] for row in rows):
            try:  # bytes from both databases; anything else (a tampered TEXT cell) goes slow
                stored = b"".join([row[2] for row in rows])
                computed = b"".join([sha256(b"\x00" + row[1]).digest() for row in rows])
            except TypeError:
                stored, computed = b"", b"-"
            if computed == stored:
                for index, body, _, _ in [r for r in rows if b'"files":[]' not in r[1]]:
                    _note_files(part, index, body)
                leaves += stored
                expected += count
                if progress:
                    progress("entries", expected, total)
                continue
        for index, raw_body, raw_leaf, redacted in rows:
            body, stored_leaf = _as_bytes(raw_body), _as_bytes(raw_leaf)
            if index != expected:
                part.problems.append(f"entry #{expected}: missing (next stored index is {index})")
                part.gap = True
                break
            _check_row(part, index, body, stored_leaf, redacted)
            leaves += stored_leaf if redacted else merkle.leaf_hash(body)
            expected += 1
        if part.gap:
            break
        if progress:
            progress("entries", expected, total)
    part.count = expected - start
    if not part.gap and expected < stop:
        part.problems.append(f"entry #{expected}: missing (the log head counts {stop})")
        part.gap = True
    part.leaves = bytes(leaves)
    return part


def _merge_entries(
    parts: list[tuple[_EntriesPart, merkle.MerkleTree]], report: VerifyReport, files: set[str]
) -> merkle.MerkleTree:
    """Fold the parts' findings in order, up to the first gap, and join their trees."""
    trees = []
    for part, tree in sorted(parts, key=lambda p: p[0].start):
        report.problems.extend(part.problems)
        report.redacted += part.redacted
        files.update(part.files)
        trees.append(tree)
        report.entries += part.count
        if part.gap:
            break
    return merkle.MerkleTree.join(trees)


def _entries_subtree(org_id: int, start: int, stop: int) -> tuple[_EntriesPart, merkle.MerkleTree]:
    """A forked reader's share: its entries checked and their subtree hashed, in the child."""
    part = _entries_part(org_id, start, stop)
    tree = merkle.MerkleTree()
    tree.extend_concatenated(part.leaves)
    part.leaves = b""  # the tree holds them; send them back once
    return part, tree


# The tree a forked node checker compares against: inherited, not copied through a pipe.
_TREE: merkle.MerkleTree | None = None


def _nodes_part(
    org_id: int,
    ranges: list[tuple[int, int, int]],
    progress: Progress | None = None,
    expected_count: int = 0,
) -> tuple[int, list[str]]:
    """Compare stored nodes (level, [lo, hi)) for each range with the recomputed tree."""
    tree = _TREE
    assert tree is not None
    sql = (
        'SELECT "index", hash FROM ledger_node WHERE org_id = %s AND level = %s '
        'AND "index" >= %s AND "index" < %s ORDER BY "index"'
    )
    problems: list[str] = []
    checked = 0
    for level, lo, hi in ranges:
        for rows in _chunks(sql, [org_id, level], lo, hi):
            if not rows:
                break
            first = rows[0][0]
            indices = [r[0] for r in rows]
            stored = b"".join(bytes(r[1]) for r in rows)
            if indices != list(range(first, first + len(rows))) or stored != tree.level_hashes(
                level, first, first + len(rows)
            ):
                for ix, h in rows:
                    if ix >= hi or bytes(h) != tree.node(level, ix):
                        span = f"entries #{ix << level}..#{((ix + 1) << level) - 1}"
                        problems.append(
                            f"node ({level}, {ix}) covering {span}: stored hash differs from the "
                            "recomputed one"
                        )
                        break
            checked += len(rows)
            if progress:
                progress("nodes", checked, expected_count)
    return checked, problems


def _node_ranges(n: int, parts: int) -> list[list[tuple[int, int, int]]]:
    """Every stored level's complete nodes, each level split into `parts` contiguous ranges."""
    out: list[list[tuple[int, int, int]]] = [[] for _ in range(parts)]
    level = STORED_FROM_LEVEL
    while (n >> level) > 0:
        width = n >> level
        step = -(-width // parts)
        for i in range(parts):
            lo, hi = i * step, min((i + 1) * step, width)
            if lo < hi:
                out[i].append((level, lo, hi))
        level += 1
    return out


def _stored_count(n: int) -> int:
    return merkle.stored_node_count(n, STORED_FROM_LEVEL)


def _check_node_count(org: Any, report: VerifyReport, n: int, checked: int) -> None:
    expected_count = _stored_count(n)
    stored_count = LedgerNode.objects.filter(org=org).count()
    report.nodes = stored_count
    if stored_count != expected_count or checked != expected_count:
        report.problems.append(
            f"nodes: {stored_count} stored, {expected_count} expected for {n} entries"
        )


def _parallel(
    org: Any,
    total: int,
    workers: int,
    report: VerifyReport,
    files: set[str],
    progress: Progress | None,
) -> merkle.MerkleTree:
    """Read and hash the log with `workers` forked processes (each with its own database
    connection). The log is cut into parts of 2**k entries, a few per worker, so that each
    child hashes its whole subtree and the parent only joins them and hashes the top."""
    global _TREE
    ctx = multiprocessing.get_context("fork")
    width = max(MIN_PART, 1 << (-(-total // (workers * 4)) - 1).bit_length())
    spans = [(lo, min(lo + width, total)) for lo in range(0, total, width)]
    connections.close_all()  # children must not share the parent's socket
    parts = []
    with ctx.Pool(workers, initializer=_reader_init) as pool:
        for done in pool.imap(_entries_star, [(org.pk, lo, hi) for lo, hi in spans]):
            parts.append(done)
            if progress:
                progress("entries", sum(p.count for p, _ in parts), total)
    tree = _merge_entries(parts, report, files)
    _TREE = tree
    try:
        n = tree.size
        connections.close_all()
        with ctx.Pool(workers, initializer=_reader_init) as pool:
            results = pool.starmap(_nodes_part, [(org.pk, r) for r in _node_ranges(n, workers)])
    finally:
        _TREE = None
    checked = 0
    for done_count, problems in results:
        checked += done_count
        report.problems.extend(problems)
    if progress:
        progress("nodes", checked, _stored_count(n))
    _check_node_count(org, report, n, checked)
    return tree


def _entries_star(args: tuple[int, int, int]) -> tuple[_EntriesPart, merkle.MerkleTree]:
    return _entries_subtree(*args)


def _serial(
    org: Any,
    total: int,
    report: VerifyReport,
    files: set[str],
    progress: Progress | None,
) -> merkle.MerkleTree:
    global _TREE
    last = (
        LedgerEntry.objects.filter(org=org)
        .order_by("-index")
        .values_list("index", flat=True)
        .first()
    )
    stop = max(total, (last + 1) if last is not None else 0)
    part = _entries_part(org.pk, 0, stop, progress, total)
    tree = merkle.MerkleTree()
    tree.extend_concatenated(part.leaves)
    tree = _merge_entries([(part, tree)], report, files)
    n = tree.size
    _TREE = tree
    try:
        checked, problems = _nodes_part(org.pk, _node_ranges(n, 1)[0], progress, _stored_count(n))
    finally:
        _TREE = None
    report.problems.extend(problems)
    _check_node_count(org, report, n, checked)
    return tree


def _can_fork(total: int, parallel_min: int) -> bool:
    """Worth it and possible: a big log, several cores, and a database other processes reach."""
    if total < parallel_min or (os.cpu_count() or 1) < 2:
        return False
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    if connection.in_atomic_block:
        return False  # the parent's snapshot would differ from the children's
    name = str(connection.settings_dict.get("NAME") or "")
    return not (connection.vendor == "sqlite" and (":memory:" in name or "mode=memory" in name))


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
    from offboard.evidence.storage import StorageUnavailable, StoredFileCorrupted, open_stored

    stored = {f.sha256: f for f in EvidenceFile.objects.filter(org=org, sha256__in=wanted)}
    for sha in sorted(wanted):
        report.files += 1
        evidence = stored.get(sha)
        if evidence is None:
            report.problems.append(f"file {sha}: referenced by an event but not recorded")
            continue
        try:  # the stream checks the bytes against `sha` as they come
            with open_stored(evidence.storage_name, sha256=sha) as f:
                while f.read(1024 * 1024):
                    pass
        except StoredFileCorrupted as exc:
            report.problems.append(
                f"file {sha} ({evidence.original_name}): stored bytes have another sha256 "
                f"({exc.problem})"
            )
        except StorageUnavailable as exc:
            report.problems.append(f"file {sha} ({evidence.original_name}): {exc.message}")
        except OSError as exc:
            report.problems.append(f"file {sha} ({evidence.original_name}): cannot be read: {exc}")


def verify_log(
    org: Any,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
    parallel_min: int = 100_000,
) -> VerifyReport:
    """Check one organization's log end to end; `report.problems` lists what is wrong, first first.

    Logs of `parallel_min` entries or more are read and hashed by one forked process per
    core (`workers`), when the database is reachable from other processes.
    """
    report = VerifyReport(org=org.slug)
    head = LogHead.objects.filter(org=org).first()
    total = head.size if head else 0
    files: set[str] = set()
    workers = workers or min(os.cpu_count() or 1, 2)
    if workers > 1 and _can_fork(total, parallel_min):
        tree = _parallel(org, total, workers, report, files, progress)
    else:
        tree = _serial(org, total, report, files, progress)
    if report.entries != total and not any("missing" in p for p in report.problems):
        report.problems.append(f"log head: says {total} entries, {report.entries} are stored")
    report.root = tree.root()
    _checkpoints(org, report, tree)
    _timestamps(org, report)
    _files(org, report, files)
    return report
