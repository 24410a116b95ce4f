"""The Merkle log on the database: append a leaf, read nodes, build proofs.

Entries carry their leaf hash; `ledger_node` stores the complete subtrees at level
`STORED_FROM_LEVEL` (4) and above only — one row per 16 leaves, about n/8 rows for n
leaves. A node below that level spans at most 8 leaves and is recomputed from the leaf
hashes of its aligned 16-leaf block, read in the same query as the stored nodes, so a proof
or a root is still one indexed read (at most 2·log₂n node rows and two 16-leaf blocks).
This is the idea of C2SP tlog-tiles' strata; decision 0005 has the figures.

On SQLite an append is two statements — claim the next index (`UPDATE … RETURNING`;
SQLite's IMMEDIATE transactions serialize writers) and insert the entry — plus, once every
16 appends, a read of the block and an insert of the nodes it completes. On PostgreSQL the
same runs server-side in `ledger_append` (sqlfunctions.py): one round trip, the UPDATE
row-locking the log head. Hot paths use plain SQL: the ORM cost several times the
statements themselves.
"""

from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction

from offboard.ledger import merkle
from offboard.ledger.models import LedgerEntry, LogHead

Node = tuple[int, int]


class ProofError(ValueError):
    """A proof was asked for sizes or indices the log does not have."""


def _org_id(org: Any) -> int:
    return int(org.pk if hasattr(org, "pk") else org)


def lock_head(org: Any) -> LogHead:
    """The log head of `org`, locked for the rest of the transaction."""
    head = LogHead.objects.select_for_update().filter(org=org).first()
    if head is None:
        LogHead.objects.get_or_create(org=org)
        head = LogHead.objects.select_for_update().get(org=org)
    return head


