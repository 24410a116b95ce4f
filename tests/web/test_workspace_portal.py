"""The workspace's Client portal section: send a link, remind, revoke, deem accepted, and the
client's answers shown where the staff work (the disputed item's row says what is wrong)."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import Client

from offboard.ledger.models import LedgerEntry
from offboard.portal.models import PortalLink, PortalReminder
from offboard.portal.services import dispute_item, send_reminder
from tests.portal.conftest import move_clock, shown_digest, token_of

HX = {"HTTP_HX_REQUEST": "true"}
URL_SHOWN = re.compile(r'id="portal-issued-url"[^>]*value="(http://testserver/portal/[^"]+/)"')


def _client(actor):
    c = Client()
    c.force_login(actor.user)
    return c


def _send(web, case, **fields):
    return web.post(f"/cases/{case.ref}/portal/links", fields)


@pytest.fixture
def alice_web(alice):
    return _client(alice)


def test_the_section_offers_the_clients_contacts_with_an_email(alice_web, portal_case, nina):
    body = alice_web.get(f"/cases/{portal_case.ref}/").content.decode()
    assert 'id="portal"' in body and 'href="#portal"' in body
    assert "Send portal link" in body
    assert f'<option value="{nina.pk}">Nina North · nina@northwind.example' in body
    assert "No portal link yet" in body


def test_sending_a_link_emails_it_and_shows_it_once(alice_web, portal_case, nina):
    mail.outbox.clear()
    response = _send(alice_web, portal_case, contact_id=nina.pk, days="20", respond_days="10")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.content.decode()
    url = URL_SHOWN.search(body)[1]
    link = PortalLink.objects.get(case=portal_case)
    assert (link.expires_at - link.created_at).days == 20
    assert (link.respond_by - link.created_at).days == 10
    assert "emailed to nina@northwind.example" in body
    (message,) = mail.outbox
    assert message.to == ["Nina North <nina@northwind.example>"] and url in message.body
    event = LedgerEntry.objects.filter(case=portal_case).order_by("-index").first()
    assert event.type == "portal_link.issued" and event.data["contact"]["id"] == nina.pk
    assert token_of(url) not in str(event.data)  # only the hash is kept, nowhere the token
    # The link opens the portal for the contact; the workspace never shows the URL again.
    assert Client().get(url).status_code == 200
    again = alice_web.get(f"/cases/{portal_case.ref}/").content.decode()
    assert token_of(url) not in again
    row = _row(again, link.pk)
    assert "opened " in row and "never opened" not in row and "0 answers" in row


def test_an_htmx_send_answers_with_the_section_and_the_link(alice_web, portal_case, nina):
    response = alice_web.post(
        f"/cases/{portal_case.ref}/portal/links", {"contact_id": nina.pk}, **HX
    )
    body = response.content.decode()
    assert response.status_code == 200 and '<section id="portal"' in body
    assert URL_SHOWN.search(body)
    assert 'id="timeline"' in body  # the shared regions come along


def test_the_base_url_setting_wins_over_the_request_host(alice_web, portal_case, nina, settings):
    settings.OFFBOARD_BASE_URL = "https://offboard.acme.example"
    body = _send(alice_web, portal_case, contact_id=nina.pk).content.decode()
    assert 'value="https://offboard.acme.example/portal/' in body


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"contact_id": ""}, "choose the contact to send the link to"),
        ({"contact_id": "999999"}, "no contact 999999 of Northwind Traders"),
        ({"days": "ten"}, "&#x27;ten&#x27; is not a whole number of days"),
        ({"days": "500"}, "must be between 1 and 90"),
        ({"respond_days": "0"}, "must be between 1 and 30"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(alice_web, portal_case, nina, fields, words):
    before = LedgerEntry.objects.count()
    response = _send(alice_web, portal_case, **{"contact_id": nina.pk, **fields})
    assert response.status_code == 422
    body = response.content.decode()
    (error,) = re.findall(r'<p class="field-error">([^<]*)</p>', body)
    assert words in error
    assert not PortalLink.objects.exists() and LedgerEntry.objects.count() == before
    assert '<details class="add" open>' in body  # the form stays open with its message


def test_a_contact_of_another_client_cannot_be_chosen(alice_web, portal_case, other_case):
    carl = other_case.client.contacts.get()
    response = _send(alice_web, portal_case, contact_id=carl.pk)
    assert response.status_code == 422 and "no contact" in response.content.decode()
    assert not PortalLink.objects.exists()


def test_remind_from_the_row_emails_and_logs_it(alice_web, issued, portal_case):
    mail.outbox.clear()
    response = alice_web.post(
        f"/cases/{portal_case.ref}/portal/links/{issued.link.pk}/remind", **HX
    )
    assert response.status_code == 200
    assert "1 reminder" in response.content.decode()
    (reminder,) = PortalReminder.objects.filter(link=issued.link)
    (message,) = mail.outbox
    assert message.to == ["Nina North <nina@northwind.example>"]
    assert message.extra_headers["Message-ID"] == reminder.message_id


def test_a_refused_reminder_shows_its_reason_on_the_links_row(
    alice_web, alice, issued, portal_case
):
    from offboard.portal.services import revoke_portal_link

    revoke_portal_link(actor=alice, link=issued.link, reason="Wrong address")
    response = alice_web.post(
        f"/cases/{portal_case.ref}/portal/links/{issued.link.pk}/remind", **HX
    )
    assert response.status_code == 409
    row = _row(response.content.decode(), issued.link.pk)
    alert = re.search(r'<p class="form-error" role="alert">([^<]*)</p>', row)
    assert alert and "is revoked; issue a new link first" in alert[1]
    assert not PortalReminder.objects.exists()


def test_revoking_from_the_row_closes_the_portal_at_once(alice_web, issued, portal_case):
    response = alice_web.post(
        f"/cases/{portal_case.ref}/portal/links/{issued.link.pk}/revoke",
        {"reason": "Sent to the wrong person", "confirm": "revoke"},
    )
    assert response.status_code == 302 and response["Location"].endswith("#portal")
    issued.link.refresh_from_db()
    assert issued.link.revoked_at is not None
    assert issued.link.revoke_reason == "Sent to the wrong person"
    assert Client().get(f"/portal/{token_of(issued.url)}/").status_code == 404
    body = alice_web.get(f"/cases/{portal_case.ref}/").content.decode()
    row = _row(body, issued.link.pk)
    assert ">revoked<" in row and "Sent to the wrong person" in row and "Remind" not in row


def test_deem_accepted_is_offered_to_a_manager_after_the_deadline(
    issued, portal_case, alice, cast, monkeypatch
):
    send_reminder(actor=alice, link=issued.link)
    send_reminder(actor=alice, link=issued.link)
    bob_web = _client(cast["bob"])
    row = _row(bob_web.get(f"/cases/{portal_case.ref}/").content.decode(), issued.link.pk)
    assert "Deem accepted" not in row  # the deadline has not passed
    move_clock(monkeypatch, dt.timedelta(days=15))
    oscar_page = _client(cast["oscar"]).get(f"/cases/{portal_case.ref}/").content.decode()
    assert "Deem accepted" not in _row(oscar_page, issued.link.pk)  # an operator does not deem
    row = _row(bob_web.get(f"/cases/{portal_case.ref}/").content.decode(), issued.link.pk)
    assert "Deem accepted" in row
    response = bob_web.post(f"/cases/{portal_case.ref}/portal/links/{issued.link.pk}/deem")
    assert response.status_code == 302
    statuses = sorted(portal_case.deliverables.values_list("status", flat=True))
    assert statuses == ["deemed_accepted", "deemed_accepted", "pending"]


def test_deem_accepted_too_early_is_refused_on_the_row(issued, portal_case, cast):
    bob_web = _client(cast["bob"])
    response = bob_web.post(f"/cases/{portal_case.ref}/portal/links/{issued.link.pk}/deem")
    assert response.status_code == 409
    row = _row(response.content.decode(), issued.link.pk)
    assert "has until" in row and "deemed acceptance is possible only after that" in row


def test_an_auditor_sees_the_links_but_no_portal_actions(issued, portal_case, cast):
    erin_web = _client(cast["erin"])
    body = erin_web.get(f"/cases/{portal_case.ref}/").content.decode()
    row = _row(body, issued.link.pk)
    assert "Nina North" in row and "Remind" not in row and "Revoke" not in row
    assert "Send portal link" not in body
    refused = erin_web.post(
        f"/cases/{portal_case.ref}/portal/links/{issued.link.pk}/revoke",
        {"reason": "x", "confirm": "revoke"},
    )
    assert refused.status_code == 403
    issued.link.refresh_from_db()
    assert issued.link.revoked_at is None


def test_revoking_without_its_confirmation_is_refused_and_the_link_keeps_working(
    alice_web, issued, portal_case
):
    before = LedgerEntry.objects.count()
    response = alice_web.post(
        f"/cases/{portal_case.ref}/portal/links/{issued.link.pk}/revoke",
        {"reason": "Sent to the wrong person"},
    )
    assert response.status_code == 422
    body = response.content.decode()
    dialog = re.search(
        rf'<dialog id="confirm-revoke-{issued.link.pk}"[^>]*>.*?</dialog>', body, re.S
    ).group(0)
    assert "The portal link of Nina North was not revoked: revoking is final" in dialog
    assert " open" in dialog.split(">", 1)[0] and "stops working at once" in dialog
    assert ">Sent to the wrong person</textarea>" in dialog
    issued.link.refresh_from_db()
    assert issued.link.revoked_at is None and LedgerEntry.objects.count() == before
    assert Client().get(f"/portal/{token_of(issued.url)}/").status_code == 200


def test_links_of_another_case_or_organization_are_404(
    alice_web, issued, portal_case, other_case, mallory
):
    assert (
        alice_web.post(f"/cases/{other_case.ref}/portal/links/{issued.link.pk}/revoke").status_code
        == 404
    )
    outsider = _client(mallory)
    assert (
        outsider.post(f"/cases/{portal_case.ref}/portal/links/{issued.link.pk}/revoke").status_code
        == 404
    )
    issued.link.refresh_from_db()
    assert issued.link.revoked_at is None


def test_a_dispute_shows_on_the_items_row_and_in_the_answers(alice_web, alice, issued, portal_case):
    ads = portal_case.handover_items.order_by("id").first()
    page = Client().get(f"/portal/{token_of(issued.url)}/").content.decode()
    dispute_item(
        link=issued.link,
        item=f"handover_item:{ads.pk}",
        comment="We have no admin rights on the ads account yet.",
        manifest_sha256=shown_digest(page),
        ip="127.0.0.1",
        user_agent="test",
    )
    body = alice_web.get(f"/cases/{portal_case.ref}/").content.decode()
    row = re.search(rf'<li id="handover_items-{ads.pk}".*?</li>', body, re.S)[0]
    assert "Disputed by Nina North" in row
    assert "We have no admin rights on the ads account yet." in row
    answers = body[body.index("Answers from the client") :]
    assert "disputed" in answers and f'href="#handover_items-{ads.pk}"' in answers
    # Resolved (handed over again), the row no longer carries the dispute; the answer stays.
    from offboard.cases.services import update_register_item

    update_register_item(actor=alice, item=ads, values={"status": "handed_over"})
    body = alice_web.get(f"/cases/{portal_case.ref}/").content.decode()
    row = re.search(rf'<li id="handover_items-{ads.pk}".*?</li>', body, re.S)[0]
    assert "Disputed by" not in row
    assert "We have no admin rights" in body[body.index("Answers from the client") :]


def _row(body: str, link_id: int) -> str:
    found = re.search(rf'<li id="portal-link-{link_id}".*?</li>', body, re.S)
    assert found, f"no row for portal link {link_id}"
    return found[0]
