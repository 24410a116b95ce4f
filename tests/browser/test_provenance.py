"""How a register fact is known, in Chromium: an item the client acknowledged in the portal and
one a staff member records through the workspace (days after it happened) carry different
badges and say who and when — on a desktop and on a 390 px phone without overflowing."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from offboard.cases.models import HandoverItem
from offboard.portal.selectors import link_for_token, manifest, manifest_digest
from offboard.portal.services import acknowledge_items, issue_portal_link
from tests.browser.conftest import ARTIFACTS, axe_violations, log_in, screenshot
from tests.portal.conftest import deliver_work, token_of, upload_files

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handover(case, cast):
    """Two handover items handed over; Nina North acknowledges the first in the portal."""
    deliver_work(case, cast, upload_files(cast["alice"]))
    first, second = case.handover_items.order_by("id")[:2]
    nina = case.client.contacts.get()
    issued = issue_portal_link(
        actor=cast["alice"], case=case, contact=nina, base_url="http://unused", send_email=False
    )
    link = link_for_token(token_of(issued.url))
    shown = manifest(case)
    acknowledge_items(
        link=link,
        items=[f"handover_item:{first.pk}"],
        typed_name="Nina North",
        confirmed=True,
        manifest_sha256=manifest_digest(shown),
        ip="203.0.113.9",
        user_agent="PortalTest/1.0",
    )
    return first, second, manifest_digest(shown)


def test_a_portal_acknowledgement_and_a_staff_record_show_different_badges(page, case, handover):
    first, second, digest = handover
    happened = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(second=0, microsecond=0)
    log_in(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    page.get_by_role("tab", name="Handover").click()

    # Alice records the second acknowledgement: it happened three days ago, by phone.
    row = page.locator(f"#handover_items-{second.pk}")
    row.locator("summary", has_text="Edit").click()
    form = row.locator("details[open] form")
    form.get_by_label("Status").select_option("acknowledged")
    form.get_by_label("Acknowledged at").fill(happened.strftime("%Y-%m-%dT%H:%M"))
    form.get_by_label("How it is known").select_option("staff")
    form.get_by_role("button", name="Save changes").click()
    page.locator(f"#handover_items-{second.pk} .badge.acknowledged").wait_for()

    client_row = page.locator(f"#handover_items-{first.pk}")
    staff_row = page.locator(f"#handover_items-{second.pk}")
    assert client_row.locator(".src").inner_text() == "Client · portal"
    assert staff_row.locator(".src").inner_text() == "Staff"
    client_says = client_row.locator(".known").inner_text()
    staff_says = staff_row.locator(".known").inner_text()
    assert "Acknowledged by the client in the portal — Nina North" in client_says
    assert f"list sha256 {digest[:4]}…" in client_says
    assert "Acknowledged — recorded by staff (Alice)" in staff_says
    assert f"happened {happened:%-d %b %Y %H:%M}" in staff_says and "· recorded" in staff_says
    # The two badges look different, not just read differently.
    client_bg = client_row.locator(".src").evaluate("e => getComputedStyle(e).backgroundColor")
    staff_bg = staff_row.locator(".src").evaluate("e => getComputedStyle(e).backgroundColor")
    assert client_bg != staff_bg

    recorded = HandoverItem.objects.get(pk=second.pk)
    assert recorded.source == "staff" and recorded.acknowledged_at == happened
    assert recorded.recorded_by_id == case.owner_id
    assert HandoverItem.objects.get(pk=first.pk).source == "client_portal"
    assert axe_violations(page) == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#panel-handover_items").screenshot(path=str(ARTIFACTS / "provenance-desktop.png"))

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/cases/{case.ref}/")
    page.get_by_role("tab", name="Handover").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator(f"#handover_items-{first.pk} .src-client_portal")).to_be_visible()
    screenshot(page, "provenance-badges-phone")