def size(org: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT size FROM ledger_loghead WHERE org_id = %s", [_org_id(org)])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


STORED_FROM_LEVEL = 4
BLOCK = 1 << STORED_FROM_LEVEL


def _blocks_for(low: list[Node]) -> list[int]:
    """The aligned leaf blocks the given low (unstored) nodes are computed from."""
    return sorted({(index << level) >> STORED_FROM_LEVEL for level, index in low})


def fetch_nodes(org: Any, nodes: Iterable[Node]) -> dict[Node, bytes]:
    """The hashes of the given complete subtrees, in one query: index point lookups for
    stored nodes, one range read of leaf hashes per 16-leaf block for the others."""
    wanted = sorted(set(nodes))
    if not wanted:
        return {}
    org_id = _org_id(org)
    stored = [n for n in wanted if n[0] >= STORED_FROM_LEVEL]
    low = [n for n in wanted if n[0] < STORED_FROM_LEVEL]
    parts: list[str] = []
    params: list[Any] = []
    if stored and connection.vendor == "postgresql":
        # One join against two arrays: planned in a fraction of the time 20 OR terms take
        # (planning was most of a proof's cost), each row one probe of the unique index.
        parts.append(
            'SELECT n.level, n."index", n.hash FROM unnest(%s::int[], %s::bigint[]) AS w(lv, ix) '
            'JOIN ledger_node n ON n.org_id = %s AND n.level = w.lv AND n."index" = w.ix'
        )
        params += [[lv for lv, _ in stored], [ix for _, ix in stored], org_id]
    elif stored:
        # org_id inside every term: each is then one probe of the (org, level, index) index,
        # whatever the planner knows about the table.
        terms = " OR ".join(['(org_id = %s AND level = %s AND "index" = %s)'] * len(stored))
        parts.append(f'SELECT level, "index", hash FROM ledger_node WHERE {terms}')  # noqa: S608 - only placeholders
        for level, index in stored:
            params += [org_id, level, index]
    for block in _blocks_for(low):
        parts.append(
            'SELECT 0, "index", leaf_hash FROM ledger_entry '
            'WHERE org_id = %s AND "index" >= %s AND "index" < %s'
        )
        params += [org_id, block * BLOCK, (block + 1) * BLOCK]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        found = {(int(lv), int(ix)): bytes(h) for lv, ix, h in cursor.fetchall()}
    for level, index in low:
        if level == 0 or (level, index) in found:
            continue
        leaves = [found.get((0, i)) for i in range(index << level, (index + 1) << level)]
        if all(leaves):
            found[(level, index)] = merkle.root_from_leaf_hashes(leaves)  # type: ignore[arg-type]
    missing = [n for n in wanted if n not in found]
    if missing:
        raise ProofError(f"the log is missing nodes {missing[:5]}")
    return found


def _claim_index(org_id: int) -> int:
    """The next index of the log (SQLite path; the IMMEDIATE transaction holds the lock)."""
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(
            "UPDATE ledger_loghead SET size = size + 1 WHERE org_id = ? RETURNING size", [org_id]
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:  # an organization created before logs existed: start its log
        LogHead.objects.get_or_create(org_id=org_id)
        return _claim_index(org_id)
    return int(row[0]) - 1


def case_head(org: Any, case_id: int) -> tuple[int, bytes | None]:
    """(number of events, leaf hash of the last one) of a case's chain, read under the log
    head's lock so that no other append can come between this read and the caller's append.
    Must run inside the caller's transaction (SQLite: its IMMEDIATE transaction holds the
    write lock already)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("case_head must run inside the action's transaction")
    org_id = _org_id(org)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT head_seq, head_leaf, head_count FROM ledger_case_head(%s, %s)",
                [org_id, case_id],
            )
        else:
            cursor.execute(
                "SELECT case_seq, leaf_hash, CASE WHEN case_seq IS NULL THEN "
                "(SELECT count(*) FROM ledger_entry c WHERE c.case_id = %s) END "
                'FROM ledger_entry WHERE case_id = %s ORDER BY "index" DESC LIMIT 1',
                [case_id, case_id],
            )
        row = cursor.fetchone()
    if row is None:
        return 0, None
    seq, leaf, legacy_count = row
    # The last event predates chains (v1): the count of the case's events is its place.
    return int(seq if seq is not None else legacy_count), bytes(leaf)


def append(
    *, org: Any, body: bytes, meta: dict[str, Any], case_seq: int | None = None
) -> LedgerEntry:
    """Append one leaf and the subtrees it completes. Must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("append must run inside the action's transaction")
    org_id = _org_id(org)
    case_id = getattr(meta.get("case"), "pk", None)
    actor_id = getattr(meta.get("actor_user"), "pk", None)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT entry_id, entry_index, entry_leaf FROM "
                "ledger_append(%s, %s, %s, %s, %s, %s, %s)",
                [org_id, body, case_id, meta["type"], meta["at"], actor_id, case_seq],
            )
            entry_id, index, leaf = cursor.fetchone()
        leaf = bytes(leaf)
    else:
        entry_id, index, leaf = _append_in_python(org_id, body, case_id, actor_id, meta, case_seq)
    # The saved row, without the cost of a full model __init__ on the hot path (values in the
    # model's field order: from_db matches them to the concrete fields by position).
    return LedgerEntry.from_db(
        connection.alias,
        [
            "id",
            "org_id",
            "index",
            "body",
            "leaf_hash",
            "redacted",
            "case_id",
            "case_seq",
            "type",
            "at",
            "actor_user_id",
        ],
        [
            entry_id,
            org_id,
            index,
            body,
            leaf,
            False,
            case_id,
            case_seq,
            meta["type"],
            meta["at"],
            actor_id,
        ],
    )


def _append_in_python(
    org_id: int,
    body: bytes,
    case_id: int | None,
    actor_id: int | None,
    meta: dict[str, Any],
    case_seq: int | None,
) -> tuple[int, int, bytes]:
    """The append as 2 statements, 4 once every 16 appends (SQLite; PostgreSQL runs `ledger_append` server-side)."""
    index = _claim_index(org_id)
    leaf = merkle.leaf_hash(body)
    completed = merkle.nodes_completed_by_append(index)  # level 0 first
    rows: list[Any] = []
    if len(completed) > STORED_FROM_LEVEL:  # once every 16 appends: a stored node completes
        # Each completed node at level k > 0 is (left sibling at k−1, the node just completed);
        # siblings below the stored levels come from the leaf hashes of this block.
        left_siblings = [(level - 1, 2 * node_index) for level, node_index in completed[1:]]
        known = fetch_nodes(org_id, left_siblings)
        previous = leaf
        for (level, node_index), left in zip(completed[1:], left_siblings, strict=True):
            previous = merkle.node_hash(known[left], previous)
            if level >= STORED_FROM_LEVEL:
                rows += [org_id, level, node_index, previous]
    at = connection.ops.adapt_datetimefield_value(meta["at"])
    # The sqlite3 cursor itself: this path is SQLite-only, and Django's wrapper (placeholder
    # rewriting, debug hooks) cost about a fifth of an append.
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(
            'INSERT INTO ledger_entry (org_id, "index", body, leaf_hash, redacted, case_id, type, '
            "at, actor_user_id, case_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [org_id, index, body, leaf, False, case_id, meta["type"], at, actor_id, case_seq],
        )
        entry_id = cursor.lastrowid
        if rows:
            placeholders = ", ".join(["(?, ?, ?, ?)"] * (len(rows) // 4))
            cursor.execute(
                f'INSERT INTO ledger_node (org_id, level, "index", hash) VALUES {placeholders}',  # noqa: S608
                rows,
            )
    finally:
        cursor.close()
    return entry_id, index, leaf


def _getter(org: Any, plan: list[Node]) -> Any:
    found = fetch_nodes(org, plan)
    return lambda level, index: found[(level, index)]


def root(org: Any, tree_size: int) -> bytes:
    if tree_size == 0:
        return merkle.empty_root()
    return merkle.root_from_nodes(tree_size, _getter(org, merkle.root_nodes(tree_size)))


def _check(tree_size: int, log_size: int) -> None:
    if not 0 < tree_size <= log_size:
        raise ProofError(f"tree size {tree_size} is outside the log (1..{log_size})")


def _reaches_end(plan: list[Node], tree_size: int) -> bool:
    """Whether some planned node covers leaf tree_size − 1: then fetching it proves the log
    is that long, and the separate size query can be skipped."""
    last = tree_size - 1
    return any(index << level <= last < (index + 1) << level for level, index in plan)


def inclusion_proof(org: Any, index: int, tree_size: int) -> list[bytes]:
    if tree_size < 1:
        raise ProofError(f"tree size {tree_size} is outside the log")
    if not 0 <= index < tree_size:
        raise ProofError(f"index {index} is outside a tree of size {tree_size}")
    plan = merkle.inclusion_plan(index, tree_size)
    if not _reaches_end(plan, tree_size):
        _check(tree_size, size(org))
    try:
        return merkle.inclusion_proof(index, tree_size, _getter(org, plan))
    except ProofError:
        _check(tree_size, size(org))  # say which bound was crossed, if one was
        raise


def consistency_proof(org: Any, old: int, new: int) -> list[bytes]:
    _check(new, size(org))
    if not 0 <= old <= new:
        raise ProofError(f"old size {old} must be between 0 and the new size {new}")
    plan = merkle.consistency_plan(old, new)
    return merkle.consistency_proof(old, new, _getter(org, plan))
