"""Events recorded before the Merkle log existed become its first leaves, in order."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from offboard.ledger import merkle
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
