"""The Merkle log in the database: leaves, nodes, proofs, checkpoints, keys, redaction."""

import json
import os
import random

import pytest
from django.db import connection, transaction

from offboard.core.errors import Conflict, PermissionDenied
from offboard.ledger import merkle, services, store
from offboard.ledger.models import Checkpoint, LedgerEntry, LedgerNode, LogHead, SigningKey
from offboard.ledger.note import Checkpoint as CheckpointBody
from offboard.ledger.note import Verifier, open_note
from offboard.ledger.recorder import record_event
from offboard.ledger.verify import verify_log
from tests.factories import close_with_approvals, settle_everything


def tree_of(org):
    return merkle.MerkleTree(
        merkle.leaf_hash(bytes(b))
        for b in LedgerEntry.objects.filter(org=org)
        .order_by("index")
        .values_list("body", flat=True)
    )


def test_each_event_is_the_next_leaf_with_its_canonical_body(case, alice):
    entries = list(LedgerEntry.objects.filter(org=alice.org).order_by("index"))
    assert [e.index for e in entries] == list(range(len(entries)))
    opened = entries[-1]
    body = json.loads(bytes(opened.body))
    assert set(body) == {
        *("v", "org", "case", "seq", "prev", "type", "actor", "at", "data", "files", "nonce")
    }
    assert (body["org"], body["case"], body["type"]) == ("acme", case.ref, "case.opened")
    assert (body["v"], body["seq"], body["prev"]) == (2, 1, None)  # the case's first event
    assert body["actor"]["username"] == "alice"
    assert bytes(opened.leaf_hash) == merkle.leaf_hash(bytes(opened.body))
    # canonical: re-serialising with sorted keys and no spaces gives the same bytes
    assert json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode() == bytes(opened.body)
    assert LogHead.objects.get(org=alice.org).size == len(entries)


def test_only_complete_subtrees_are_stored_and_match_the_tree(case, cast):
    settle_everything(case, cast)
    org = case.org
    n = LedgerEntry.objects.filter(org=org).count()
    assert n >= 32
    stored = LedgerNode.objects.filter(org=org).values_list("level", "index", "hash")
    assert (
        len(stored)
        == merkle.stored_node_count(n, store.STORED_FROM_LEVEL)
        == sum(n >> level for level in range(4, n.bit_length()))
    )
    assert min(level for level, _, _ in stored) == store.STORED_FROM_LEVEL == 4
    tree = tree_of(org)
    for level, index, h in stored:
        assert bytes(h) == tree.node(level, index)
    assert store.root(org, n) == tree.root()


def test_proofs_from_the_store_equal_the_reference_and_verify(case, cast):
    settle_everything(case, cast)
    org = case.org
    tree = tree_of(org)
    n = tree.size
    rng = random.Random(7)
    for _ in range(25):
        size = rng.randint(1, n)
        index = rng.randrange(size)
        proof = store.inclusion_proof(org, index, size)
        assert proof == tree.inclusion_proof(index, size)
        leaf = tree.node(0, index)
        assert merkle.verify_inclusion(leaf, index, size, proof, tree.root(size))
        old = rng.randint(1, size)
        cons = store.consistency_proof(org, old, size)
        assert merkle.verify_consistency(old, size, tree.root(old), tree.root(size), cons)


def test_proofs_outside_the_log_are_refused(case):
    n = store.size(case.org)
    with pytest.raises(store.ProofError):
        store.inclusion_proof(case.org, 0, n + 1)
    with pytest.raises(store.ProofError):
        store.inclusion_proof(case.org, n, n)
    with pytest.raises(store.ProofError):
        store.consistency_proof(case.org, n, n - 1)


def test_logs_of_two_organizations_are_separate(case, mallory):
    with transaction.atomic():
        record_event(actor=mallory, type="test.event", data={"x": 1})
    assert list(LedgerEntry.objects.filter(org=mallory.org).values_list("index", flat=True)) == [0]
    assert verify_log(case.org).ok and verify_log(mallory.org).ok


