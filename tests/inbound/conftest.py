"""Sending events to an inbound endpoint as a sender would: each delivery signed with the
Standard Webhooks scheme, computed here independently of `offboard.inbound.signatures`."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from offboard.core.actor import Actor


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The scheme as the Standard Webhooks specification states it: the key is the base64
    after `whsec_`, the signed content `{id}.{timestamp}.{body}`, the signature `v1,` and the
    base64 of the HMAC-SHA256."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def event_body(**data: Any) -> bytes:
    """A `contract.not_renewed` event for Northwind's contract, with `data` changed."""
    kind = data.pop("type", "contract.not_renewed")
    fields = {"contract_reference": "NW-2025-01", "trigger_date": "2026-11-02", **data}
    return json.dumps(
        {"type": kind, "data": {k: v for k, v in fields.items() if v is not None}}
    ).encode()


class Sender:
    """A CRM posting to one endpoint: `sender.post(body)` signs and sends; keyword arguments
    replace what a well-behaved sender would send."""

    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret
        self.client = Client(enforce_csrf_checks=True)
        self.sent = 0

    def post(
        self,
        body: bytes,
        *,
        msg_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> Any:
        self.sent += 1
        msg_id = msg_id or f"msg_test{self.sent:04d}"
        timestamp = int(time.time()) if timestamp is None else timestamp
        if signature is None:
            signature = standard_webhooks_signature(secret or self.secret, msg_id, timestamp, body)
        sent = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
            "User-Agent": "crm-test/1.0",
        }
        sent.update(headers or {})
        return self.client.post(
            url or self.url,
            body,
            content_type="application/json",
            headers={k: v for k, v in sent.items() if v is not None},
        )


def url_of(endpoint: Any) -> str:
    return f"/api/v1/inbound/{endpoint.public_id}/events"


@pytest.fixture
def issued(alice: Actor, playbooks: dict[str, Any], client_contract: Any) -> Any:
    from offboard.inbound.services import create_inbound_endpoint

    return create_inbound_endpoint(actor=alice, name="HubSpot deals", case_owner_id=alice.user.pk)


@pytest.fixture
def sender(issued: Any) -> Sender:
    return Sender(url_of(issued.endpoint), issued.secret)


@pytest.fixture
def rows() -> Callable[[], dict[str, int]]:
    """Counts of everything a delivery could write."""

    def count() -> dict[str, int]:
        from offboard.cases.models import OffboardingCase, Step
        from offboard.inbound.models import InboundDelivery, InboundEndpoint
        from offboard.ledger.models import LedgerEntry

        return {
            "cases": OffboardingCase.objects.count(),
            "steps": Step.objects.count(),
            "deliveries": InboundDelivery.objects.count(),
            "endpoints": InboundEndpoint.objects.count(),
            "events": LedgerEntry.objects.count(),
        }

    return count
