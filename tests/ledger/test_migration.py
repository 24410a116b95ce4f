"""Events recorded before the Merkle log existed become its first leaves, in order."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from offboard.ledger import merkle
from offboard.ledger.models import LedgerEntry
from offboard.ledger.verify import verify_log


@pytest.mark.django_db(transaction=True)
def test_plain_events_are_migrated_into_the_log():
    executor = MigrationExecutor(connection)
    executor.migrate([("ledger", "0001_initial")])
    old_apps = executor.loader.project_state([("ledger", "0001_initial")]).apps
    Organization = old_apps.get_model("accounts", "Organization")
    CaseEvent = old_apps.get_model("ledger", "CaseEvent")
    org = Organization.objects.create(slug="legacy", name="Legacy Ltd")
    at = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    for i, kind in enumerate(["client.created", "contract.created", "playbook.imported"]):
        CaseEvent.objects.create(
            org=org,
            type=kind,
            at=at + dt.timedelta(minutes=i),
            actor={"id": 1, "name": "Alice"},
            data={"n": i},
            files=[],
        )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from offboard.accounts.models import Organization as Org
    from offboard.ledger.models import LedgerEntry, LogHead

    org = Org.objects.get(slug="legacy")
    entries = list(LedgerEntry.objects.filter(org=org).order_by("index"))
    assert [(e.index, e.type, e.data["n"]) for e in entries] == [
        (0, "client.created", 0),
        (1, "contract.created", 1),
        (2, "playbook.imported", 2),
    ]
    assert entries[0].event["org"] == "legacy" and entries[0].event["actor"]["name"] == "Alice"
    assert LogHead.objects.get(org=org).size == 3
    tree = merkle.MerkleTree(merkle.leaf_hash(bytes(e.body)) for e in entries)
    report = verify_log(org)
    assert report.ok, report.problems
    assert report.root == tree.root()


@pytest.mark.django_db(transaction=True)
def test_nodes_below_level_4_are_dropped_and_rebuilt_when_going_back(cast):
    from offboard.ledger import store
    from offboard.ledger.models import LedgerNode
    from offboard.ledger.recorder import record_event

    org = cast["alice"].org
    for i in range(40):
        with transaction.atomic():
            record_event(actor=cast["alice"], type="test.appended", data={"seq": i})
    n = store.size(org)
    assert LedgerNode.objects.filter(org=org).count() == merkle.stored_node_count(n, 4)

    executor = MigrationExecutor(connection)
    executor.migrate([("ledger", "0004_postgres_append_function")])
    assert LedgerNode.objects.filter(org=org).count() == merkle.stored_node_count(n)
    tree = merkle.MerkleTree(
        bytes(h) for h in LedgerEntry.objects.filter(org=org).values_list("leaf_hash", flat=True)
    )
    for level, index, h in LedgerNode.objects.filter(org=org).values_list("level", "index", "hash"):
        assert bytes(h) == tree.node(level, index)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert LedgerNode.objects.filter(org=org).count() == merkle.stored_node_count(n, 4)
    with transaction.atomic():  # the append (on PostgreSQL: the reinstalled function) works on
        record_event(actor=cast["alice"], type="test.appended", data={"seq": 40})
    report = verify_log(org)
    assert report.ok, report.problems
    assert report.entries == n + 1
