"""Acknowledging and disputing through the portal: the typed name, the confirmation, the
manifest digest, what the register and the ledger say afterwards, and the contact's email."""

import json

import pytest
from django.core import mail

from offboard.cases.gates import readiness_gates
from offboard.cases.models import Deliverable, HandoverItem, OffboardingCase
from offboard.cases.state import fresh
from offboard.core.canonical import digest
from offboard.ledger.models import LedgerEntry
from offboard.portal.models import PortalResponse
from tests.portal.conftest import UA, shown_digest


def keys(case):
    d = list(case.deliverables.order_by("id"))
    h = list(case.handover_items.order_by("id"))
    return {
        "report": f"deliverable:{d[0].pk}",
        "assets": f"deliverable:{d[1].pk}",
        "pending": f"deliverable:{d[2].pk}",
        "ads": f"handover_item:{h[0].pk}",
        "second": f"handover_item:{h[1].pk}",
    }


def review(visitor, token, *items, all_awaiting=False):
    """Open the page, then the confirmation step for the items; its digest and body."""
    page = visitor.get(f"/portal/{token}/").content.decode()
    query = {"m": shown_digest(page)}
    if all_awaiting:
        query["all"] = "1"
    else:
        query["item"] = list(items)
    response = visitor.get(f"/portal/{token}/acknowledge/", query)
    assert response.status_code == 200, response.content
    body = response.content.decode()
    return shown_digest(body), body


def acknowledge(visitor, token, *items, name="Nina North", confirm=True, seen=None, **extra):
    digest_seen = seen or review(visitor, token, *items)[0]
    data = {"item": list(items), "typed_name": name, "manifest_sha256": digest_seen, **extra}
    if confirm:
        data["confirm"] = "yes"
    return visitor.post(f"/portal/{token}/acknowledge/", data)


def portal_events(type_):
    return [e for e in LedgerEntry.objects.filter(type=type_).order_by("index")]


def test_acknowledging_an_item_records_who_what_and_the_manifest_digest(
    visitor, token, portal_case, issued, nina, files
):
    k = keys(portal_case)
    seen, review_page = review(visitor, token, k["report"])
    assert "Acknowledge 1 item" in review_page and "final-report.pdf" in review_page

    response = acknowledge(visitor, token, k["report"], name="  nina   NORTH ", seen=seen)

    assert response.status_code == 303
    report = Deliverable.objects.get(pk=int(k["report"].split(":")[1]))
    assert report.status == "accepted" and report.accepted_at is not None
    assert "Nina North" in report.acceptance_note and seen in report.acceptance_note
    (event,) = portal_events("portal.acknowledged")
    assert event.case_id == portal_case.pk and event.actor_user_id is None
    assert event.actor == {
        "id": None,
        "contact_id": nina.pk,
        "name": "Nina North",
        "email": "nina@northwind.example",
        "role": "client_contact",
        "auth": "portal_link",
        "ip": "127.0.0.1",
        "user_agent": UA,
    }
    data = event.data
    assert data["contact"] == {"id": nina.pk, "name": "Nina North", "email": nina.email}
    assert data["typed_name"] == "nina   NORTH" and data["confirmed"] is True
    assert data["items"] == [
        {
            "register": "deliverables",
            "id": report.pk,
            "label": report.title,
            "old_status": "delivered",
            "status": "accepted",
        }
    ]
    # The digest is the one the page showed, and it is the canonical digest of the manifest
    # recorded with the event: anyone can recompute it from the event alone.
    assert data["manifest_sha256"] == seen == digest(data["manifest"])
    assert data["manifest"]["case"] == portal_case.ref
    assert event.files == [files["report"].sha256]
    assert data["link_id"] == issued.link.pk
    stored = PortalResponse.objects.get()
    assert (stored.kind, stored.ip, stored.user_agent) == ("acknowledged", "127.0.0.1", UA)
    assert stored.event_index == event.index and stored.manifest_sha256 == seen


def test_the_page_after_acknowledging_thanks_the_contact_and_lists_the_response(
    visitor, token, portal_case
):
    k = keys(portal_case)
    response = acknowledge(visitor, token, k["report"])
    page = visitor.get(response["Location"]).content.decode()

    assert "your acknowledgement is recorded" in page
    assert "A confirmation was emailed to nina@northwind.example" in page
    assert "Your responses" in page
    assert page.count("Awaiting your response") == 3


def test_the_contact_receives_a_confirmation_listing_the_items_and_the_digest(
    visitor, token, portal_case, files
):
    k = keys(portal_case)
    mail.outbox.clear()
    acknowledge(visitor, token, k["report"], k["ads"])

    (message,) = mail.outbox
    response = PortalResponse.objects.get()
    assert message.to == ["Nina North <nina@northwind.example>"]
    assert message.reply_to == ["alice@acme.example"]
    assert "you acknowledged 2 items" in message.subject
    assert portal_case.ref in message.subject
    assert response.manifest_sha256 in message.body
    assert files["report"].sha256 in message.body and files["ads"].sha256 in message.body
    assert f"event #{response.event_index}" in message.body
    assert "127.0.0.1" in message.body
    assert response.confirmation_sent_at is not None


