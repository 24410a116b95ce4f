"""Migration 0003 both ways: going back drops the provenance columns; going forward fills them
for existing items from the case's own events — the client's portal acknowledgement as
`client_portal`, everything else settled as `staff` with who recorded it and when."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from offboard.cases.models import Deliverable, HandoverItem
from offboard.cases.services import update_register_item
from offboard.ledger.models import LedgerEntry
from offboard.portal.selectors import link_for_token, manifest, manifest_digest
from offboard.portal.services import acknowledge_items, issue_portal_link
from tests.portal.conftest import deliver_work, token_of, upload_files


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target or executor.loader.graph.leaf_nodes())


def _columns(table):
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)}


@pytest.mark.django_db(transaction=True)
def test_existing_items_get_their_source_from_their_events_and_the_migration_reverses(case, cast):
    alice = cast["alice"]
    deliver_work(case, cast, upload_files(alice))
    first, second = case.handover_items.order_by("id")[:2]
    nina = case.client.contacts.get()
    issued = issue_portal_link(
        actor=alice, case=case, contact=nina, base_url="http://unused", send_email=False
    )
    shown = manifest(case)
    acknowledge_items(
        link=link_for_token(token_of(issued.url)),
        items=[f"handover_item:{first.pk}"],
        typed_name="Nina North",
        confirmed=True,
        manifest_sha256=manifest_digest(shown),
        ip=None,
        user_agent=None,
    )
    update_register_item(actor=cast["bob"], item=second, values={"status": "acknowledged"})
    staff_event = LedgerEntry.objects.filter(type="handover_item.acknowledged").get()
    portal_event = LedgerEntry.objects.filter(type="portal.acknowledged").get()
    report = case.deliverables.filter(status="delivered").order_by("id").first()
    pending = case.deliverables.filter(status="pending").first()

    _migrate([("cases", "0002_closed_state")])
    assert "source" not in _columns("cases_handoveritem")

    _migrate(None)
    assert {"source", "source_detail", "recorded_at", "recorded_by_id"} <= _columns(
        "cases_handoveritem"
    )
    by_client = HandoverItem.objects.get(pk=first.pk)
    assert by_client.source == "client_portal"
    assert by_client.source_detail == {
        "contact": {"id": nina.pk, "name": "Nina North", "email": "nina@northwind.example"},
        "typed_name": "Nina North",
        "manifest_sha256": manifest_digest(shown),
    }
    assert by_client.recorded_at == portal_event.at and by_client.recorded_by_id is None
    by_staff = HandoverItem.objects.get(pk=second.pk)
    assert by_staff.source == "staff" and by_staff.source_detail == {"name": "Bob"}
    assert by_staff.recorded_at == staff_event.at
    assert by_staff.recorded_by_id == cast["bob"].user.pk
    delivered = Deliverable.objects.get(pk=report.pk)
    assert delivered.source == "staff" and delivered.source_detail == {"name": "Alice"}
    untouched = Deliverable.objects.get(pk=pending.pk)
    assert untouched.source == "" and untouched.recorded_at is None
