"""The client portal in Chromium: a contact opens their link, acknowledges one item, disputes
another; the page and the invalid-link page pass axe-core; screenshots for review."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from offboard.cases.models import Deliverable, HandoverItem
from offboard.portal.services import issue_portal_link, revoke_portal_link
from tests.browser.conftest import axe_violations, screenshot
from tests.portal.conftest import deliver_work, token_of, upload_files

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal_page(chromium: Any, live_server: Any) -> Iterator[Any]:
    """Like the harness's `page`, but axe-core may be injected despite the portal's strict
    Content-Security-Policy (script-src 'self'); the policy itself is asserted below."""
    context = chromium.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 900},
        locale="en-GB",
        bypass_csp=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def link(case: Any, cast: dict[str, Any]) -> Any:
    deliver_work(case, cast, upload_files(cast["alice"]))
    nina = case.client.contacts.get()
    return issue_portal_link(
        actor=cast["alice"], case=case, contact=nina, base_url="http://unused", send_email=False
    )


def test_a_contact_acknowledges_one_item_and_disputes_another(portal_page, link, case):
    page = portal_page
    path = "/portal/" + token_of(link.url) + "/"
    report = case.deliverables.order_by("id").first()
    ads = case.handover_items.order_by("id").first()

    response = page.goto(path)
    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name="Handover to Northwind Traders")).to_be_visible()
    assert axe_violations(page) == []

    page.get_by_role("link", name=f"Acknowledge {report.title}").click()
    page.wait_for_url("**/acknowledge/**")
    expect(page.get_by_role("heading", name="Acknowledge 1 item")).to_be_visible()
    page.get_by_label("Your full name").fill("Nina North")
    page.get_by_label("I confirm that I received").check()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Acknowledge 1 item").click()
    page.wait_for_url("**/?r=*")
    expect(page.get_by_role("heading", name="your acknowledgement is recorded")).to_be_visible()

    page.get_by_role("link", name=f"Dispute {ads.name}").click()
    page.wait_for_url("**/dispute/**")
    page.get_by_role("textbox", name="What is wrong").fill(
        "We still do not have admin rights on the Google Ads account."
    )
    page.get_by_role("button", name="Send dispute").click()
    page.wait_for_url("**/?r=*")
    expect(page.get_by_role("heading", name="your dispute is recorded")).to_be_visible()

    assert Deliverable.objects.get(pk=report.pk).status == "accepted"
    assert HandoverItem.objects.get(pk=ads.pk).status == "disputed"
    expect(page.get_by_role("heading", name="Your responses")).to_be_visible()
    assert axe_violations(page) == []
    # A screen as tall as the page, so the sticky action bar shows where it sits at the end
    # of the list rather than over the middle of a full-page capture.
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": height})
    screenshot(page, "portal")
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet
    assert page.evaluate("document.documentElement.scrollWidth") <= 768  # no sideways scroll
    screenshot(page, "portal-tablet", full_page=False)


def test_the_review_step_refuses_a_name_that_does_not_match(portal_page, link, case):
    page = portal_page
    page.goto("/portal/" + token_of(link.url) + "/")
    page.get_by_role("link", name="Acknowledge all").click()
    page.get_by_label("Your full name").fill("Someone Else")
    page.get_by_label("I confirm that I received").check()
    page.get_by_role("button", name="Acknowledge 4 items").click()

    expect(page.get_by_text("does not match the name we have for you").first).to_be_visible()
    assert page.get_by_label("Your full name").get_attribute("aria-invalid") == "true"
    assert axe_violations(page) == []
    screenshot(page, "portal-review-error")


def test_an_expired_or_revoked_link_reveals_nothing(portal_page, link, case, cast, monkeypatch):
    page = portal_page
    revoke_portal_link(actor=cast["alice"], link=link.link)

    response = page.goto("/portal/" + token_of(link.url) + "/")

    assert response.status == 404
    expect(page.get_by_role("heading", name="This link is no longer valid")).to_be_visible()
    content = page.content()
    for revealing in (case.ref, "Northwind", "Nina", "Acme", "Alice"):
        assert revealing not in content
    assert axe_violations(page) == []
    screenshot(page, "portal-invalid")
    # an expired one is the same page
    fresh = issue_portal_link(
        actor=cast["alice"],
        case=case,
        contact=case.client.contacts.get(),
        base_url="http://unused",
        days=1,
        send_email=False,
    )
    fresh.link.__class__.objects.filter(pk=fresh.link.pk).update(
        expires_at=fresh.link.created_at - dt.timedelta(seconds=1)
    )
    assert page.goto("/portal/" + token_of(fresh.url) + "/").status == 404
    assert page.content() == content


def test_the_page_runs_under_its_content_security_policy(page, link):
    """The harness's page enforces the portal's CSP: nothing on it may be blocked."""
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if m.type == "error" else None)

    page.goto("/portal/" + token_of(link.url) + "/")
    page.get_by_role("button", name="Copy the SHA-256 of final-report.pdf").wait_for()

    assert not [m for m in messages if "Content Security Policy" in m], messages
    assert messages == []
