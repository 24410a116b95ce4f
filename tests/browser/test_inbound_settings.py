"""Settings → Inbound webhooks on a phone (390 px) and a laptop (1366 px), as an admin uses it:
the list with its latest deliveries and a revoked endpoint, a new endpoint's secret shown
once, a rotation, and a refused form — each checked like every page of the matrix
(tests/browser/test_phone.py: nothing sideways, cut off or overlapping; axe-core)."""

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, log_in
from tests.browser.test_phone import SIZES, _context, _visit, check
from tests.inbound.conftest import Sender, event_body, url_of


@pytest.fixture
def endpoints(cast, playbooks, client_contract) -> dict[str, Any]:
    """A CRM endpoint that opened cases for three contracts of Northwind, and a revoked one."""
    import datetime as dt

    from offboard.clients.services import create_contract
    from offboard.inbound.services import create_inbound_endpoint, revoke_inbound_endpoint

    alice = cast["alice"]
    client, contract = client_contract
    crm = create_inbound_endpoint(
        actor=alice,
        name="HubSpot deals (contract terminated or not renewed)",
        case_owner_id=cast["bob"].user.pk,
        playbook_slug=playbooks["marketing_agency"].playbook.slug,
        open_as_draft=True,
    )
    sender = Sender(url_of(crm.endpoint), crm.secret)
    references = [contract.reference]
    for n in (2, 3):
        references.append(
            create_contract(
                actor=alice,
                client=client,
                reference=f"NW-2026-0{n}",
                service_type="marketing_agency",
                fee_type="retainer",
                start_date=dt.date(2026, 1, 1),
            ).reference
        )
    for i, reference in enumerate(references):
        answer = sender.post(
            event_body(contract_reference=reference),
            msg_id=f"msg_2PdHVsYv7fKq9gT3xZ{i}wLmN",
        )
        assert answer.status_code == 200, answer.content
    old = create_inbound_endpoint(actor=alice, name="Old PSA", case_owner_id=alice.user.pk)
    revoke_inbound_endpoint(actor=alice, endpoint=old.endpoint)
    return {"crm": crm.endpoint.pk}


@pytest.mark.django_db(transaction=True)
def test_the_inbound_webhooks_card_works_on_a_phone_and_a_laptop(chromium, live_server, endpoints):
    problems: list[str] = []
    heights: dict[str, int] = {}
    for width in SIZES:
        context = _context(chromium, live_server, width)
        page = context.new_page()
        log_in(page, "alice", PASSWORD)
        _visit(page, "/settings/#inbound")
        card = page.locator("#inbound")
        expect(card.get_by_text("receiving", exact=True).first).to_be_visible()
        assert card.locator("a", has_text="C-2026-").count() == 3
        problems += check(page, width, "admin", "settings-inbound", heights)

        card.get_by_text("+ Add an endpoint").click()
        page.locator("#inbound-name").fill(f"Salesforce {width}")
        page.get_by_label("Open cases as drafts").check()
        problems += check(page, width, "admin", "settings-inbound-form", heights)
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("#inbound-new-secret")
        assert secret.input_value().startswith("whsec_")
        assert "/api/v1/inbound/" in page.locator("#inbound-new-url").input_value()
        problems += check(page, width, "admin", "settings-inbound-created", heights)

        card = page.locator("#inbound")
        card.get_by_text("+ Add an endpoint").click()
        page.locator("#inbound-name").fill(f"Salesforce {width}")  # taken: refused
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#inbound-name-error")).to_be_visible()
        problems += check(page, width, "admin", "settings-inbound-refused", heights)

        _visit(page, "/settings/#inbound")
        row = page.locator("#inbound tr", has_text="HubSpot deals")
        row.locator("summary", has_text="Revoke").click()
        problems += check(page, width, "admin", "settings-inbound-revoke", heights)
        row.get_by_role("button", name="Rotate secret").click()
        expect(page.get_by_text("The previous secret keeps working for 24 hours.")).to_be_visible()
        problems += check(page, width, "admin", "settings-inbound-rotated", heights)
        context.close()
    assert not problems, "\n".join(problems)
