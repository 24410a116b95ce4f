"""Settings → Security on a phone (390 px) and a laptop (1366 px): an admin's own sessions
and everyone's, signing a colleague's session out; and the "Forgot your password?" pages —
each checked like every page of the matrix (tests/browser/test_phone.py)."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, log_in
from tests.browser.test_phone import SIZES, _context, _visit, check
from tests.security.conftest import SAFARI_IPHONE


def _elsewhere(username: str, ip: str, agent: str = SAFARI_IPHONE) -> Client:
    c = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert c.post("/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return c


@pytest.mark.django_db(transaction=True)
def test_the_security_page_works_on_a_phone_and_a_laptop(chromium, live_server, cast):
    problems: list[str] = []
    heights: dict[str, int] = {}
    for width in sorted(SIZES):
        _elsewhere("alice", "198.51.100.20")
        bob = _elsewhere("bob", f"192.0.2.{width % 250}")
        _elsewhere(
            "carol",
            "192.0.2.201",
            agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0",
        )
        context = _context(chromium, live_server, width)
        page = context.new_page()
        _visit(page, "/login/")
        expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()
        page.get_by_role("link", name="Forgot your password?").click()
        expect(page.get_by_label("Username or e-mail address")).to_be_visible()
        problems += check(page, width, "visitor", "password-reset", heights)
        page.get_by_label("Username or e-mail address").fill("nobody@example.com")
        page.get_by_role("button", name="Send the link").click()
        expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
        problems += check(page, width, "visitor", "password-reset-sent", heights)

        log_in(page, "alice", PASSWORD)
        _visit(page, "/settings/")
        page.get_by_role("link", name="Security & sessions").click()
        expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
        mine = page.locator("#sessions")
        expect(mine.get_by_text("this session")).to_be_visible()
        expect(mine.get_by_role("cell", name="Safari on iPhone", exact=True)).to_be_visible()
        everyone = page.locator("#everyone")
        expect(
            everyone.locator("td[data-label=Device]", has_text="Edge on Windows").first
        ).to_be_visible()
        problems += check(page, width, "admin", "settings-security", heights)

        row = everyone.locator("tr", has_text="bob")
        row.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text("1 session was signed out.")).to_be_visible()
        assert page.locator("#everyone tr", has_text="bob").count() == 0
        assert bob.get("/settings/security/").status_code == 302  # that browser is out
        page.get_by_role("button", name="Sign out everywhere else").click()
        # the other browser signed in above, and (at the second width) the first width's page
        ended = "1 session was" if width == 390 else "2 sessions were"
        expect(page.get_by_text(f"{ended} signed out.")).to_be_visible()
        expect(page.locator("#sessions tbody tr")).to_have_count(1)
        problems += check(page, width, "admin", "settings-security-ended", heights)
        context.close()
    assert not problems, "\n".join(problems)
