"""Settings → API tokens on a phone (390 px) and a laptop (1366 px), as an admin uses it: every
member's tokens with their scopes, expiry, creator and last use, a new token made with chosen
scopes and shown once, a refused expiry, a colleague's token revoked — each checked like every
page of the matrix (tests/browser/test_phone.py: nothing sideways, cut off or overlapping;
axe-core)."""

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, log_in
from tests.browser.test_phone import SIZES, _context, _visit, check


@pytest.fixture
def tokens(cast) -> dict[str, Any]:
    from offboard.accounts.services import create_api_token, revoke_api_token

    create_api_token(actor=cast["bob"], name="CRM integration (nightly sync)")
    create_api_token(actor=cast["erin"], name="Audit export", scopes=["read", "exports"])
    old, _ = create_api_token(actor=cast["oscar"], name="Old laptop", scopes=["read"])
    revoke_api_token(actor=cast["alice"], token=old)
    return {}


@pytest.mark.django_db(transaction=True)
def test_the_api_tokens_card_works_on_a_phone_and_a_laptop(chromium, live_server, tokens):
    problems: list[str] = []
    heights: dict[str, int] = {}
    for width in SIZES:
        context = _context(chromium, live_server, width)
        page = context.new_page()
        log_in(page, "alice", PASSWORD)
        _visit(page, "/settings/#tokens")
        card = page.locator("#tokens")
        expect(card.locator("td.cell-lead", has_text="Audit export")).to_be_visible()
        expect(card.get_by_text("read, exports")).to_be_visible()
        expect(card.locator(".badge", has_text="revoked").first).to_be_visible()
        problems += check(page, width, "admin", "settings-tokens", heights)

        page.locator("#token-name").fill(f"Dashboard {width}")
        for scope in ("cases:write", "clients:write", "admin", "tokens"):
            card.locator(f'input[name="scopes"][value="{scope}"]').uncheck()
        card.get_by_role("button", name="Create token").click()
        assert page.locator("#new-token").input_value().startswith("obt_")
        problems += check(page, width, "admin", "settings-tokens-created", heights)

        page.locator("#token-name").fill("Too long")
        page.locator("#token-expires").evaluate("e => { e.removeAttribute('max'); }")
        page.locator("#token-expires").fill("2099-01-01")
        page.locator("#tokens").get_by_role("button", name="Create token").click()
        expect(page.locator("#token-expires-error")).to_be_visible()
        problems += check(page, width, "admin", "settings-tokens-refused", heights)

        _visit(page, "/settings/#tokens")
        row = page.locator("#tokens tr", has_text="CRM integration")
        if row.get_by_role("button", name="Revoke").count():
            row.get_by_role("button", name="Revoke").click()
            expect(page.locator("#tokens tr", has_text="CRM integration")).to_contain_text(
                "revoked"
            )
        context.close()
    assert not problems, "\n".join(problems)