def test_a_name_that_does_not_match_is_refused_with_a_field_error(visitor, token, portal_case):
    k = keys(portal_case)
    events = LedgerEntry.objects.count()

    response = acknowledge(visitor, token, k["report"], name="Nina Northe")

    assert response.status_code == 422
    body = response.content.decode()
    assert 'id="typed_name-error"' in body
    assert "does not match the name we have for you" in body
    assert 'aria-invalid="true"' in body
    assert LedgerEntry.objects.count() == events
    assert Deliverable.objects.get(pk=int(k["report"].split(":")[1])).status == "delivered"


def test_the_confirmation_box_is_required(visitor, token, portal_case):
    k = keys(portal_case)
    response = acknowledge(visitor, token, k["report"], confirm=False)

    assert response.status_code == 422
    assert "tick the box to confirm" in response.content.decode()
    assert not PortalResponse.objects.exists()


def test_a_manifest_changed_since_it_was_shown_is_refused(visitor, token, portal_case, alice):
    from offboard.cases.services import update_register_item

    k = keys(portal_case)
    seen, _ = review(visitor, token, k["report"])
    # Meanwhile the agency changes what the page showed: the delivery method.
    update_register_item(
        actor=alice,
        item=portal_case.deliverables.order_by("id").first(),
        values={"delivery_method": "Courier"},
    )
    events = LedgerEntry.objects.count()

    response = acknowledge(visitor, token, k["report"], seen=seen)

    assert response.status_code == 409
    body = response.content.decode()
    assert "Your response was not recorded" in body
    assert "changed since you opened this page" in body and "Reload the page" in body
    assert LedgerEntry.objects.count() == events
    assert shown_digest(body) != seen  # the page now shows the current list


def test_a_stale_review_link_sends_the_contact_back_to_the_current_list(
    visitor, token, portal_case
):
    k = keys(portal_case)
    response = visitor.get(f"/portal/{token}/acknowledge/", {"item": k["report"], "m": "0" * 64})

    assert response.status_code == 302 and response["Location"].endswith("?changed=1")
    assert (
        "The list changed since you opened it" in visitor.get(response["Location"]).content.decode()
    )


def test_internal_edits_not_shown_on_the_page_do_not_change_the_manifest(
    visitor, token, portal_case, alice
):
    from offboard.cases.services import update_register_item

    k = keys(portal_case)
    seen, _ = review(visitor, token, k["report"])
    update_register_item(
        actor=alice, item=portal_case.deliverables.order_by("id").first(), values={"notes": "x"}
    )

    assert acknowledge(visitor, token, k["report"], seen=seen).status_code == 303


def test_acknowledge_all_covers_every_item_awaiting_a_response(visitor, token, portal_case):
    seen, body = review(visitor, token, all_awaiting=True)
    assert "Acknowledge 4 items" in body

    response = visitor.post(
        f"/portal/{token}/acknowledge/",
        {"all": "1", "typed_name": "Nina North", "confirm": "yes", "manifest_sha256": seen},
    )

    assert response.status_code == 303
    case = fresh(portal_case)
    assert [d.status for d in case.deliverables.all()] == ["accepted", "accepted", "pending"]
    statuses = [h.status for h in case.handover_items.all()]
    assert statuses[:2] == ["acknowledged", "acknowledged"]
    assert set(statuses[2:]) <= {"planned"}
    (event,) = portal_events("portal.acknowledged")
    assert len(event.data["items"]) == 4


def test_items_not_awaiting_a_response_cannot_be_acknowledged(visitor, token, portal_case):
    k = keys(portal_case)
    digest_now = shown_digest(visitor.get(f"/portal/{token}/").content.decode())

    response = acknowledge(visitor, token, k["pending"], seen=digest_now)

    assert response.status_code == 422
    assert "nothing to acknowledge" in response.content.decode()
    assert not PortalResponse.objects.exists()


def test_disputing_an_item_records_the_comment_and_blocks_its_gate(
    visitor, token, portal_case, nina
):
    k = keys(portal_case)
    page = visitor.get(f"/portal/{token}/").content.decode()
    form = visitor.get(f"/portal/{token}/dispute/", {"item": k["ads"], "m": shown_digest(page)})
    assert form.status_code == 200 and "What is wrong with" in form.content.decode()
    mail.outbox.clear()

    response = visitor.post(
        f"/portal/{token}/dispute/",
        {
            "item": k["ads"],
            "comment": "We never got admin rights on the Google Ads account.",
            "manifest_sha256": shown_digest(form.content.decode()),
        },
    )

    assert response.status_code == 303
    item = HandoverItem.objects.get(pk=int(k["ads"].split(":")[1]))
    assert item.status == "disputed"
    (event,) = portal_events("portal.disputed")
    assert event.data["comment"] == "We never got admin rights on the Google Ads account."
    assert event.actor["ip"] == "127.0.0.1" and event.actor["user_agent"] == UA
    assert event.data["manifest_sha256"] == digest(event.data["manifest"])
    gates = {g.code: g for g in readiness_gates(fresh(portal_case))}
    assert any(o["id"] == item.pk for o in gates["handover.incomplete"].objects)
    (message,) = mail.outbox
    assert "you disputed 1 item" in message.subject
    assert "We never got admin rights" in message.body


