"""When a register fact happened and how it is known (decision 0008): what staff input may set,
what it may not, and what every item's state carries."""

import datetime as dt

import pytest

from offboard.cases.models import AccessGrant, Deliverable, HandoverItem, Settlement
from offboard.cases.registers import REGISTERS, item_state
from offboard.cases.services import add_register_item, update_register_item
from offboard.core import clock
from offboard.core.errors import ValidationFailed
from offboard.ledger.models import LedgerEntry
from tests.factories import upload

PROVENANCE_KEYS = {"occurred_at", "recorded_at", "recorded_by_id", "source", "source_detail"}


def _refused(action, **kwargs):
    """The field errors of a refused change, checking that nothing was written."""
    before = LedgerEntry.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        action(**kwargs)
    assert LedgerEntry.objects.count() == before
    return exc.value.errors


def _ago(**delta):
    return (clock.now() - dt.timedelta(**delta)).replace(microsecond=0)


@pytest.fixture
def handover(case):
    return case.handover_items.order_by("id").first()


@pytest.fixture
def grant(case):
    return case.access_grants.filter(planned_action="revoke").order_by("id").first()


# --- what a status change by staff records -------------------------------------------------------


def test_a_status_change_by_staff_says_who_recorded_it_and_when(case, alice, handover):
    happened = _ago(days=2)
    update_register_item(
        actor=alice,
        item=handover,
        values={
            "status": "handed_over",
            "method": "Admin rights moved",
            "handed_over_at": happened,
        },
    )

    item = HandoverItem.objects.get(pk=handover.pk)
    assert item.source == "staff"
    assert item.source_detail == {"name": "Alice"}
    assert item.recorded_by_id == alice.user.pk
    assert abs(item.recorded_at - clock.now()) < dt.timedelta(seconds=5)
    assert item.occurred_at == item.handed_over_at == happened
    event = LedgerEntry.objects.filter(case=case).last()
    state = event.data["item"]
    assert state["source"] == "staff" and state["source_detail"] == {"name": "Alice"}
    assert state["occurred_at"] == happened.isoformat()
    assert state["recorded_by_id"] == alice.user.pk and state["recorded_at"]


def test_a_status_change_without_a_time_happened_now(alice, handover):
    update_register_item(
        actor=alice, item=handover, values={"status": "handed_over", "method": "Moved"}
    )

    item = HandoverItem.objects.get(pk=handover.pk)
    assert abs(item.handed_over_at - clock.now()) < dt.timedelta(seconds=5)
    assert item.handed_over_at == item.recorded_at


def test_a_new_status_gets_its_own_time_not_the_previous_ones(case, alice):
    d = case.deliverables.order_by("id").first()
    update_register_item(
        actor=alice, item=d, values={"status": "accepted", "acceptance_note": "By email"}
    )
    first = Deliverable.objects.get(pk=d.pk).accepted_at
    later = clock.now() + dt.timedelta(minutes=2)
    with clock.pinned(later):
        update_register_item(
            actor=alice, item=d, values={"status": "rejected", "acceptance_note": "Broken link"}
        )

    item = Deliverable.objects.get(pk=d.pk)
    assert item.accepted_at == later != first
    assert item.occurred_at == later


def test_a_status_that_settles_nothing_has_no_source(case, alice, grant):
    item = AccessGrant.objects.get(pk=grant.pk)
    assert item.source == "" and item.source_detail == {} and item.recorded_at is None
    assert item_state(REGISTERS["access_grants"], item)["occurred_at"] is None


# --- fact times -----------------------------------------------------------------------------------


def test_a_fact_time_in_the_future_is_refused(alice, handover):
    ahead = clock.now() + dt.timedelta(minutes=10)
    errors = _refused(
        update_register_item,
        actor=alice,
        item=handover,
        values={"status": "handed_over", "method": "Moved", "handed_over_at": ahead},
    )
    assert "is in the future" in errors["handed_over_at"][0]
    assert HandoverItem.objects.get(pk=handover.pk).status == "planned"


