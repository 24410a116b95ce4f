"""Webhook endpoints through the services, the API and the web: admins only, another
organization's endpoint not found, every refusal naming its field and writing nothing, the
secret shown once and kept sealed, and internal addresses refused (SSRF)."""

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from offboard.core.errors import NotFound, PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry
from offboard.webhooks import delivery as deliverer
from offboard.webhooks import selectors
from offboard.webhooks.addresses import AddressRefused, Target, resolve
from offboard.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from offboard.webhooks.services import (
    create_webhook_endpoint,
    delete_webhook_endpoint,
    disable_webhook_endpoint,
)
from tests.api.conftest import Api, token_for
from tests.webhooks.conftest import Receiver


def counts() -> dict[str, int]:
    return {
        "events": LedgerEntry.objects.count(),
        "endpoints": WebhookEndpoint.objects.count(),
        "deliveries": WebhookDelivery.objects.count(),
        "attempts": WebhookAttempt.objects.count(),
    }


def test_the_secret_is_returned_once_and_stored_sealed(alice: Any, settings: Any) -> None:
    issued = create_webhook_endpoint(actor=alice, name="CRM", url="https://crm.example.com/h")
    stored = WebhookEndpoint.objects.get()
    assert issued.secret.startswith("whsec_")
    assert issued.secret not in stored.secret_sealed and stored.secret_sealed.startswith("v1:")
    assert selectors.signing_secrets(stored, dt.datetime.now(dt.UTC)) == [issued.secret]
    (event,) = LedgerEntry.objects.filter(type="webhook_endpoint.created")
    assert issued.secret not in bytes(event.body).decode()
    assert event.data["url"] == "https://crm.example.com/h"


@pytest.mark.parametrize("role", ["bob", "dave", "erin", "oscar"])
def test_only_an_admin_manages_endpoints(cast: dict[str, Any], role: str) -> None:
    before = counts()
    with pytest.raises(PermissionDenied):
        create_webhook_endpoint(actor=cast[role], name="CRM", url="https://crm.example.com/h")
    endpoint = create_webhook_endpoint(
        actor=cast["alice"], name="CRM", url="https://crm.example.com/h"
    ).endpoint
    before = counts()
    with pytest.raises(PermissionDenied):
        disable_webhook_endpoint(actor=cast[role], endpoint=endpoint)
    assert counts() == before


def test_another_organizations_endpoint_does_not_exist(alice: Any, mallory: Any) -> None:
    endpoint = create_webhook_endpoint(
        actor=alice, name="CRM", url="https://crm.example.com/h"
    ).endpoint
    before = counts()
    with pytest.raises(NotFound):
        selectors.get_endpoint(mallory.org, str(endpoint.public_id))
    with pytest.raises(NotFound):
        delete_webhook_endpoint(actor=mallory, endpoint=endpoint)
    assert counts() == before


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://crm.example.com/h", "must start with https://"),
        ("https://user:pw@crm.example.com/h", "user:password@"),
        ("https:///h", "has no host"),
        ("https://crm.example.com:99999/h", "port"),
        ("https://crm.example.com/h h", "spaces"),
        ("http://127.0.0.1:8000/h", "internal address (127.0.0.1)"),
        ("http://10.1.2.3/h", "internal address"),
        ("http://[::1]/h", "internal address"),
        ("http://169.254.169.254/latest/meta-data", "internal address"),
        ("http://localhost/h", "internal address"),
    ],
)
def test_a_bad_or_internal_url_is_refused_naming_the_field(
    alice: Any, settings: Any, url: str, problem: str
) -> None:
    settings.OFFBOARD_WEBHOOKS_ALLOW_PRIVATE = False
    before = counts()
    with pytest.raises(ValidationFailed) as refused:
        create_webhook_endpoint(actor=alice, name="CRM", url=url)
    assert problem in " ".join(refused.value.errors["url"])
    assert counts() == before


def test_every_problem_is_named_at_once(alice: Any) -> None:
    create_webhook_endpoint(actor=alice, name="CRM", url="https://crm.example.com/h")
    with pytest.raises(ValidationFailed) as refused:
        create_webhook_endpoint(actor=alice, name="CRM", url="", event_types=["Case!", "case.*"])
    assert set(refused.value.errors) == {"name", "url", "event_types"}
    assert "'Case!' is not an event type" in refused.value.errors["event_types"][0]


def test_at_delivery_a_host_resolving_to_an_internal_address_is_refused(
    alice: Any, receiver: Receiver, settings: Any
) -> None:
    from offboard.clients.services import create_client

    create_webhook_endpoint(actor=alice, name="Local", url=f"http://localhost:{receiver.port}/h")
    settings.OFFBOARD_WEBHOOKS_ALLOW_PRIVATE = False  # production: turned off after saving
    with pytest.raises(AddressRefused, match="resolves to an internal address"):
        resolve(Target("http", "localhost", receiver.port, "/"))
    create_client(actor=alice, name="Northwind Traders")
    assert deliverer.deliver_due()["failed"] == 1
    assert receiver.requests == []  # never connected
    owed = WebhookDelivery.objects.get()
    assert "resolves to an internal address" in owed.last_error


# --- the API ----------------------------------------------------------------------------------


