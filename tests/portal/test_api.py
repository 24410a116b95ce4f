"""The portal endpoints of the REST API: the URL answered once, lists, revoke, reminders,
deemed acceptance, and the roles."""

import datetime as dt

from django.core import mail

from offboard.portal.models import PortalLink
from offboard.portal.selectors import link_for_token
from tests.api.conftest import fields_of
from tests.portal.conftest import move_clock, token_of


def test_issuing_answers_the_url_once_and_the_list_never_again(api, portal_case, nina):
    mail.outbox.clear()
    response = api("bob").post(
        f"/cases/{portal_case.ref}/portal-links",
        {"contact_email": "NINA@northwind.example", "days": 20, "respond_days": 10},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"].startswith("http://testserver/portal/")
    assert link_for_token(token_of(body["url"])).pk == body["id"]
    assert body["contact"]["email"] == "nina@northwind.example"
    assert body["status"] == "active" and body["emailed"] is True
    assert body["created_by"]["username"] == "bob"
    assert body["case"] == portal_case.ref
    assert body["url"] in mail.outbox[0].body
    listed = api("erin").get(f"/cases/{portal_case.ref}/portal-links").json()
    assert listed["count"] == 1
    assert "url" not in listed["items"][0]
    assert token_of(body["url"]) not in str(listed)


def test_issuing_by_contact_id_and_its_field_errors(api, portal_case, nina, other_case):
    ok = api("alice").post(
        f"/cases/{portal_case.ref}/portal-links", {"contact_id": nina.pk, "send_email": False}
    )
    assert ok.status_code == 201 and ok.json()["emailed"] is False

    carl = other_case.client.contacts.get()
    wrong = api("alice").post(f"/cases/{portal_case.ref}/portal-links", {"contact_id": carl.pk})
    assert wrong.status_code == 422
    assert fields_of(wrong) == {"contact_id": [f"no contact {carl.pk} of Northwind Traders"]}

    long = api("alice").post(
        f"/cases/{portal_case.ref}/portal-links", {"contact_id": nina.pk, "days": 365}
    )
    assert long.status_code == 422 and "days" in fields_of(long)
    assert PortalLink.objects.count() == 1


def test_an_operator_or_auditor_cannot_issue_links(api, portal_case):
    for who in ("oscar", "erin"):
        response = api(who).post(
            f"/cases/{portal_case.ref}/portal-links", {"contact_email": "nina@northwind.example"}
        )
        assert response.status_code == 403
        assert response.json()["error"]["details"]["capability"] == "portal.links"
    assert not PortalLink.objects.exists()


def test_revoking_through_the_api(api, issued, token):
    response = api("alice").post(
        f"/portal-links/{issued.link.pk}/revoke", {"reason": "Wrong person"}
    )

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revoked_by"]["username"] == "alice"
    assert link_for_token(token) is None
    again = api("alice").post(f"/portal-links/{issued.link.pk}/revoke", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_revoked"


def test_reminders_then_deemed_acceptance_through_the_api(api, issued, portal_case, monkeypatch):
    early = api("bob").post(f"/portal-links/{issued.link.pk}/deemed-acceptance", {})
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "deadline_not_passed"

    first = api("alice").post(f"/portal-links/{issued.link.pk}/reminders")
    second = api("alice").post(f"/portal-links/{issued.link.pk}/reminders")
    assert first.status_code == second.status_code == 201
    assert first.json()["contact"]["name"] == "Nina North"
    assert {i["kind"] for i in first.json()["items"]} == {"deliverable", "handover_item"}
    move_clock(monkeypatch, dt.timedelta(days=15))

    by_operator = api("oscar").post(f"/portal-links/{issued.link.pk}/deemed-acceptance", {})
    assert by_operator.status_code == 403
    response = api("bob").post(f"/portal-links/{issued.link.pk}/deemed-acceptance", {})

    assert response.status_code == 200, response.content
    items = response.json()["items"]
    assert [i["status"] for i in items] == ["deemed_accepted", "deemed_accepted"]
    cited = f"#{first.json()['event_index']}, #{second.json()['event_index']}"
    assert all(cited in i["acceptance_note"] for i in items)
    listed = api("bob").get(f"/cases/{portal_case.ref}/portal-links").json()["items"][0]
    assert listed["reminders"] == 2 and listed["responses"] == 0


def test_a_reminder_the_mail_server_refuses_is_a_502_and_not_recorded(api, issued, settings):
    from tests.smtp import LocalSMTP

    LocalSMTP().configure(settings, timeout=2)

    response = api("alice").post(f"/portal-links/{issued.link.pk}/reminders")

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "email_failed"
    assert "Nothing was recorded" in response.json()["error"]["message"]
