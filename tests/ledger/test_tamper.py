"""Tampering behind the application's back is found by `offboard ledger verify`, every time."""

import pytest
from django.db import connection, transaction
from typer.testing import CliRunner

from offboard.cli import app
from offboard.evidence.models import EvidenceFile
from offboard.evidence.storage import local_path
from offboard.ledger import services, triggers
from offboard.ledger.models import Checkpoint, LedgerEntry
from tests.factories import settle_everything

runner = CliRunner()


@pytest.fixture
def ledger(case, cast):
    """A worked case with a signed checkpoint, evidence files and 100+ events."""
    settle_everything(case, cast)
    with transaction.atomic():
        services.issue_checkpoint(actor=cast["alice"])
    assert verify_cli().exit_code == 0
    return case.org


def verify_cli():
    return runner.invoke(app, ["ledger", "verify", "--org", "acme"])


def sql(statement, params=()):
    triggers.remove(connection)
    try:
        with connection.cursor() as c:
            c.execute(statement, params)
    finally:
        triggers.install(connection)


def test_an_untouched_ledger_verifies(ledger):
    result = verify_cli()
    assert result.exit_code == 0
    assert "acme: OK" in result.output


def test_an_edited_event_body_is_named(ledger):
    entry = LedgerEntry.objects.filter(org=ledger).order_by("index")[5]
    forged = bytes(entry.body).replace(b'"alice"', b'"mallory"')
    sql("UPDATE ledger_entry SET body = %s WHERE id = %s", [forged, entry.pk])
    result = verify_cli()
    assert result.exit_code == 1
    assert f"entry #{entry.index}: body does not match its stored leaf hash" in result.stderr


def test_an_edited_body_with_a_recomputed_leaf_hash_is_caught_by_the_nodes(ledger):
    import hashlib

    entry = LedgerEntry.objects.filter(org=ledger).order_by("index")[7]
    forged = bytes(entry.body).replace(b'"alice"', b'"mallory"')
    leaf = hashlib.sha256(b"\x00" + forged).digest()
    sql("UPDATE ledger_entry SET body = %s, leaf_hash = %s WHERE id = %s", [forged, leaf, entry.pk])
    result = verify_cli()
    assert result.exit_code == 1
    assert f"node (4, {entry.index >> 4})" in result.stderr


def test_a_deleted_node_is_named(ledger):
    sql('DELETE FROM ledger_node WHERE org_id = %s AND level = 4 AND "index" = 1', [ledger.pk])
    result = verify_cli()
    assert result.exit_code == 1
    assert "nodes:" in result.stderr and "expected" in result.stderr


def test_two_swapped_entries_are_named(ledger):
    a, b = LedgerEntry.objects.filter(org=ledger).order_by("index")[10:12]
    sql('UPDATE ledger_entry SET "index" = -1 WHERE id = %s', [a.pk])
    sql('UPDATE ledger_entry SET "index" = %s WHERE id = %s', [a.index, b.pk])
    sql('UPDATE ledger_entry SET "index" = %s WHERE id = %s', [b.index, a.pk])
    result = verify_cli()
    assert result.exit_code == 1
    # Leaves are not stored as nodes: the stored subtree over both names the range.
    block = a.index >> 4
    assert f"node (4, {block}) covering entries #{block * 16}..#{block * 16 + 15}" in result.stderr


def test_a_deleted_entry_is_named(ledger):
    entry = LedgerEntry.objects.filter(org=ledger).order_by("index")[20]
    sql("DELETE FROM ledger_entry WHERE id = %s", [entry.pk])
    result = verify_cli()
    assert result.exit_code == 1
    assert f"entry #{entry.index}: missing" in result.stderr


def test_a_rewritten_history_does_not_match_the_signed_checkpoint(ledger):
    """Rebuild the whole log consistently after an edit: only the signature catches it."""
    from offboard.ledger import merkle
    from offboard.ledger.models import LedgerNode

    entry = LedgerEntry.objects.filter(org=ledger).order_by("index")[3]
    forged = bytes(entry.body).replace(b'"alice"', b'"mallory"')
    sql(
        "UPDATE ledger_entry SET body = %s, leaf_hash = %s WHERE id = %s",
        [forged, merkle.leaf_hash(forged), entry.pk],
    )
    bodies = LedgerEntry.objects.filter(org=ledger).order_by("index").values_list("body", flat=True)
    tree = merkle.MerkleTree(merkle.leaf_hash(bytes(b)) for b in bodies)
    for node in LedgerNode.objects.filter(org=ledger):
        sql(
            "UPDATE ledger_node SET hash = %s WHERE id = %s",
            [tree.node(node.level, node.index), node.pk],
        )
    result = verify_cli()
    assert result.exit_code == 1
    assert "its root is not the root of the first" in result.stderr


def test_a_forged_checkpoint_signature_is_named(ledger):
    cp = Checkpoint.objects.filter(org=ledger).latest("id")
    text = cp.signed_note
    sig_start = text.rindex(" ") + 1
    forged = text[:sig_start] + ("A" if text[sig_start] != "A" else "B") + text[sig_start + 1 :]
    Checkpoint.objects.filter(pk=cp.pk).update(signed_note=forged)
    result = verify_cli()
    assert result.exit_code == 1
    assert (
        f"checkpoint {cp.pk} (size {cp.size}): signature or format does not verify" in result.stderr
    )


def test_an_altered_evidence_file_is_named(ledger):
    evidence = EvidenceFile.objects.filter(org=ledger).first()
    with open(local_path(evidence.storage_name), "ab") as f:
        f.write(b"tampered")
    result = verify_cli()
    assert result.exit_code == 1
    assert (
        f"file {evidence.sha256} ({evidence.original_name}): stored bytes have another sha256"
        in result.stderr
    )


def test_verify_prints_json_for_scripts(ledger):
    import json

    result = runner.invoke(app, ["ledger", "verify", "--org", "acme", "--json"])
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["organizations"][0]["entries"] == LedgerEntry.objects.filter(org=ledger).count()