def test_a_dispute_needs_a_comment_of_at_most_5000_characters(visitor, token, portal_case):
    k = keys(portal_case)
    seen = shown_digest(visitor.get(f"/portal/{token}/").content.decode())
    for comment, problem in (("   ", "is required"), ("x" * 5001, "longer than 5000")):
        response = visitor.post(
            f"/portal/{token}/dispute/",
            {"item": k["report"], "comment": comment, "manifest_sha256": seen},
        )
        assert response.status_code == 422
        body = response.content.decode()
        assert 'id="comment-error"' in body and problem in body
    assert not LedgerEntry.objects.filter(type="portal.disputed").exists()


def test_a_disputed_item_can_be_acknowledged_once_resolved_but_not_disputed_twice(
    visitor, token, portal_case
):
    from offboard.portal.selectors import manifest, manifest_digest
    from offboard.portal.services import dispute_item

    k = keys(portal_case)
    link = portal_case.portal_links.get()
    dispute_item(
        link=link,
        item=k["assets"],
        comment="Two banners are missing",
        manifest_sha256=manifest_digest(manifest(portal_case)),
        ip="10.0.0.1",
        user_agent="x",
    )
    again = visitor.post(
        f"/portal/{token}/dispute/",
        {
            "item": k["assets"],
            "comment": "Still missing",
            "manifest_sha256": manifest_digest(manifest(portal_case)),
        },
    )
    assert again.status_code == 422 and "cannot be disputed" in again.content.decode()

    assert acknowledge(visitor, token, k["assets"]).status_code == 303
    assert Deliverable.objects.get(pk=int(k["assets"].split(":")[1])).status == "accepted"


def test_an_acknowledgement_returns_a_closing_case_to_active(visitor, token, portal_case, cast):
    from offboard.cases.services import enter_closing
    from tests.factories import settle_everything

    settled = settle_everything(portal_case, cast)
    # handover items are handed over (the gate is met) but not yet acknowledged
    enter_closing(actor=cast["alice"], case=settled)
    item = settled.handover_items.order_by("id").first()

    response = acknowledge(visitor, token, f"handover_item:{item.pk}")

    assert response.status_code == 303
    assert OffboardingCase.objects.get(pk=portal_case.pk).state == "active"
    (event,) = portal_events("portal.acknowledged")
    assert event.data["returned_to_active"] is True


def test_a_closed_case_takes_no_response(visitor, token, portal_case, cast):
    from offboard.portal.selectors import manifest, manifest_digest
    from offboard.portal.services import acknowledge_items
    from tests.factories import close_with_approvals, settle_everything

    close_with_approvals(settle_everything(portal_case, cast), cast)
    closed = fresh(portal_case)
    item = closed.handover_items.order_by("id").first()
    digest_now = manifest_digest(manifest(closed))

    response = acknowledge(visitor, token, f"handover_item:{item.pk}", seen=digest_now)

    assert response.status_code == 409
    assert "This offboarding is complete" in response.content.decode()
    from offboard.core.errors import CaseClosed

    with pytest.raises(CaseClosed):
        acknowledge_items(
            link=closed.portal_links.get(),
            items=[f"handover_item:{item.pk}"],
            typed_name="Nina North",
            confirmed=True,
            manifest_sha256=digest_now,
            ip=None,
            user_agent=None,
        )


def test_a_link_revoked_while_the_page_was_open_records_nothing(
    visitor, token, portal_case, issued, alice
):
    from offboard.portal.services import revoke_portal_link

    k = keys(portal_case)
    seen, _ = review(visitor, token, k["report"])
    revoke_portal_link(actor=alice, link=issued.link)

    response = acknowledge(visitor, token, k["report"], seen=seen)

    assert response.status_code == 404
    assert "This link is no longer valid" in response.content.decode()
    assert not PortalResponse.objects.exists()


def test_the_event_body_is_valid_canonical_json_and_the_log_still_verifies(
    visitor, token, portal_case, alice
):
    from offboard.ledger.verify import verify_log

    acknowledge(visitor, token, keys(portal_case)["report"])
    (event,) = portal_events("portal.acknowledged")

    assert json.loads(bytes(event.body))["actor"]["auth"] == "portal_link"
    report = verify_log(alice.org)
    assert report.ok, report
