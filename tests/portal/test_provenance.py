"""What the portal records as the source of a fact: the client's own word (acknowledged or
disputed) is `client_portal` with the contact, the name they typed and the list they saw;
a deemed acceptance is staff's, citing the reminders (decision 0008)."""

import datetime as dt

from offboard.cases.models import Deliverable, HandoverItem
from offboard.cases.registers import REGISTERS, item_state
from offboard.portal.selectors import manifest, manifest_digest
from offboard.portal.services import (
    acknowledge_items,
    dispute_item,
    mark_deemed_accepted,
    send_reminder,
)
from tests.portal.conftest import move_clock


def _shown(case):
    return manifest_digest(manifest(case))


def test_an_acknowledgement_in_the_portal_is_the_clients_own_word(issued, portal_case, nina):
    report = portal_case.deliverables.filter(status="delivered").order_by("id").first()
    ads = portal_case.handover_items.filter(status="handed_over").order_by("id").first()
    digest = _shown(portal_case)

    response = acknowledge_items(
        link=issued.link,
        items=[f"deliverable:{report.pk}", f"handover_item:{ads.pk}"],
        typed_name="  nina   NORTH ",
        confirmed=True,
        manifest_sha256=digest,
        ip="198.51.100.7",
        user_agent="Browser/1.0",
    )

    expected = {
        "contact": {"id": nina.pk, "name": "Nina North", "email": "nina@northwind.example"},
        "typed_name": "nina   NORTH",
        "manifest_sha256": digest,
    }
    for item, occurred in (
        (Deliverable.objects.get(pk=report.pk), "accepted_at"),
        (HandoverItem.objects.get(pk=ads.pk), "acknowledged_at"),
    ):
        assert item.source == "client_portal"
        assert item.source_detail == expected
        assert item.recorded_by_id is None
        assert item.recorded_at == response.at == getattr(item, occurred) == item.occurred_at
        state = item_state(REGISTERS[item.register], item)
        assert state["source"] == "client_portal" and state["recorded_by_id"] is None


def test_a_dispute_in_the_portal_is_the_clients_word_without_a_signature(issued, portal_case):
    report = portal_case.deliverables.filter(status="delivered").order_by("id").first()
    digest = _shown(portal_case)

    response = dispute_item(
        link=issued.link,
        item=f"deliverable:{report.pk}",
        comment="The report misses the last month",
        manifest_sha256=digest,
        ip=None,
        user_agent=None,
    )

    item = Deliverable.objects.get(pk=report.pk)
    assert item.status == "rejected"
    assert item.source == "client_portal"
    assert item.source_detail["typed_name"] == ""
    assert item.source_detail["manifest_sha256"] == digest
    assert item.occurred_at == item.accepted_at == response.at


def test_a_deemed_acceptance_is_staffs_decision_citing_the_reminders(
    issued, alice, bob, portal_case, monkeypatch
):
    first = send_reminder(actor=alice, link=issued.link)
    second = send_reminder(actor=alice, link=issued.link)
    moved = move_clock(monkeypatch, dt.timedelta(days=15))

    marked = mark_deemed_accepted(actor=bob, link=issued.link)

    for d in marked:
        d = Deliverable.objects.get(pk=d.pk)
        assert d.source == "staff"
        assert d.source_detail == {
            "name": "Bob",
            "deemed": True,
            "reminder_events": [first.event_index, second.event_index],
        }
        assert d.recorded_by_id == bob.user.pk and d.recorded_at == moved == d.occurred_at
