"""The case workspace in Chromium: the closure panel, tabs and gate links, steps swapped in
place, roles, tenancy, accessibility and the screenshots for review."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, axe_violations, log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def _csrf(page):
    return page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")


def test_the_closure_panel_lists_the_gates_and_close_stays_disabled(page, case, cast):
    log_in(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    panel = page.locator("#closure")
    for code in ("steps.incomplete", "access.not_revoked", "settlement.open", "approvals.missing"):
        expect(panel.get_by_text(code, exact=True)).to_be_visible()
    close = page.get_by_role("button", name="Close case")
    assert close.is_disabled()
    assert close.get_attribute("aria-describedby") == "close-why"
    assert page.get_by_role("button", name="Enter closing").is_disabled()
    violations = axe_violations(page)
    assert violations == [], violations
    screenshot(page, "case-workspace")
    panel.screenshot(path=str(ARTIFACTS / "closure-panel.png"))

    # A gate's link opens the register tab that holds the item and brings the row into view.
    grant = case.access_grants.order_by("id").first()
    assert page.locator("#panel-access_grants").is_hidden()
    panel.locator(f'a[href="#access_grants-{grant.pk}"]').click()
    expect(page.locator("#panel-access_grants")).to_be_visible()
    expect(page.locator(f"#access_grants-{grant.pk}")).to_be_visible()
    assert page.get_by_role("tab", name="Access").get_attribute("aria-selected") == "true"


def test_the_register_tabs_work_from_the_keyboard(page, case, cast):
    log_in(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    tab = page.get_by_role("tab", name="Deliverables")
    tab.focus()
    page.keyboard.press("ArrowRight")
    handover = page.get_by_role("tab", name="Handover")
    assert handover.get_attribute("aria-selected") == "true"
    assert page.evaluate("document.activeElement.id") == "tab-handover_items"
    expect(page.locator("#panel-handover_items")).to_be_visible()
    assert page.locator("#panel-deliverables").is_hidden()
    page.keyboard.press("End")
    assert page.get_by_role("tab", name="Settlement").get_attribute("aria-selected") == "true"


def test_a_step_is_marked_not_applicable_in_place_without_moving_the_page(page, case, cast):
    log_in(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    step = case.steps.get(key="confirm_notice")
    row = page.locator(f"#step-{step.pk}")
    row.scroll_into_view_if_needed()
    box = row.bounding_box()
    scrolled = page.evaluate("window.scrollY")
    row.locator("summary", has_text="N/A").click()
    row.get_by_label("Why does this step not apply?").fill("Notice came by registered post")
    row.get_by_role("button", name="Mark not applicable").click()
    page.locator(f"#step-{step.pk} .badge.not_applicable").wait_for()
    row = page.locator(f"#step-{step.pk}")
    assert "Not applicable: Notice came by registered post" in row.inner_text()
    after = row.bounding_box()  # swapped in place: the row neither moves nor changes width
    assert (after["x"], after["y"], after["width"]) == (box["x"], box["y"], box["width"])
    assert page.evaluate("window.scrollY") == pytest.approx(scrolled, abs=1)
    # The closure panel and timeline were refreshed from the same answer.
    expect(page.locator("#timeline").get_by_text("step.not_applicable")).to_be_visible()


def test_a_refused_step_shows_the_message_in_its_form(page, case, cast):
    log_in(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    step = case.steps.get(key="exit_kickoff")  # waits for confirm_notice
    row = page.locator(f"#step-{step.pk}")
    row.locator("summary", has_text="Complete").click()
    row.get_by_label("Note").fill("Kickoff held")
    row.get_by_role("button", name="Mark done").click()
    alert = page.locator(f"#step-{step.pk} .form-error")
    alert.wait_for()
    assert "depends on confirm_notice" in alert.inner_text()


def test_an_operator_is_not_offered_approval_and_a_forced_post_is_refused(page, case, cast):
    from offboard.cases.models import Approval
    from offboard.cases.services import enter_closing
    from offboard.cases.state import fresh, state_digest
    from tests.factories import settle_everything

    settled = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=settled)
    digest = state_digest(fresh(settled))
    log_in(page, "oscar")
    page.goto(f"/cases/{case.ref}/")
    approvals = page.locator("#approvals")
    expect(approvals.get_by_text(digest)).to_be_visible()
    assert approvals.get_by_role("button", name="Approve this state").count() == 0
    expect(approvals.get_by_text("does not approve closures")).to_be_visible()
    response = page.request.post(
        f"/cases/{case.ref}/approve",
        form={"decision": "approved", "state_digest_seen": digest},
        headers={"X-CSRFToken": _csrf(page)},
    )
    assert response.status == 403
    assert "may not do this" in response.text() or "approval policy" in response.text()
    assert not Approval.objects.filter(case=case).exists()


def test_another_organizations_case_url_is_a_404(page, case, mallory):
    log_in(page, "mallory")
    response = page.goto(f"/cases/{case.ref}/")
    assert response.status == 404
    assert case.client.name not in page.content()


def test_the_workspace_fits_a_tablet(page, case, cast):
    log_in(page, "alice")
    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto(f"/cases/{case.ref}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    violations = axe_violations(page)  # the top bar's user menu included
    assert violations == [], violations
    screenshot(page, "case-workspace-tablet", full_page=False)


def test_revoking_the_last_grant_shows_its_step_completed_without_a_reload(page, case, cast):
    from offboard.cases.services import update_register_item
    from tests.cases.test_linked_steps import free
    from tests.factories import upload

    alice = cast["alice"]
    free(case, alice, "revoke_client_access")
    first, second = case.access_grants.filter(direction="client_in_provider").order_by("id")
    update_register_item(
        actor=alice,
        item=first,
        values={"status": "revoked", "verification_level": "attested"},
        evidence=[upload(alice)],
    )
    step = case.steps.get(key="revoke_client_access")
    log_in(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    row = page.locator(f"#step-{step.pk}")
    assert "1 of 2 still open" in row.inner_text()

    row.locator(f'a[href="#access_grants-{second.pk}"]').click()  # the step links to its item
    item = page.locator(f"#access_grants-{second.pk}")
    expect(item).to_be_visible()
    item.locator("summary", has_text="Revoke").click()
    page.locator(f"#access_grants-{second.pk}-revoke-level").select_option("vendor_confirmed")
    page.locator(f"#access_grants-{second.pk}-revoke-note").fill("Slack admin confirmed removal")
    item.get_by_role("button", name="Record revocation").click()

    page.locator(f"#step-{step.pk} .badge.done").wait_for()
    text = page.locator(f"#step-{step.pk}").inner_text()
    assert "Completed by settling 2 items: their records are its attestation" in text
    violations = axe_violations(page)
    assert violations == [], violations
    page.locator(f"#step-{step.pk}").screenshot(path=str(ARTIFACTS / "step-completed-by-items.png"))