def test_raw_sql_cannot_update_or_delete_ledger_rows(case, cast):
    settle_everything(case, cast)  # enough events for stored nodes
    assert LedgerNode.objects.filter(org=case.org).exists()
    with (
        pytest.raises(Exception, match="append-only"),
        transaction.atomic(),
        connection.cursor() as c,
    ):
        c.execute("UPDATE ledger_entry SET type = 'case.forged'")
    with (
        pytest.raises(Exception, match="append-only"),
        transaction.atomic(),
        connection.cursor() as c,
    ):
        c.execute("DELETE FROM ledger_node")
    with (
        pytest.raises(Exception, match="append-only"),
        transaction.atomic(),
        connection.cursor() as c,
    ):
        c.execute("DELETE FROM ledger_entry")
    assert LedgerEntry.objects.filter(type="case.forged").count() == 0


def test_the_model_refuses_changes_too(case):
    entry = LedgerEntry.objects.filter(case=case).first()
    entry.type = "case.forged"
    with pytest.raises(Conflict):
        entry.save()
    with pytest.raises(Conflict):
        entry.delete()


def test_closing_issues_a_signed_checkpoint_covering_the_closure(case, cast):
    case = close_with_approvals(settle_everything(case, cast), cast)
    cp = Checkpoint.objects.get(org=case.org, reason="case_closed", case=case)
    closed = LedgerEntry.objects.get(case=case, type="case.closed")
    assert cp.size == closed.index + 1
    key = SigningKey.objects.get(org=case.org)
    note = open_note(cp.signed_note, [Verifier.from_verifier_key(key.verifier_key)])
    body = CheckpointBody.parse(note.text)
    assert body.origin == "offboard.localhost/offboard/acme"
    assert body.root == tree_of(case.org).root(cp.size)


def test_the_signing_key_file_is_private(org, settings):
    key = SigningKey.objects.get(org=org)
    assert oct(os.stat(key.private_key_path).st_mode & 0o777) == "0o600"
    assert str(key.private_key_path).startswith(str(settings.OFFBOARD_KEY_DIR))
    assert key.verifier_key.startswith("offboard.localhost/offboard/acme+")


def test_rotation_keeps_old_checkpoints_valid(case, cast):
    alice = cast["alice"]
    with transaction.atomic():
        first = services.issue_checkpoint(actor=alice)
    old_key = SigningKey.objects.get(org=case.org)
    new_key = services.rotate_signing_key(actor=alice)
    old_key.refresh_from_db()
    assert old_key.retired_at is not None and new_key.retired_at is None
    latest = Checkpoint.objects.filter(org=case.org).latest("id")
    assert latest.key == new_key and latest.reason == "key_rotated"
    assert first.key == old_key
    report = verify_log(case.org)
    assert report.ok, report.problems
    assert report.checkpoints == 2
    with pytest.raises(PermissionDenied):
        services.rotate_signing_key(actor=cast["bob"])


def test_redaction_erases_the_body_and_every_proof_still_verifies(case, cast):
    alice = cast["alice"]
    settle_everything(case, cast)
    with transaction.atomic():
        before = services.issue_checkpoint(actor=alice)
    target = LedgerEntry.objects.get(case=case, type="case.opened")
    leaf = bytes(target.leaf_hash)
    services.redact_event(
        actor=alice, index=target.index, reason="GDPR Art. 17 request of 2026-11-20"
    )
    target = LedgerEntry.objects.get(pk=target.pk)
    assert target.redacted and bytes(target.body) == b"" and bytes(target.leaf_hash) == leaf
    assert target.event["redacted"] is True
    marker = LedgerEntry.objects.filter(org=case.org).latest("index")
    assert marker.type == "ledger.event_redacted" and marker.data["index"] == target.index
    assert marker.data["leaf_hash"] == leaf.hex()
    n = store.size(case.org)
    proof = store.inclusion_proof(case.org, target.index, n)
    assert merkle.verify_inclusion(leaf, target.index, n, proof, store.root(case.org, n))
    report = verify_log(case.org)
    assert report.ok, report.problems
    assert report.redacted == 1 and report.checkpoints == 1 and before.size < n
    with pytest.raises(Conflict):
        services.redact_event(actor=alice, index=target.index, reason="again")
    with pytest.raises(PermissionDenied):
        services.redact_event(actor=cast["bob"], index=0, reason="no")
