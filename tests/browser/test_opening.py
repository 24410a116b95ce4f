"""Opening a case in Chromium (locale en-GB): the default trigger date goes through as it is,
and a second case for a contract with an open case needs "Open another case anyway"."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_violations, log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_form_submits_with_its_default_trigger_date(page, cast, playbooks, client_contract):
    from offboard.cases.models import OffboardingCase
    from offboard.core import clock

    client, _ = client_contract
    log_in(page, "alice")
    page.goto(f"/cases/new/?client={client.pk}")
    today = clock.now().date()
    assert page.get_by_label("Trigger date").input_value() == f"{today:%Y-%m-%d}"

    page.get_by_role("button", name="Preview steps and dates").click()
    page.wait_for_load_state()

    assert page.get_by_text("This field is required").count() == 0
    preview = page.locator("#preview")
    expect(preview.get_by_text(f"{today:%-d %b %Y}").first).to_be_visible()
    page.get_by_role("button", name="Confirm and open the case").click()
    page.wait_for_url("**/cases/C-*/")
    assert OffboardingCase.objects.get().trigger_date == today


def test_a_second_case_for_the_contract_needs_the_box_ticked(page, case, cast):
    from offboard.cases.models import OffboardingCase

    log_in(page, "alice")
    page.goto(f"/cases/new/?client={case.client_id}")
    page.get_by_label("Trigger date").fill("2026-11-02")
    page.get_by_role("button", name="Preview steps and dates").click()
    page.wait_for_load_state()

    warning = page.locator("#open-cases")
    expect(warning.get_by_text("already has an open case for the same contract")).to_be_visible()
    assert warning.get_by_role("link", name=case.ref).get_attribute("href") == (
        f"/cases/{case.ref}/"
    )
    assert axe_violations(page) == []
    screenshot(page, "open-case-duplicate")

    page.get_by_role("button", name="Confirm and open the case").click()
    page.wait_for_load_state()
    expect(page.get_by_text("Tick this box if another case is intended")).to_be_visible()
    assert OffboardingCase.objects.count() == 1

    page.get_by_label("Open another case anyway").check()
    page.get_by_role("button", name="Confirm and open the case").click()
    page.wait_for_url("**/cases/C-2026-0002/")
    second = OffboardingCase.objects.get(ref="C-2026-0002")
    opened = second.events.get(type="case.opened")
    assert opened.data["duplicate"] == {"open_cases": [case.ref], "acknowledged": True}