def test_a_fact_time_a_few_minutes_ahead_is_clock_skew(alice, handover):
    ahead = clock.now() + dt.timedelta(minutes=3)
    update_register_item(
        actor=alice,
        item=handover,
        values={"status": "handed_over", "method": "Moved", "handed_over_at": ahead},
    )
    assert HandoverItem.objects.get(pk=handover.pk).handed_over_at == ahead


def test_a_fact_time_before_the_contract_began_is_refused_with_the_date(case, alice):
    early = dt.datetime(2024, 12, 31, 23, 0, tzinfo=dt.UTC)  # the contract began 2025-01-01
    refunds = Settlement.objects.filter(case=case, kind="refund").count()
    errors = _refused(
        add_register_item,
        actor=alice,
        case=case,
        register="settlements",
        values={"kind": "refund", "status": "paid", "settled_at": early},
    )
    assert "before the contract began on 2025-01-01" in errors["settled_at"][0]
    assert Settlement.objects.filter(case=case, kind="refund").count() == refunds


def test_every_fact_time_is_checked_not_only_the_current_one(case, alice):
    d = case.deliverables.order_by("id").first()
    errors = _refused(
        update_register_item,
        actor=alice,
        item=d,
        values={
            "status": "delivered",
            "delivered_at": _ago(days=1),
            "accepted_at": clock.now() + dt.timedelta(days=1),
        },
    )
    assert set(errors) == {"accepted_at"}


# --- sources staff may not set ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("client_portal", "set only by the client portal"),
        ("observed", "set only by a connector"),
    ],
)
def test_sources_from_the_portal_or_a_connector_are_refused_from_staff(
    alice, handover, source, says
):
    errors = _refused(
        update_register_item,
        actor=alice,
        item=handover,
        values={"status": "acknowledged", "method": "Moved", "source": source},
    )
    assert says in errors["source"][0]
    assert HandoverItem.objects.get(pk=handover.pk).status == "planned"


def test_an_unknown_source_is_refused(alice, handover):
    errors = _refused(
        update_register_item,
        actor=alice,
        item=handover,
        values={"status": "handed_over", "method": "Moved", "source": "rumour"},
    )
    assert "is not one of: staff, vendor_document" in errors["source"][0]


def test_an_observed_verification_is_refused_from_staff(alice, grant):
    update_register_item(actor=alice, item=grant, values={"status": "revoked"})
    errors = _refused(
        update_register_item,
        actor=alice,
        item=grant,
        values={"verification_level": "observed", "verification_note": "Looked at the list"},
    )
    assert (
        "record what you saw as attested, with the screenshot or log attached"
        in (errors["verification_level"][0])
    )
    assert AccessGrant.objects.get(pk=grant.pk).verification_level == ""


def test_a_source_for_an_item_that_settles_nothing_is_refused(alice, handover):
    errors = _refused(update_register_item, actor=alice, item=handover, values={"source": "staff"})
    assert "nothing is settled yet" in errors["source"][0]


def test_staff_cannot_retime_or_reattribute_what_the_client_signed(alice, handover):
    handover.status = "acknowledged"
    handover.acknowledged_at = _ago(hours=3)
    handover.source = "client_portal"
    handover.source_detail = {"contact": {"id": 1, "name": "Nina North", "email": "n@x"}}
    handover.save()

    errors = _refused(
        update_register_item, actor=alice, item=handover, values={"acknowledged_at": _ago(days=1)}
    )
    assert "signed by the client in the portal" in errors["acknowledged_at"][0]
    errors = _refused(update_register_item, actor=alice, item=handover, values={"source": "staff"})
    assert "record a new status instead" in errors["source"][0]
    # Notes are not the fact: editing them leaves the client's word as it was.
    update_register_item(actor=alice, item=handover, values={"notes": "Called to thank them"})
    assert HandoverItem.objects.get(pk=handover.pk).source == "client_portal"


