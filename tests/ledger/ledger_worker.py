"""A separate OS process that writes to the ledger, for tests/ledger/test_concurrency.py.

Run as a script with DJANGO_SETTINGS_MODULE, DATABASE_URL, OFFBOARD_VAR_DIR and
OFFBOARD_KEY_DIR in the environment:

    ledger_worker.py setup  --org SLUG --user NAME
        create the organization and its admin (SQLite file tests: the test process cannot
        reach that database through its own connection)
    ledger_worker.py append --org SLUG [--count M] [--tag T] [--wait] [--case REF]
        append M events (0: until killed) through `record_event`, one per transaction, and
        print "ACK <index>" (flushed) right after each commit; with --wait, print "READY"
        and wait for a line on stdin first, so several workers start appending together;
        with --case, the events are events of that case (its chain grows)
    ledger_worker.py check  --org SLUG [--acked I,J,…]
        print `check_log` as JSON

`check_log` is also imported by the tests to check a log through the test's own connection.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable
from typing import Any


def admin_actor(org_slug: str) -> Any:
    """An Actor built from the organization's (first) admin membership."""
    from offboard.accounts.models import Membership
    from offboard.core.actor import Actor

    membership = (
        Membership.objects.select_related("user", "org")
        .filter(org__slug=org_slug, role="admin")
        .order_by("pk")
        .first()
    )
    if membership is None:
        raise SystemExit(f"no admin in organization {org_slug!r}")
    return Actor.from_membership(membership, auth_method="system")


def check_log(org: Any, acked: Iterable[int] = (), samples: int = 25, seed: int = 0) -> dict:
    """Check an organization's stored log against a recomputation from its entries' bodies.

    Returns {"size", "head", "entries", "nodes", "root", "problems"}; `problems` is empty
    when: the indices are 0..n−1; LogHead.size == n; every leaf hash is SHA-256(0x00‖body);
    exactly the 2n − popcount(n) complete subtrees are stored and each equals the recomputed
    one; `store.root` equals MerkleTree's root; inclusion proofs from `store.inclusion_proof`
    verify, for the whole tree and for smaller ones; every ACKed index is there with a body.
    """
    from offboard.ledger import merkle, store
    from offboard.ledger.models import LedgerEntry, LedgerNode, LogHead

    problems: list[str] = []
    head = LogHead.objects.filter(org=org).first()
    head_size = head.size if head else -1
    rows = list(
        LedgerEntry.objects.filter(org=org)
        .order_by("index")
        .values_list("index", "body", "leaf_hash", "redacted")
    )
    n = len(rows)
    indices = [r[0] for r in rows]
    if indices != list(range(n)):
        problems.append(
            f"indices are not dense 0..{n - 1}: first gap or repeat near {_gap(indices)}"
        )
    if head_size != n:
        problems.append(f"LogHead.size is {head_size} but there are {n} entries")
    leaves: list[bytes] = []
    for index, body, stored_leaf, redacted in rows:
        body, stored_leaf = _bytes(body), bytes(stored_leaf)
        if redacted:
            leaves.append(stored_leaf)
            continue
        if not body:
            problems.append(f"entry {index} has an empty body")
        leaf = merkle.leaf_hash(body)
        if leaf != stored_leaf:
            problems.append(f"entry {index}: leaf_hash is not SHA-256(0x00 || body)")
        leaves.append(leaf)
    by_index = {r[0]: _bytes(r[1]) for r in rows}
    for index in sorted(set(acked)):
        acked_body = by_index.get(index)
        if acked_body is None:
            problems.append(f"ACKed index {index} is missing")
        elif not json.loads(acked_body).get("type"):
            problems.append(f"ACKed index {index} has no event type in its body")

    problems += _chain_problems(org, leaves)
    tree = merkle.MerkleTree(leaves)
    stored = {
        (level, index): bytes(h)
        for level, index, h in LedgerNode.objects.filter(org=org).values_list(
            "level", "index", "hash"
        )
    }
    low = store.STORED_FROM_LEVEL
    expected_count = merkle.stored_node_count(n, low)
    if len(stored) != expected_count:
        problems.append(f"{len(stored)} nodes stored, expected {expected_count} from level {low}")
    for level in range(low, n.bit_length()):
        for index in range(n >> level):
            h = stored.get((level, index))
            if h is None:
                problems.append(f"node ({level}, {index}) is missing")
            elif h != tree.node(level, index):
                problems.append(f"node ({level}, {index}) differs from the recomputed one")
    for level, index in stored:
        if level >= n.bit_length() or index >= n >> level:
            problems.append(f"node ({level}, {index}) is not a complete subtree of size {n}")

    root = b""
    if n:
        root = store.root(org, n)
        if root != tree.root():
            problems.append("store.root differs from the recomputed root")
        rng = random.Random(seed)
        for _ in range(samples):
            tree_size = rng.choice([n, rng.randint(1, n)])
            index = rng.randrange(tree_size)
            proof = store.inclusion_proof(org, index, tree_size)
            if not merkle.verify_inclusion(
                leaves[index], index, tree_size, proof, tree.root(tree_size)
            ):
                problems.append(f"inclusion proof of {index} in a tree of {tree_size} fails")
    return {
        "size": n,
        "head": head_size,
        "entries": n,
        "nodes": len(stored),
        "root": root.hex(),
        "problems": problems[:20],
    }


