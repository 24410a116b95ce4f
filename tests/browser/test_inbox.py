"""The dashboard's inbox in Chromium: alice, with one of each kind of item waiting for her,
sees each on her dashboard, and each link opens the workspace at the place it is dealt with."""

import datetime as dt
from unittest import mock

import pytest
from django.utils import timezone

from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.web.test_inbox import KINDS, everything_for_alice

pytestmark = pytest.mark.django_db(transaction=True)

TITLES = {
    "approvals": "Approvals waiting for you",
    "disputes": "Disputed by the client",
    "answers": "New answers from the client",
    "overdue": "Your overdue steps",
    "due_soon": "Your steps due in the next 7 days",
    "receipts": "Closure receipts not sent",
    "access": "Access still live after the end date",
}


def test_every_kind_of_item_shows_with_a_link_to_where_it_is_dealt_with(page, case, cast, settings):
    busy = everything_for_alice(case, cast, settings)
    noon = timezone.make_aware(dt.datetime.combine(busy["today"], dt.time(12)), dt.UTC)
    with mock.patch("offboard.core.clock.now", return_value=noon):
        log_in(page, "alice")
        page.goto("/")
        inbox = page.locator("#inbox")
        assert inbox.get_by_text("You’re clear").count() == 0
        links = {}
        for key in KINDS:
            heading = inbox.get_by_role("heading", name=TITLES[key])
            assert heading.is_visible(), key
            listed = inbox.get_by_role("list", name=TITLES[key]).get_by_role("link")
            assert listed.count() >= 1, key
            links[key] = listed.first.get_attribute("href")
        assert links["approvals"] == f"/cases/{busy['closing'].ref}/#approvals"
        assert links["disputes"] == f"/cases/{case.ref}/#deliverables-{busy['report'].pk}"
        assert links["receipts"] == f"/cases/{busy['closed'].ref}/#receipt"
        violations = axe_violations(page)
        assert violations == [], violations
        screenshot(page, "dashboard-inbox")

        # Each link opens the workspace with its target shown (register tabs switch to it).
        for key in KINDS:
            page.goto("/")
            link = inbox.get_by_role("list", name=TITLES[key]).get_by_role("link").first
            link.click()
            page.wait_for_load_state()
            anchor = links[key].split("#", 1)[1]
            assert page.url.endswith(links[key]), (key, page.url)
            target = page.locator(f"#{anchor}")
            target.wait_for(state="visible")
            assert target.is_visible(), key
