"""Settings → Outbound webhooks and an endpoint's delivery log on a phone (390 px) and a laptop
(1366 px), as an admin uses them: the card with an active and a disabled endpoint, a new
endpoint's secret shown once, a refused form, a rotation, and the delivery log with a 500, a
receiver that was down, and a redelivery — each checked like every page of the matrix
(tests/browser/test_phone.py: nothing sideways, cut off or overlapping; axe-core)."""

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, log_in
from tests.browser.test_phone import SIZES, _context, _visit, check
from tests.webhooks.conftest import Receiver, receiver

__all__ = ["receiver"]


@pytest.fixture
def hooks(cast, client_contract, receiver: Receiver) -> dict[str, Any]:
    from offboard.clients.services import create_client
    from offboard.webhooks.delivery import deliver_due
    from offboard.webhooks.services import create_webhook_endpoint, disable_webhook_endpoint

    alice = cast["alice"]
    crm = create_webhook_endpoint(
        actor=alice,
        name="HubSpot (cases and clients)",
        url=receiver.url,
        event_types=["case.*", "client.*", "contract.created"],
    )
    old = create_webhook_endpoint(
        actor=alice, name="Old PSA", url="https://psa.example.com/hooks/offboard-events"
    )
    disable_webhook_endpoint(actor=alice, endpoint=old.endpoint, reason="moving to HubSpot")
    receiver.secrets = [crm.secret]
    create_client(actor=alice, name="Lumen Architecture Studio")
    deliver_due()
    receiver.status, receiver.answer = 500, b'{"error": "upstream timeout talking to the CRM"}'
    create_client(actor=alice, name="Contoso Legal LLP")
    deliver_due()
    receiver.down()
    create_client(actor=alice, name="Fabrikam Accounting")
    deliver_due()
    receiver.status, receiver.answer = 200, b"ok"
    receiver.up()
    return {"crm": crm.endpoint.pk}


@pytest.mark.django_db(transaction=True)
def test_the_outbound_webhooks_card_and_log_work_on_a_phone_and_a_laptop(
    chromium, live_server, hooks, receiver
):
    problems: list[str] = []
    heights: dict[str, int] = {}
    for width in SIZES:
        context = _context(chromium, live_server, width)
        page = context.new_page()
        log_in(page, "alice", PASSWORD)
        _visit(page, "/settings/#webhooks")
        card = page.locator("#webhooks")
        expect(card.get_by_text("active", exact=True).first).to_be_visible()
        expect(card.get_by_text("moving to HubSpot")).to_be_visible()
        problems += check(page, width, "admin", "settings-webhooks", heights)

        card.get_by_text("+ Add an endpoint").click()
        page.locator("#webhook-name").fill(f"Slack {width}")
        page.locator("#webhook-url").fill(receiver.url)
        page.locator("#webhook-types").fill("case.closed, case.cancelled")
        problems += check(page, width, "admin", "settings-webhooks-form", heights)
        page.get_by_role("button", name="Add endpoint").click()
        assert page.locator("#webhook-new-secret").input_value().startswith("whsec_")
        problems += check(page, width, "admin", "settings-webhooks-created", heights)

        card = page.locator("#webhooks")
        card.get_by_text("+ Add an endpoint").click()
        page.locator("#webhook-name").fill(f"Slack {width}")  # taken: refused
        page.locator("#webhook-url").fill(receiver.url)
        page.locator("#webhook-types").fill("Case closed")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#webhook-name-error")).to_be_visible()
        expect(page.locator("#webhook-types-error")).to_be_visible()
        problems += check(page, width, "admin", "settings-webhooks-refused", heights)

        _visit(page, "/settings/#webhooks")
        row = page.locator("#webhooks tr", has_text="HubSpot (cases")
        row.get_by_role("button", name="Rotate secret").click()
        expect(page.get_by_text("The previous secret signs too for 24 hours.")).to_be_visible()
        problems += check(page, width, "admin", "settings-webhooks-rotated", heights)

        _visit(page, f"/settings/webhooks/{hooks['crm']}/deliveries/")
        expect(page.get_by_text("HTTP 500").first).to_be_visible()
        expect(page.get_by_text("refused the connection").first).to_be_visible()
        problems += check(page, width, "admin", "webhook-deliveries", heights)
        page.locator("tr", has_text="retrying").first.get_by_role(
            "button", name="Redeliver"
        ).click()
        expect(page.get_by_text("(redelivery)").first).to_be_visible()
        problems += check(page, width, "admin", "webhook-deliveries-redelivered", heights)
        context.close()
    assert not problems, "\n".join(problems)