# --- a vendor's document ----------------------------------------------------------------------------


def test_a_vendor_document_source_needs_the_document(alice, grant):
    errors = _refused(
        update_register_item,
        actor=alice,
        item=grant,
        values={"status": "revoked", "source": "vendor_document"},
    )
    assert "needs the document" in errors["source_document"][0]


def test_a_vendor_document_must_be_one_of_the_items_files(alice, grant):
    elsewhere = upload(alice, b"%PDF-1.4 unrelated letter\n", "other.pdf")
    errors = _refused(
        update_register_item,
        actor=alice,
        item=grant,
        values={
            "status": "revoked",
            "source": "vendor_document",
            "source_document": elsewhere.sha256,
        },
    )
    assert "is not one of this item's evidence files" in errors["source_document"][0]


def test_a_vendor_document_attached_with_the_change_is_the_source(case, alice, grant):
    letter = upload(alice, b"%PDF-1.4 Google confirms removal\n", "google-letter.pdf")
    update_register_item(
        actor=alice,
        item=grant,
        values={
            "status": "revoked",
            "actioned_at": _ago(days=3),
            "source": "vendor_document",
            "source_document": letter.sha256,
            "source_vendor": "Google Ireland",
        },
        evidence=[letter],
    )

    item = AccessGrant.objects.get(pk=grant.pk)
    assert item.source == "vendor_document"
    assert item.source_detail == {"document_sha256": letter.sha256, "vendor": "Google Ireland"}
    assert item.recorded_by_id == alice.user.pk


def test_a_vendor_document_attached_earlier_can_become_the_source(case, alice, grant):
    letter = upload(alice, b"%PDF-1.4 Vendor statement\n", "statement.pdf")
    update_register_item(actor=alice, item=grant, values={"status": "revoked"}, evidence=[letter])
    update_register_item(
        actor=alice,
        item=grant,
        values={"source": "vendor_document", "source_document": letter.sha256.upper()},
    )

    item = AccessGrant.objects.get(pk=grant.pk)
    assert item.source == "vendor_document" and item.status == "revoked"
    event = LedgerEntry.objects.filter(case=case).last()
    assert event.type == "access_grant.updated"
    assert event.data["old"]["source"] == "staff"  # the re-attribution shows the old source


def test_a_document_without_a_vendor_document_source_is_refused(alice, grant):
    letter = upload(alice, b"%PDF-1.4 letter\n", "letter.pdf")
    errors = _refused(
        update_register_item,
        actor=alice,
        item=grant,
        values={"status": "revoked", "source": "staff", "source_document": letter.sha256},
        evidence=[letter],
    )
    assert "only a vendor_document source names a document" in errors["source_document"][0]


# --- the state every event and digest carries ---------------------------------------------------------


OCCURRED = {
    "deliverables": {
        "delivered": "delivered_at",
        "accepted": "accepted_at",
        "conditionally_accepted": "accepted_at",
        "deemed_accepted": "accepted_at",
        "rejected": "accepted_at",
    },
    "handover_items": {"handed_over": "handed_over_at", "acknowledged": "acknowledged_at"},
    "access_grants": {
        "revoked": "actioned_at",
        "transferred": "actioned_at",
        "kept": "actioned_at",
    },
    "data_dispositions": {"done": "completed_at"},
    "settlements": {"paid": "settled_at", "written_off": "settled_at"},
}


def test_occurred_at_is_the_time_of_the_fact_each_status_asserts():
    for key, spec in REGISTERS.items():
        assert spec.model.occurred_fields == OCCURRED[key], key


def test_every_item_state_carries_the_provenance_keys(case):
    from offboard.cases.state import case_state, fresh

    state = case_state(fresh(case))
    for key, items in state["registers"].items():
        assert items, key
        for item in items:
            assert set(item) >= PROVENANCE_KEYS, key
