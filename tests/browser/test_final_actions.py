"""The final actions in Chromium — close, cancel, revoke a portal link — each asks in a dialog
that says what will happen; dismissing it changes nothing. Without JavaScript the server asks
instead. And the workspace's file chips download the file."""

import pytest
from playwright.sync_api import expect

from offboard.cases.models import OffboardingCase
from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.factories import settle_everything, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def approved(case, cast):
    """Alice's case in closing with bob's and carol's approvals: it can be closed."""
    from offboard.cases.services import approve_case, enter_closing
    from offboard.cases.state import fresh, state_digest

    settled = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=settled)
    digest = state_digest(fresh(settled))
    for name in ("bob", "carol"):
        approve_case(actor=cast[name], case=settled, decision="approved", state_digest_seen=digest)
    return settled


def _state(case):
    return OffboardingCase.objects.get(pk=case.pk).state


def test_close_asks_in_a_dialog_naming_the_contacts_and_dismissing_keeps_it_open(page, approved):
    log_in(page, "alice")
    page.goto(f"/cases/{approved.ref}/")
    dialog = page.get_by_role("dialog", name=f"Close case {approved.ref} for good?")
    assert dialog.is_hidden()

    page.get_by_role("button", name="Close case").click()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("final and read-only")).to_be_visible()
    expect(dialog.get_by_text("closure certificate", exact=False).first).to_be_visible()
    expect(dialog.get_by_text("Nina North")).to_be_visible()
    expect(dialog.get_by_text("nina@northwind.example")).to_be_visible()
    violations = axe_violations(page)
    assert violations == [], violations
    screenshot(page, "close-dialog", full_page=False)

    dialog.get_by_role("button", name="Keep the case open").click()
    assert dialog.is_hidden() and _state(approved) == "closing"
    page.get_by_role("button", name="Close case").click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    assert dialog.is_hidden() and _state(approved) == "closing"

    page.get_by_role("button", name="Close case").click()
    dialog.get_by_role("button", name="Close the case for good").click()
    page.wait_for_load_state()
    assert page.locator("#case-header .badge.state").inner_text() == "Closed"
    assert _state(approved) == "closed"


def test_without_javascript_the_server_asks_for_the_confirmation(chromium, live_server, approved):
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, "alice")
        page.goto(f"/cases/{approved.ref}/")
        page.get_by_role("button", name="Close case").click()  # a plain post, unconfirmed
        page.wait_for_load_state()
        assert _state(approved) == "closing"
        dialog = page.get_by_role("dialog", name=f"Close case {approved.ref} for good?")
        expect(dialog).to_be_visible()
        expect(
            dialog.get_by_text("closing is final, so it needs your confirmation")
        ).to_be_visible()
        expect(dialog.get_by_text("nina@northwind.example")).to_be_visible()
        screenshot(page, "close-dialog-without-javascript", full_page=False)
        dialog.get_by_role("button", name="Close the case for good").click()
        page.wait_for_load_state()
        assert _state(approved) == "closed"
    finally:
        context.close()


def test_cancelling_asks_with_the_reason_and_dismissing_keeps_the_case(page, case):
    log_in(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    page.get_by_role("button", name="Cancel case…").click()
    dialog = page.get_by_role("dialog", name=f"Cancel case {case.ref}?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("no closure certificate")).to_be_visible()
    dialog.get_by_label("Why is this exit cancelled?").fill("Client renewed after all")
    dialog.get_by_role("button", name="Keep the case").click()
    assert dialog.is_hidden() and _state(case) == "active"
    page.get_by_role("button", name="Cancel case…").click()
    dialog.get_by_role("button", name="Cancel the case").click()
    page.wait_for_load_state()
    assert _state(case) == "cancelled"
    assert page.locator("#case-header .badge.state").inner_text() == "Cancelled"


def test_revoking_a_portal_link_asks_first(page, case, cast):
    from offboard.portal.models import PortalLink
    from offboard.portal.services import issue_portal_link

    nina = case.client.contacts.get()
    link = issue_portal_link(
        actor=cast["alice"], case=case, contact=nina, base_url="http://testserver"
    ).link
    log_in(page, "alice")
    page.goto(f"/cases/{case.ref}/#portal")
    page.get_by_role("button", name="Revoke the link of Nina North").click()
    dialog = page.get_by_role("dialog", name="Revoke the portal link of Nina North?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("stops working at once")).to_be_visible()
    page.keyboard.press("Escape")
    assert dialog.is_hidden()
    assert PortalLink.objects.get(pk=link.pk).revoked_at is None
    page.get_by_role("button", name="Revoke the link of Nina North").click()
    dialog.get_by_label("Why revoke this link?").fill("Sent to the wrong person")
    dialog.get_by_role("button", name="Revoke link").click()
    page.wait_for_load_state()
    revoked = PortalLink.objects.get(pk=link.pk)
    assert revoked.revoked_at is not None and revoked.revoke_reason == "Sent to the wrong person"


def test_a_file_chip_downloads_the_file(page, case, cast):
    from offboard.cases.services import complete_step

    content = b"%PDF-1.4 the client's notice letter, signed\n"
    letter = upload(cast["alice"], content, "notice-letter.pdf")
    step = case.steps.get(key="confirm_notice")
    complete_step(actor=cast["alice"], step=step, evidence=[letter], note="Received")
    log_in(page, "erin")  # the auditor reads evidence too
    page.goto(f"/cases/{case.ref}/")
    chip = page.locator(f"#step-{step.pk}").get_by_role("link", name="notice-letter.pdf")
    with page.expect_download() as download:
        chip.click()
    assert download.value.suggested_filename == "notice-letter.pdf"
    with open(download.value.path(), "rb") as f:
        assert f.read() == content
