"""The staff pages in Chromium: dashboard → clients → a client → open a case with a preview →
confirm; a playbook's new version and its diff; settings with a new API token. Each page is
checked with axe-core and screenshotted to test-artifacts/."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.web.test_playbooks_pages import consulting_v2

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def busy_org(case, cast, playbooks, client_contract):
    """A second client whose exit ended last month with access still open, plus the case."""
    from offboard.cases.services import open_case
    from offboard.clients.services import add_contact, create_client, create_contract

    alice = cast["alice"]
    client = create_client(actor=alice, name="Lumen Architecture Studio")
    add_contact(
        actor=alice, client=client, name="Lea Lumen", email="lea@lumen.example", role="primary"
    )
    contract = create_contract(
        actor=alice,
        client=client,
        reference="LU-2024-07",
        service_type="software_development",
        fee_type="time_and_materials",
        start_date=dt.date(2024, 7, 1),
        notice_period_days=30,
        data_return_window_days=30,
    )
    today = dt.date.today()
    open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="termination_by_client",
        trigger_date=today - dt.timedelta(days=45),
        owner_id=alice.user.pk,
        playbook_version=playbooks["software_development"],
    )
    return case


def test_dashboard_clients_and_opening_a_case_with_a_preview(page, busy_org, cast):
    log_in(page, "alice")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("Access still active after the end date")).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "dashboard")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients").click()
    page.wait_for_url("**/clients/")
    assert axe_violations(page) == []
    screenshot(page, "clients")

    page.get_by_role("link", name="Northwind Traders").click()
    page.wait_for_url("**/clients/*/")
    expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "client")

    page.get_by_role("link", name="Open a case").click()
    page.wait_for_url("**/cases/new/?client=*")
    page.get_by_label("Trigger", exact=True).select_option("termination_by_client")
    page.get_by_label("Trigger date").fill("2026-11-02")
    page.get_by_role("button", name="Preview steps and dates").click()
    page.wait_for_load_state()
    preview = page.locator("#preview")
    expect(preview.get_by_text("Effective end")).to_be_visible()
    expect(preview.get_by_text("2 Dec 2026").first).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "open-case-preview")

    # Northwind's case is still open: a second one is opened on purpose.
    expect(preview.get_by_role("link", name=busy_org.ref)).to_be_visible()
    page.get_by_label("Open another case anyway").check()
    page.get_by_role("button", name="Confirm and open the case").click()
    page.wait_for_url("**/cases/C-2026-*/")
    from offboard.cases.models import OffboardingCase

    opened = OffboardingCase.objects.filter(trigger="termination_by_client").order_by("-id")[0]
    assert opened.ref in page.url and opened.effective_end_date == dt.date(2026, 12, 2)


def test_a_new_playbook_version_and_its_diff(page, cast, playbooks):
    log_in(page, "alice")
    page.goto("/playbooks/")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Upload a playbook").click()
    page.get_by_label("YAML text").fill(consulting_v2())
    page.get_by_role("button", name="Validate and upload").click()
    page.wait_for_url("**/playbooks/consulting/versions/2/diff/")
    expect(page.get_by_text("archive_engagement_file").first).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "playbook-diff")

    page.goto("/playbooks/upload/")
    page.get_by_label("YAML text").fill("slug: Bad Slug\nname: x\n")
    page.get_by_role("button", name="Validate and upload").click()
    expect(page.get_by_role("alert").get_by_text("nothing was saved")).to_be_visible()
    assert axe_violations(page) == []


def test_settings_with_a_new_token_shown_once(page, case, cast):
    from django.db import transaction

    from offboard.ledger.checkpoints import issue_checkpoint

    with transaction.atomic():
        issue_checkpoint(org=case.org, reason="manual")
    log_in(page, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_label("Token name").fill("CRM integration")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New API token").input_value()
    assert token.startswith("obt_")
    assert axe_violations(page) == []
    screenshot(page, "settings")
    page.reload()
    assert token not in page.content()

    # An admin adds a colleague; the first password is shown once and works.
    page.locator("#members summary", has_text="Add a member").click()
    form = page.locator("#members form.form-grid")
    form.get_by_label("Username").fill("fiona")
    form.get_by_label("First name").fill("Fiona")
    form.get_by_label("Last name").fill("Field")
    form.get_by_label("Email").fill("fiona@acme.example")
    form.get_by_label("Role").select_option("manager")
    form.get_by_role("button", name="Add member").click()
    password = page.get_by_label("First password for fiona").input_value()
    assert len(password) >= 16
    assert axe_violations(page) == []
    screenshot(page, "settings-member-added", full_page=False)
    page.context.clear_cookies()
    log_in(page, "fiona", password)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_the_pages_work_on_a_tablet_and_with_the_keyboard(page, busy_org, cast):
    page.set_viewport_size({"width": 768, "height": 1024})
    log_in(page, "alice")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768, f"the dashboard scrolls sideways on a tablet ({width}px)"
    screenshot(page, "dashboard-tablet")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement")
    outline = skip.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none"
    for url in ("/clients/", "/cases/new/", "/playbooks/", "/settings/"):
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 768, f"{url} scrolls sideways on a tablet ({width}px)"
