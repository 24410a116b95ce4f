"""The Merkle log on the database: append a leaf, read nodes, build proofs.

Only complete subtrees are stored (2n − popcount(n) rows for n leaves), so any proof or
root is one indexed read of at most 2·log₂n nodes. Appends to one organization's log are
serialized by a row lock on its `LogHead` (PostgreSQL) or by SQLite's IMMEDIATE write
transactions, so indices stay dense and unique.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q

from offboard.ledger import merkle
from offboard.ledger.models import LedgerEntry, LedgerNode, LogHead

Node = tuple[int, int]


class ProofError(ValueError):
    """A proof was asked for sizes or indices the log does not have."""


def lock_head(org: Any) -> LogHead:
    """The log head of `org`, locked for the rest of the transaction."""
    head = LogHead.objects.select_for_update().filter(org=org).first()
    if head is None:
        LogHead.objects.get_or_create(org=org)
        head = LogHead.objects.select_for_update().get(org=org)
    return head


def size(org: Any) -> int:
    head = LogHead.objects.filter(org=org).first()
    return head.size if head else 0


def fetch_nodes(org: Any, nodes: Iterable[Node]) -> dict[Node, bytes]:
    """The hashes of the given complete subtrees, in one query."""
    wanted = set(nodes)
    if not wanted:
        return {}
    by_level: dict[int, list[int]] = {}
    for level, index in wanted:
        by_level.setdefault(level, []).append(index)
    condition = Q()
    for level, indices in by_level.items():
        condition |= Q(level=level, index__in=indices)
    rows = (
        LedgerNode.objects.filter(org=org).filter(condition).values_list("level", "index", "hash")
    )
    found = {(level, index): bytes(h) for level, index, h in rows}
    missing = wanted - set(found)
    if missing:
        raise ProofError(f"the log is missing nodes {sorted(missing)[:5]}")
    return found


def append(*, org: Any, body: bytes, meta: dict[str, Any]) -> LedgerEntry:
    """Append one leaf and the subtrees it completes. Must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("append must run inside the action's transaction")
    head = lock_head(org)
    index = head.size
    leaf = merkle.leaf_hash(body)
    completed = merkle.nodes_completed_by_append(index)  # level 0 first
    # Each completed node at level k > 0 is (left sibling at k−1, the node just completed).
    left_siblings = [(level - 1, 2 * node_index) for level, node_index in completed[1:]]
    known = fetch_nodes(org, left_siblings)
    hashes = {completed[0]: leaf}
    previous = leaf
    for (level, node_index), left in zip(completed[1:], left_siblings, strict=True):
        previous = merkle.node_hash(known[left], previous)
        hashes[(level, node_index)] = previous
    entry = LedgerEntry.objects.create(org=org, index=index, body=body, leaf_hash=leaf, **meta)
    LedgerNode.objects.bulk_create(
        [LedgerNode(org=org, level=lv, index=ix, hash=h) for (lv, ix), h in hashes.items()]
    )
    LogHead.objects.filter(pk=head.pk).update(size=index + 1)
    return entry


def _getter(org: Any, plan: Sequence[Node]) -> Any:
    found = fetch_nodes(org, plan)
    return lambda level, index: found[(level, index)]


def root(org: Any, tree_size: int) -> bytes:
    if tree_size == 0:
        return merkle.empty_root()
    return merkle.root_from_nodes(tree_size, _getter(org, merkle.root_nodes(tree_size)))


def _check(tree_size: int, log_size: int) -> None:
    if not 0 < tree_size <= log_size:
        raise ProofError(f"tree size {tree_size} is outside the log (1..{log_size})")


def inclusion_proof(org: Any, index: int, tree_size: int) -> list[bytes]:
    _check(tree_size, size(org))
    if not 0 <= index < tree_size:
        raise ProofError(f"index {index} is outside a tree of size {tree_size}")
    plan = merkle.inclusion_plan(index, tree_size)
    return merkle.inclusion_proof(index, tree_size, _getter(org, plan))


def consistency_proof(org: Any, old: int, new: int) -> list[bytes]:
    _check(new, size(org))
    if not 0 <= old <= new:
        raise ProofError(f"old size {old} must be between 0 and the new size {new}")
    plan = merkle.consistency_plan(old, new)
    return merkle.consistency_proof(old, new, _getter(org, plan))
