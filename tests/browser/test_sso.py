"""Single sign-on in Chromium against a real OpenID provider on loopback: from the login page's
link to the provider and back, signed in with the role of one's group; the SSO settings page
and the "SSO required" login message, each checked on a phone (390 px) and a laptop (1366 px)
like every page of the matrix (tests/browser/test_phone.py)."""

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from offboard.accounts.models import Membership
from offboard.sso import oidc
from offboard.sso.services import configure_sso
from tests.browser.conftest import PASSWORD
from tests.browser.test_phone import SIZES, _context, _visit, check
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET, OidcProvider, node_ready


@pytest.fixture
def live_provider(live_server: Any, tmp_path: Any) -> Iterator[OidcProvider]:
    node_ready()
    oidc.clear_cache()
    provider = OidcProvider(tmp_path, callback=f"{live_server.url}/login/sso/callback/")
    provider.start()
    yield provider
    provider.stop()
    oidc.clear_cache()


@pytest.mark.django_db(transaction=True)
def test_signing_in_with_single_sign_on_in_a_browser(chromium, live_server, live_provider, cast):
    configure_sso(
        actor=cast["alice"],
        issuer=live_provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        allowed_domains="acme.example",
        group_roles="offboard-admins = admin\nofficers = operator",
        sso_required=True,
        break_glass_username="alice",
    )
    problems: list[str] = []
    heights: dict[str, int] = {}
    for width in sorted(SIZES):
        live_provider.choose(
            f"idp-zoe-{width}",
            email=f"zoe{width}@acme.example",
            email_verified=True,
            groups=["offboard-admins"],
        )
        context = _context(chromium, live_server, width)
        page = context.new_page()
        _visit(page, "/login/")
        page.get_by_label("Username").fill("bob")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("Your organization signs in with single sign-on")).to_be_visible()
        problems += check(page, width, "visitor", "login-sso-required", heights)

        page.locator("#sso-link").click()  # the form (the message's link goes straight on)
        expect(page.get_by_role("heading", name="Single sign-on")).to_be_visible()
        problems += check(page, width, "visitor", "login-sso", heights)
        page.get_by_label("Your work e-mail address").fill(f"zoe{width}@acme.example")
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"{live_server.url}/")
        assert Membership.objects.get(user__email=f"zoe{width}@acme.example").role == "admin"

        _visit(page, "/settings/")
        page.get_by_role("link", name="Single sign-on").click()
        expect(page.locator("#sso-secret-state")).to_have_text("set")
        assert CLIENT_SECRET not in page.content()
        problems += check(page, width, "admin", "settings-sso", heights)
        page.get_by_role("button", name="Test the provider").click()
        expect(page.locator("#sso-test-result")).to_contain_text("Test passed")
        page.get_by_label("Issuer URL").fill("http://idp.example.com")
        page.get_by_role("button", name="Save single sign-on").click()
        expect(page.locator("#error-issuer")).to_contain_text("must use https")
        problems += check(page, width, "admin", "settings-sso-errors", heights)
        context.close()
    assert not problems, "\n".join(problems)
