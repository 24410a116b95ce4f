"""A deemed acceptance that settles the last deliverables completes the step about them — as
staff's decision, never as the client's acknowledgement."""

import datetime as dt

from offboard.cases.services import update_register_item
from offboard.ledger.models import LedgerEntry
from offboard.portal.services import mark_deemed_accepted, send_reminder
from tests.cases.test_linked_steps import free, step
from tests.factories import upload
from tests.portal.conftest import move_clock


def test_a_deemed_acceptance_completes_the_delivery_step_as_staff_s_decision(
    issued, bob, alice, portal_case, monkeypatch
):
    free(portal_case, alice, "deliver_outstanding_work")
    pending = portal_case.deliverables.get(status="pending")
    signed = upload(alice, b"%PDF-1.4 signed acceptance\n", "signed.pdf")
    update_register_item(
        actor=alice,
        item=pending,
        values={"status": "accepted", "acceptance_note": "Signed by Nina"},
        evidence=[signed],
    )
    assert step(portal_case, "deliver_outstanding_work").status == "pending"
    send_reminder(actor=alice, link=issued.link)
    send_reminder(actor=alice, link=issued.link)
    move_clock(monkeypatch, dt.timedelta(days=15))

    mark_deemed_accepted(actor=bob, link=issued.link)

    event = LedgerEntry.objects.filter(case=portal_case).order_by("-index").first()
    assert event.type == "portal.deemed_accepted"
    (completes,) = event.data["completes_steps"]
    assert completes["step"] == "deliver_outstanding_work"
    # Each deliverable has its files; the client said nothing, so this is no client_ack.
    assert completes["evidence"] == "file"
    assert not any("acknowledgement" in i for i in completes["items"])
    done = step(portal_case, "deliver_outstanding_work")
    assert done.status == "done" and done.completed_by == bob.user
    assert done.settled_by["event"] == event.index