def test_the_api_creates_lists_rotates_disables_and_deletes(
    cast: dict[str, Any], receiver: Receiver
) -> None:
    from offboard.clients.services import create_client

    api = Api(token_for(cast["alice"]))
    made = api.post("/webhooks", {"name": "CRM", "url": receiver.url, "event_types": ["client.*"]})
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["secret"].startswith("whsec_") and body["state"] == "active"
    endpoint_id = body["id"]
    listed = api.get("/webhooks").json()
    assert listed["count"] == 1 and "secret" not in listed["items"][0]
    assert api.get(f"/webhooks/{endpoint_id}").json()["event_types"] == ["client.*"]

    receiver.secrets = [body["secret"]]
    create_client(actor=cast["alice"], name="Northwind Traders")
    deliverer.deliver_due()
    log = api.get(f"/webhooks/{endpoint_id}/deliveries").json()
    (shown,) = log["items"]
    assert shown["state"] == "delivered" and shown["attempt_log"][0]["status_code"] == 200

    receiver.status = 503
    again = api.post(f"/webhooks/{endpoint_id}/deliveries/{shown['id']}/redeliver")
    assert again.status_code == 200, again.content
    assert [a["status_code"] for a in again.json()["attempt_log"]] == [503, 200]
    assert again.json()["attempt_log"][0]["manual"] is True
    assert receiver.requests[-1].id == shown["id"]

    rotated = api.post(f"/webhooks/{endpoint_id}/rotate").json()
    assert rotated["secret"] != body["secret"] and rotated["previous_secret_valid_until"]
    assert (
        api.post(f"/webhooks/{endpoint_id}/disable", {"reason": "maintenance"}).json()["state"]
        == "disabled"
    )
    refused = api.post(f"/webhooks/{endpoint_id}/deliveries/{shown['id']}/redeliver")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "endpoint_disabled"
    assert api.post(f"/webhooks/{endpoint_id}/enable").json()["state"] == "active"
    assert api.delete(f"/webhooks/{endpoint_id}").status_code == 204
    assert api.get(f"/webhooks/{endpoint_id}").status_code == 404
    assert api.get("/webhooks").json()["count"] == 0


def test_the_api_refuses_unknown_fields_and_wrong_types(cast: dict[str, Any]) -> None:
    api = Api(token_for(cast["alice"]))
    before = counts()
    assert (
        api.post(
            "/webhooks", {"name": "CRM", "url": "https://x.example", "secret": "mine"}
        ).status_code
        == 422
    )
    assert (
        api.post(
            "/webhooks", {"name": "CRM", "url": "https://x.example", "event_types": "case.*"}
        ).status_code
        == 422
    )
    bad = api.post("/webhooks", {"name": "CRM", "url": "gopher://x.example"})
    assert bad.status_code == 422 and "url" in bad.json()["error"]["details"]["fields"]
    assert counts() == before


def test_the_api_reads_are_for_admins_only(cast: dict[str, Any]) -> None:
    endpoint = create_webhook_endpoint(
        actor=cast["alice"], name="CRM", url="https://crm.example.com/h"
    ).endpoint
    erin = Api(token_for(cast["erin"]))
    assert erin.get("/webhooks").status_code == 403
    assert erin.get(f"/webhooks/{endpoint.public_id}/deliveries").status_code == 403


# --- the web ----------------------------------------------------------------------------------


def _login(name: str) -> Client:
    client = Client()
    client.login(username=name, password="correct horse 1")
    return client


def test_the_settings_card_adds_an_endpoint_and_shows_the_secret_once(
    cast: dict[str, Any], receiver: Receiver
) -> None:
    web = _login("alice")
    page = web.get("/settings/")
    assert b"Outbound webhooks" in page.content
    made = web.post(
        "/settings/webhooks/",
        {"name": "CRM", "url": receiver.url, "event_types": "case.* client.created"},
    )
    assert made.status_code == 200 and made["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["case.*", "client.created"]
    secret = selectors.signing_secrets(endpoint, dt.datetime.now(dt.UTC))[0]
    assert secret.encode() in made.content
    assert secret.encode() not in web.get("/settings/").content

    refused = web.post("/settings/webhooks/", {"name": "CRM", "url": "nope"})
    assert refused.status_code == 422
    assert b"must start with https://" in refused.content and b"already" in refused.content


def test_the_delivery_log_page_and_its_redeliver_button(
    cast: dict[str, Any], endpoint: Any, receiver: Receiver
) -> None:
    from offboard.clients.services import create_client

    receiver.status = 500
    receiver.answer = b"<h1>Internal trouble</h1>"
    create_client(actor=cast["alice"], name="Northwind Traders")
    deliverer.deliver_due()
    web = _login("alice")
    page = web.get(f"/settings/webhooks/{endpoint.pk}/deliveries/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "HTTP 500" in text and "client.created" in text and "retrying" in text
    assert "&lt;h1&gt;Internal trouble" in text  # the receiver's answer, escaped

    receiver.status = 200
    owed = WebhookDelivery.objects.get()
    again = web.post(f"/settings/webhooks/{endpoint.pk}/deliveries/{owed.msg_id}/redeliver")
    assert again.status_code == 302
    owed.refresh_from_db()
    assert owed.state == "delivered"
    assert "HTTP 200" in web.get(f"/settings/webhooks/{endpoint.pk}/deliveries/").content.decode()

    assert _login("bob").get(f"/settings/webhooks/{endpoint.pk}/deliveries/").status_code == 403
    web.post(f"/settings/webhooks/{endpoint.pk}/disable")
    assert WebhookEndpoint.objects.get().state == "disabled"
    web.post(f"/settings/webhooks/{endpoint.pk}/delete")
    assert WebhookEndpoint.objects.get().state == "deleted"
    assert web.get(f"/settings/webhooks/{endpoint.pk}/deliveries/").status_code == 404
