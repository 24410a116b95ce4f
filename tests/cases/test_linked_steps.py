"""Steps about register items: settling the last item completes the step in the same action
and the same event; the client's acknowledgement in the portal is a step's client_ack; a
step already done stays done."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from offboard.cases import selectors
from offboard.cases.models import Step
from offboard.cases.services import (
    add_register_item,
    complete_step,
    grant_waiver,
    mark_step_not_applicable,
    reopen_step,
    update_register_item,
)
from offboard.cases.state import case_state, fresh
from offboard.core.errors import Conflict, ValidationFailed
from offboard.ledger.models import LedgerEntry
from tests.factories import upload

BASE = "https://offboard.example.com"


def step(case: Any, key: str) -> Step:
    return selectors.get_step(case, key)


def free(case: Any, alice: Any, key: str) -> None:
    """Settle (not applicable) every step `key` waits for, directly or not."""
    for dep in step(case, key).depends_on:
        free(case, alice, dep)
        if step(case, dep).status not in ("done", "not_applicable"):
            mark_step_not_applicable(actor=alice, step=step(case, dep), reason="Not in this test")


def last_event(case: Any) -> LedgerEntry:
    return LedgerEntry.objects.filter(case=case).order_by("-index").first()


def events(case: Any) -> int:
    return LedgerEntry.objects.filter(case=case).count()


@pytest.fixture
def proof(alice: Any) -> Any:
    return upload(alice, b"%PDF-1.4 screenshot of the removed users\n", "removed.pdf")


def revoke_verified(alice: Any, grant: Any, proof: Any) -> None:
    update_register_item(
        actor=alice,
        item=grant,
        values={"status": "revoked", "verification_level": "attested"},
        evidence=[proof],
    )


def test_a_case_s_steps_know_the_items_they_are_about(case):
    assert step(case, "revoke_client_access").about == [
        {"register": "access_grants", "direction": ["client_in_provider"]}
    ]
    assert step(case, "delete_client_data").about == [
        {"register": "data_dispositions", "action": ["delete"]}
    ]
    assert step(case, "confirm_final_payment").about == [{"register": "settlements"}]
    assert step(case, "deliver_final_report").about == []  # opted out: one report, not all
    assert step(case, "confirm_notice").about == []


def test_revoking_the_last_grant_completes_the_access_step_in_the_same_event(case, alice, proof):
    free(case, alice, "revoke_client_access")
    first, second = case.access_grants.filter(direction="client_in_provider").order_by("id")

    revoke_verified(alice, first, proof)
    assert step(case, "revoke_client_access").status == "pending"
    assert "completes_steps" not in last_event(case).data

    before = events(case)
    revoke_verified(alice, second, proof)

    assert events(case) == before + 1  # one action, one event
    event = last_event(case)
    assert event.type == "access_grant.revoked"
    (completes,) = event.data["completes_steps"]
    assert completes["step"] == "revoke_client_access"
    assert completes["evidence"] == "file"  # each revocation has its screenshot attached
    assert [(i["register"], i["id"], i["status"]) for i in completes["items"]] == [
        ("access_grants", first.pk, "revoked"),
        ("access_grants", second.pk, "revoked"),
    ]
    done = step(case, "revoke_client_access")
    assert done.status == "done" and done.completed_by == alice.user
    assert done.settled_by["event"] == event.index
    assert done.settled_by["items"] == completes["items"]
    # Our own access in their systems is another step: those grants are still active.
    assert step(case, "revoke_agency_access").status == "pending"


def test_a_revocation_not_yet_verified_does_not_complete_the_step(case, alice, proof):
    free(case, alice, "revoke_client_access")
    first, second = case.access_grants.filter(direction="client_in_provider").order_by("id")
    revoke_verified(alice, first, proof)

    update_register_item(actor=alice, item=second, values={"status": "revoked"})
    assert step(case, "revoke_client_access").status == "pending"

    update_register_item(
        actor=alice, item=second, values={"verification_level": "attested"}, evidence=[proof]
    )
    event = last_event(case)
    assert event.type == "access_grant.verified"
    assert event.data["completes_steps"][0]["step"] == "revoke_client_access"
    assert step(case, "revoke_client_access").status == "done"


def test_accepting_the_last_deliverable_completes_the_delivery_step(case, alice, proof):
    free(case, alice, "deliver_outstanding_work")
    deliverables = list(case.deliverables.order_by("id"))
    for d in deliverables:
        update_register_item(
            actor=alice,
            item=d,
            values={"status": "accepted", "acceptance_note": "Accepted by email"},
            evidence=[proof],
        )

    event = last_event(case)
    assert event.type == "deliverable.accepted"
    (completes,) = event.data["completes_steps"]
    assert completes["step"] == "deliver_outstanding_work"
    assert {i["id"] for i in completes["items"]} == {d.pk for d in deliverables}
    assert step(case, "deliver_outstanding_work").status == "done"
    assert step(case, "deliver_final_report").status == "pending"  # about no items


def acknowledge(case: Any, alice: Any, items: list[Any]) -> LedgerEntry:
    """Nina North acknowledges the items in the portal; the event that records it."""
    from offboard.portal.selectors import manifest, manifest_digest
    from offboard.portal.services import acknowledge_items, issue_portal_link

    nina = case.client.contacts.get(email="nina@northwind.example")
    link = issue_portal_link(actor=alice, case=case, contact=nina, base_url=BASE).link
    before = events(case)
    acknowledge_items(
        link=link,
        items=[f"{type(i)._meta.model_name.replace('item', '_item')}:{i.pk}" for i in items],
        typed_name="Nina North",
        confirmed=True,
        manifest_sha256=manifest_digest(manifest(fresh(case))),
        ip="198.51.100.7",
        user_agent="Browser/1.0",
    )
    assert events(case) == before + 1  # one action, one event
    return last_event(case)


def test_handing_over_the_last_item_with_its_file_completes_the_handover_step(case, alice):
    free(case, alice, "transfer_ad_accounts")
    items = list(case.handover_items.filter(kind__in=["ad_account", "analytics"]).order_by("id"))
    for h in items:
        shot = upload(alice, f"%PDF-1.4 {h.name} owner screen\n".encode(), "owner.pdf")
        update_register_item(actor=alice, item=h, values={"status": "handed_over"}, evidence=[shot])

    done = step(case, "transfer_ad_accounts")  # evidence: client_ack or file
    assert done.status == "done"
    assert done.settled_by["evidence"] == "file"
    assert all(i["source"] == "staff" for i in done.settled_by["items"])
    assert last_event(case).data["completes_steps"][0]["step"] == "transfer_ad_accounts"


def test_the_client_s_portal_acknowledgement_is_the_step_s_client_ack(case, alice):
    from offboard.portal.models import PortalResponse

    free(case, alice, "handover_creative")
    items = list(case.handover_items.filter(kind__in=["document", "licence"]).order_by("id"))
    for h in items:
        update_register_item(
            actor=alice, item=h, values={"status": "handed_over", "method": "Shared drive"}
        )
    # Evidence: a link or the client's acknowledgement. Staff handing them over is neither.
    waiting = step(case, "handover_creative")
    assert waiting.status == "pending" and waiting.settled_by == {}

    event = acknowledge(case, alice, items)

    assert event.type == "portal.acknowledged"
    (completes,) = event.data["completes_steps"]
    assert completes["step"] == "handover_creative" and completes["evidence"] == "client_ack"
    done = step(case, "handover_creative")
    assert done.status == "done"
    assert done.completed_by is None  # the client completed it, not a member of staff
    response = PortalResponse.objects.get()
    assert done.settled_by["event"] == event.index == response.event_index
    for ref in done.settled_by["items"]:
        ack = ref["acknowledgement"]
        assert ack["contact"]["name"] == "Nina North" and ack["typed_name"] == "Nina North"
        assert ack["manifest_sha256"] == event.data["manifest_sha256"]
        assert ack["event"] == event.index


def test_a_staff_note_is_no_client_ack(case, alice):
    free(case, alice, "transfer_ad_accounts")
    with pytest.raises(ValidationFailed) as exc:
        complete_step(
            actor=alice,
            step=step(case, "transfer_ad_accounts"),
            note="Nina confirmed on the phone",
        )
    message = exc.value.errors["evidence"][0]
    assert "client ack" in message or "client_ack" in message
    assert "settle the 6 of its 6 items still open" in message
    assert step(case, "transfer_ad_accounts").status == "pending"


def test_returning_and_deleting_data_completes_the_data_steps(case, alice, proof):
    free(case, alice, "delete_client_data")
    # delete_client_data waits for return_client_data (freed above); reopen it to see the
    # return step complete by its items: the data set returned and the export acknowledged.
    reopen_step(actor=alice, step=step(case, "return_client_data"), reason="Do it for real")
    returned = case.data_dispositions.get(action="return")
    export = case.handover_items.get(kind="data_export")
    update_register_item(actor=alice, item=returned, values={"status": "done"}, evidence=[proof])
    update_register_item(
        actor=alice, item=export, values={"status": "handed_over", "method": "Download link"}
    )
    assert step(case, "return_client_data").status == "pending"  # a link or the client's ack

    event = acknowledge(case, alice, [export])

    (completes,) = event.data["completes_steps"]
    assert completes["step"] == "return_client_data" and completes["evidence"] == "client_ack"
    assert {(i["register"], i["id"]) for i in completes["items"]} == {
        ("data_dispositions", returned.pk),
        ("handover_items", export.pk),
    }

    deletions = list(case.data_dispositions.filter(action="delete").order_by("id"))
    for d in deletions:
        update_register_item(
            actor=alice,
            item=d,
            values={"status": "done", "method": "logical_delete"},
            evidence=[proof],
        )
    event = last_event(case)
    assert event.data["completes_steps"][0]["step"] == "delete_client_data"
    assert step(case, "delete_client_data").status == "done"
    # The retained data set is not what a deletion step is about.
    assert len(event.data["completes_steps"][0]["items"]) == len(deletions)


def test_paying_the_last_settlement_completes_the_payment_step_for_finance(case, cast, proof):
    alice, dave = cast["alice"], cast["dave"]
    free(case, alice, "confirm_final_payment")
    for s in case.settlements.order_by("id"):
        update_register_item(
            actor=dave,
            item=s,
            values={"status": "paid", "amount": "100.00", "currency": "EUR"},
            evidence=[proof],
        )
    done = step(case, "confirm_final_payment")
    assert done.status == "done" and done.completed_by == dave.user
    assert last_event(case).type == "settlement.paid"


def test_a_step_waiting_for_another_is_not_completed_but_its_items_are_its_evidence(
    case, alice, proof
):
    grants = list(case.access_grants.filter(direction="client_in_provider"))
    for g in grants:
        revoke_verified(alice, g, proof)
    waiting = step(case, "revoke_client_access")
    assert waiting.status == "pending"  # handover_creative is not done
    assert "completes_steps" not in last_event(case).data

    free(case, alice, "revoke_client_access")
    complete_step(actor=alice, step=step(case, "revoke_client_access"))  # no evidence given

    done = step(case, "revoke_client_access")
    assert done.status == "done" and done.settled_by["evidence"] == "file"
    event = last_event(case)
    assert event.type == "step.completed"
    assert {i["id"] for i in event.data["settled_by"]["items"]} == {g.pk for g in grants}
    assert done.settled_by["event"] == event.index


def test_a_done_step_stays_done_when_an_item_reopens_or_is_added(case, alice, proof):
    free(case, alice, "revoke_client_access")
    grants = list(case.access_grants.filter(direction="client_in_provider").order_by("id"))
    for g in grants:
        revoke_verified(alice, g, proof)
    assert step(case, "revoke_client_access").status == "done"

    add_register_item(
        actor=alice,
        case=case,
        register="access_grants",
        values={"direction": "client_in_provider", "system": "Figma", "planned_action": "revoke"},
    )
    update_register_item(actor=alice, item=grants[0], values={"notes": "Checked again"})

    done = step(case, "revoke_client_access")
    assert done.status == "done" and done.settled_by["items"][0]["id"] == grants[0].pk
    # The closure gates still list the new grant: nothing is lost by leaving the step done.
    with pytest.raises(Conflict):
        complete_step(actor=alice, step=done, note="again")


def test_a_waiver_on_the_last_item_completes_the_step_but_waivers_alone_do_not(case, cast, proof):
    alice, bob = cast["alice"], cast["bob"]
    free(case, alice, "revoke_client_access")
    first, second = case.access_grants.filter(direction="client_in_provider").order_by("id")
    until = timezone.now() + dt.timedelta(days=30)

    def waive(grant: Any) -> None:
        grant_waiver(
            actor=bob, case=case, target_type="access_grant", target_id=grant.pk,
            justification="The client keeps this for a month", expires_at=until,
        )  # fmt: skip

    waive(first)
    waive(second)
    # Both meet their gate, but only by waivers: no work was done, so nothing completes.
    assert step(case, "revoke_client_access").status == "pending"
    assert "completes_steps" not in last_event(case).data

    revoke_verified(alice, second, proof)
    done = step(case, "revoke_client_access")
    assert done.status == "done"
    assert [i.get("waived", False) for i in done.settled_by["items"]] == [True, False]


def test_waiving_the_last_open_item_completes_the_step_in_the_waiver_s_event(case, cast, proof):
    alice, bob = cast["alice"], cast["bob"]
    free(case, alice, "revoke_client_access")
    first, second = case.access_grants.filter(direction="client_in_provider").order_by("id")
    revoke_verified(alice, first, proof)

    grant_waiver(
        actor=bob, case=case, target_type="access_grant", target_id=second.pk,
        justification="The client keeps the Slack channel for a month",
        expires_at=timezone.now() + dt.timedelta(days=30),
    )  # fmt: skip

    event = last_event(case)
    assert event.type == "waiver.granted"
    assert event.data["completes_steps"][0]["step"] == "revoke_client_access"
    assert step(case, "revoke_client_access").status == "done"


def test_the_state_digest_carries_how_a_step_was_settled(case, alice, proof):
    free(case, alice, "revoke_client_access")
    for g in case.access_grants.filter(direction="client_in_provider"):
        revoke_verified(alice, g, proof)
    steps = {s["key"]: s for s in case_state(fresh(case))["steps"]}
    assert steps["revoke_client_access"]["settled_by"]["evidence"] == "file"
    assert "settled_by" not in steps["confirm_notice"]  # other steps' state is unchanged


@pytest.mark.django_db
def test_the_items_stand_for_the_kinds_of_evidence_their_records_carry():
    from offboard.cases.links import LinkedItem, items_evidence
    from offboard.cases.models import HandoverItem

    only_ack = Step(key="transfer", evidence_required=["client_ack"])
    ack_or_link = Step(key="transfer", evidence_required=["client_ack", "link"])
    ack_or_word = Step(key="transfer", evidence_required=["client_ack", "attestation"])
    ack_or_file = Step(key="transfer", evidence_required=["client_ack", "file"])

    def handed(status: str, source: str) -> LinkedItem:
        item = HandoverItem(pk=1, kind="domain", name="example.com", status=status, source=source)
        return LinkedItem("handover_items", item, settled=True, waived=False)

    by_staff = [handed("handed_over", "staff")]  # no files attached
    by_client = [handed("acknowledged", "client_portal")]
    assert items_evidence(only_ack, by_staff) is None
    assert items_evidence(ack_or_link, by_staff) is None  # a link is never in an item's record
    assert items_evidence(ack_or_file, by_staff) is None  # no files to stand for one
    assert items_evidence(ack_or_word, by_staff).evidence == "attestation"
    for step in (only_ack, ack_or_link, ack_or_word, ack_or_file):
        assert items_evidence(step, by_client).evidence == "client_ack"
    # Staff cannot make a handover 'acknowledged' by the client by saying so.
    assert items_evidence(only_ack, [handed("acknowledged", "staff")]) is None
    assert items_evidence(ack_or_word, []) is None  # about nothing on this case: never by items


def test_the_timeline_line_of_an_event_names_the_steps_it_completed():
    from offboard.ledger.summary import event_summary

    line = event_summary(
        {"item": {"system": "Slack", "status": "revoked"}, "completes_steps": [{"step": "a"}]}
    )
    assert line.endswith("completes step a")