def _chain_problems(org: Any, leaves: list[bytes]) -> list[str]:
    """Every case's events, in log order, numbered 1..n and each linked to the one before."""
    from offboard.ledger.models import LedgerEntry

    problems: list[str] = []
    last: dict[int, tuple[int, int]] = {}  # case id -> (seq, index) of its last event
    rows = (
        LedgerEntry.objects.filter(org=org, case__isnull=False)
        .order_by("index")
        .values_list("index", "case_id", "case_seq", "body", "redacted")
    )
    for index, case_id, case_seq, body, redacted in rows:
        seq, before = last.get(case_id, (0, -1))
        if case_seq != seq + 1:
            problems.append(f"entry {index}: case_seq {case_seq}, expected {seq + 1}")
        if not redacted:
            event = json.loads(_bytes(body))
            prev = leaves[before].hex() if before >= 0 else None
            if (event.get("seq"), event.get("prev")) != (seq + 1, prev):
                problems.append(f"entry {index}: not linked to its case's previous event")
        last[case_id] = (seq + 1, index)
    return problems


def _bytes(value: Any) -> bytes:
    # A raw-SQL redaction (body = '') leaves TEXT, not a BLOB, in SQLite.
    return value.encode() if isinstance(value, str) else bytes(value)


def _gap(indices: list[int]) -> int:
    for expected, index in enumerate(indices):
        if index != expected:
            return expected
    return len(indices)


def _setup(args: argparse.Namespace) -> None:
    from offboard.accounts.services import create_organization, create_user

    org = create_organization(slug=args.org, name=args.org.title())
    create_user(actor=None, org=org, username=args.user, role="admin")
    print(f"ORG {org.pk}", flush=True)


def _append(args: argparse.Namespace) -> None:
    from django.db import transaction

    from offboard.cases.models import OffboardingCase
    from offboard.ledger.recorder import record_event

    actor = admin_actor(args.org)
    case = OffboardingCase.objects.get(org=actor.org, ref=args.case) if args.case else None
    if args.wait:
        print("READY", flush=True)
        sys.stdin.readline()
    seq = 0
    while args.count == 0 or seq < args.count:
        with transaction.atomic():
            entry = record_event(
                actor=actor,
                type="test.appended",
                case=case,
                data={"worker": args.tag, "seq": seq},
            )
        # After the commit: whatever the test saw ACKed must survive any crash from here on.
        print(f"ACK {entry.index}", flush=True)
        seq += 1


def _check(args: argparse.Namespace) -> None:
    from offboard.accounts.models import Organization

    org = Organization.objects.get(slug=args.org)
    acked = [int(i) for i in args.acked.split(",") if i] if args.acked else []
    print(json.dumps(check_log(org, acked)), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "append", "check"])
    parser.add_argument("--org", required=True)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--tag", default="w")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--acked", default="")
    parser.add_argument("--case", default="")
    args = parser.parse_args(argv)

    import django

    django.setup()
    {"setup": _setup, "append": _append, "check": _check}[args.command](args)


if __name__ == "__main__":
    main()
