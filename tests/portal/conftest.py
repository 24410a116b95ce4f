"""The portal's cast: Acme's case for Northwind Traders with two deliverables delivered (with
files), one still pending, handover items handed over; Nina North is Northwind's contact and
holds a portal link. Another client's case holds a file the link must never serve."""

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client

from offboard.core import clock
from tests.api.conftest import api
from tests.factories import upload
from tests.smtp import smtp

__all__ = ["api", "smtp"]

BASE = "http://testserver"
UA = "Mozilla/5.0 (X11; Linux x86_64) PortalTest/1.0"
INTERNAL_NOTE = "Internal: Northwind pays late, keep this to ourselves"
VAULT_REFERENCE = "1Password: Acme/Clients/Northwind/ads-admin"


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def shown_digest(html: str) -> str:
    """The manifest digest a page embeds in its forms."""
    found = re.search(r'name="(?:m|manifest_sha256)" value="([0-9a-f]{64})"', html)
    assert found, "no manifest digest on the page"
    return found[1]


def move_clock(monkeypatch: Any, delta: dt.timedelta) -> dt.datetime:
    moved = dt.datetime.now(dt.UTC) + delta
    monkeypatch.setattr(clock, "now", lambda: moved)
    return moved


def upload_files(alice: Any) -> dict[str, Any]:
    return {
        "report": upload(alice, b"%PDF-1.4 final campaign report\n" * 40, "final-report.pdf"),
        "assets": upload(alice, b"PK\x03\x04 creative assets archive", "creative-assets.zip"),
        "ads": upload(alice, b"%PDF-1.4 ads account transfer screenshot\n", "ads-transfer.pdf"),
    }


def deliver_work(case: Any, cast: dict[str, Any], files: dict[str, Any]) -> Any:
    """Deliverables 0 and 1 delivered with files, 2 pending; handover items 0 and 1 handed
    over (0 with a file), the rest planned. Through the services, as a team would."""
    from offboard.cases.services import update_register_item
    from offboard.cases.state import fresh

    alice = cast["alice"]
    case = fresh(case)
    d = list(case.deliverables.all())
    update_register_item(
        actor=alice,
        item=d[0],
        values={"status": "delivered", "delivery_method": "Shared drive", "notes": INTERNAL_NOTE},
        evidence=[files["report"]],
    )
    update_register_item(
        actor=alice,
        item=d[1],
        values={"status": "delivered", "delivery_method": "WeTransfer"},
        evidence=[files["assets"]],
    )
    h = list(case.handover_items.all())
    update_register_item(
        actor=alice,
        item=h[0],
        values={
            "status": "handed_over",
            "method": h[0].method or "Ownership transferred",
            "new_owner": "Northwind marketing",
            "reference": VAULT_REFERENCE,
        },
        evidence=[files["ads"]],
    )
    update_register_item(
        actor=alice,
        item=h[1],
        values={"status": "handed_over", "method": h[1].method or "Ownership transferred"},
    )
    return fresh(case)


@pytest.fixture
def files(alice: Any) -> dict[str, Any]:
    return upload_files(alice)


@pytest.fixture
def portal_case(case: Any, cast: dict[str, Any], files: dict[str, Any]) -> Any:
    return deliver_work(case, cast, files)


@pytest.fixture
def nina(client_contract: Any) -> Any:
    return client_contract[0].contacts.get(email="nina@northwind.example")


@pytest.fixture
def issued(portal_case: Any, alice: Any, nina: Any) -> Any:
    from offboard.portal.services import issue_portal_link

    return issue_portal_link(actor=alice, case=portal_case, contact=nina, base_url=BASE)


@pytest.fixture
def token(issued: Any) -> str:
    return token_of(issued.url)


@pytest.fixture
def visitor() -> Client:
    """The contact's browser: no login, its own user agent, from 127.0.0.1."""
    return Client(HTTP_USER_AGENT=UA)


@pytest.fixture
def other_case(alice: Any, playbooks: dict[str, Any]) -> Any:
    """Another client's case of the same organization, with a file of its own."""
    from offboard.cases.services import open_case, update_register_item
    from offboard.clients.services import add_contact, create_client, create_contract

    client = create_client(actor=alice, name="Contoso Pharma")
    add_contact(
        actor=alice,
        client=client,
        name="Carl Contoso",
        email="carl@contoso.example",
        role="primary",
    )
    contract = create_contract(
        actor=alice,
        client=client,
        reference="CP-2025-07",
        service_type="marketing_agency",
        fee_type="fixed",
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2026, 12, 31),
    )
    other = open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="non_renewal",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"],
    )
    secret = upload(alice, b"%PDF-1.4 Contoso confidential pricing\n", "contoso-pricing.pdf")
    update_register_item(
        actor=alice,
        item=other.deliverables.first(),
        values={"status": "delivered"},
        evidence=[secret],
    )
    other.secret_file = secret
    return other


@pytest.fixture
def bob(cast: dict[str, Any]) -> Any:
    return cast["bob"]
