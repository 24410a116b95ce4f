"""Settings → Inbound webhooks: admins add an endpoint (its secret in that answer only), see
its latest deliveries, rotate its secret and revoke it; nobody else sees or changes one."""

import re
from typing import Any

import pytest
from django.test import Client

from offboard.inbound.models import InboundEndpoint
from offboard.ledger.models import LedgerEntry
from tests.inbound.conftest import Sender, event_body, url_of


def _browser(actor: Any) -> Client:
    web = Client()
    web.force_login(actor.user)
    return web


def _written() -> tuple[int, int]:
    return LedgerEntry.objects.count(), InboundEndpoint.objects.count()


def _shown(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*value="([^"]*)"', html)
    assert found, element_id
    return found.group(1)


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(cast, playbooks, client_contract):
    web = _browser(cast["alice"])

    response = web.post(
        "/settings/inbound/",
        {"name": "HubSpot deals", "case_owner_id": str(cast["bob"].user.pk), "playbook": ""},
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    secret = _shown(html, "inbound-new-secret")
    url = _shown(html, "inbound-new-url")
    endpoint = InboundEndpoint.objects.get()
    assert url == f"http://testserver/api/v1/inbound/{endpoint.public_id}/events"
    assert endpoint.case_owner == cast["bob"].user
    assert "“HubSpot deals” receives events." in html
    # The secret it showed is the one that verifies, and the settings page never shows it again.
    delivered = Sender(url.removeprefix("http://testserver"), secret).post(event_body())
    assert delivered.status_code == 200, delivered.content
    again = web.get("/settings/").content.decode()
    assert secret not in again
    assert 'id="inbound-new-secret"' not in again
    ref = delivered.json()["case"]["ref"]
    assert f'href="/cases/{ref}/"' in again
    assert "receiving" in again


def test_the_address_uses_the_configured_base_url(cast, playbooks, settings):
    settings.OFFBOARD_BASE_URL = "https://offboard.example.com/"

    response = _browser(cast["alice"]).post(
        "/settings/inbound/", {"name": "CRM", "case_owner_id": str(cast["alice"].user.pk)}
    )

    endpoint = InboundEndpoint.objects.get()
    assert _shown(response.content.decode(), "inbound-new-url") == (
        f"https://offboard.example.com/api/v1/inbound/{endpoint.public_id}/events"
    )


def test_a_refused_endpoint_says_why_next_to_each_field_and_writes_nothing(cast, playbooks):
    web = _browser(cast["alice"])  # signed in first: a sign-in is on the record too
    before = _written()

    response = web.post(
        "/settings/inbound/",
        {"name": "", "case_owner_id": str(cast["erin"].user.pk), "playbook": "nope"},
    )

    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="inbound-name-error">is required' in html
    assert "erin is an auditor and cannot own work" in html
    assert "no playbook &#x27;nope&#x27; in this organization" in html
    assert '<details class="add-member" open>' in html
    assert _written() == before


@pytest.mark.parametrize("role", ["bob", "dave", "erin", "oscar"])
def test_only_admins_see_the_card_and_others_may_change_nothing(cast, playbooks, role):
    from offboard.inbound.services import create_inbound_endpoint

    issued = create_inbound_endpoint(
        actor=cast["alice"], name="CRM", case_owner_id=cast["alice"].user.pk
    )
    web = _browser(cast[role])
    before = _written()

    page = web.get("/settings/").content.decode()
    created = web.post(
        "/settings/inbound/", {"name": "Mine", "case_owner_id": str(cast[role].user.pk)}
    )
    rotated = web.post(f"/settings/inbound/{issued.endpoint.pk}/rotate")
    revoked = web.post(f"/settings/inbound/{issued.endpoint.pk}/revoke")

    assert 'id="inbound"' not in page and "Inbound webhooks" not in page
    assert [created.status_code, rotated.status_code, revoked.status_code] == [403, 403, 403]
    assert "needs one of: admin" in created.content.decode()
    assert _written() == before
    assert InboundEndpoint.objects.get().enabled


def test_an_admin_rotates_a_secret_and_revokes_an_endpoint(cast, playbooks):
    from offboard.inbound.services import create_inbound_endpoint

    issued = create_inbound_endpoint(
        actor=cast["alice"], name="CRM", case_owner_id=cast["alice"].user.pk
    )
    web = _browser(cast["alice"])

    rotated = web.post(f"/settings/inbound/{issued.endpoint.pk}/rotate")
    html = rotated.content.decode()
    new_secret = _shown(html, "inbound-new-secret")
    assert rotated["Cache-Control"] == "no-store"
    assert new_secret != issued.secret
    assert "The previous secret keeps working for 24 hours." in html

    revoked = web.post(f"/settings/inbound/{issued.endpoint.pk}/revoke")
    assert revoked.status_code == 302
    assert revoked["Location"] == "/settings/#inbound"
    page = web.get("/settings/").content.decode()
    assert "revoked" in page
    assert Sender(url_of(issued.endpoint), new_secret).post(event_body()).status_code == 404
    twice = web.post(f"/settings/inbound/{issued.endpoint.pk}/revoke")
    assert twice.status_code == 409
    assert "was revoked on" in twice.content.decode()


def test_another_organizations_endpoint_is_a_404(cast, playbooks, mallory):
    from offboard.inbound.services import create_inbound_endpoint

    issued = create_inbound_endpoint(
        actor=cast["alice"], name="Acme's HubSpot", case_owner_id=cast["alice"].user.pk
    )
    web = _browser(mallory)
    before = _written()

    for action in ("rotate", "revoke"):
        assert web.post(f"/settings/inbound/{issued.endpoint.pk}/{action}").status_code == 404
    page = web.get("/settings/").content.decode()
    assert "Acme&#x27;s HubSpot" not in page
    assert str(issued.endpoint.public_id) not in page
    assert _written() == before
