"""The browser harness itself, on the pages every later journey starts from."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_violations, log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_then_the_case_list_then_a_case(page, case, cast):
    page.goto("/")
    assert "/login/" in page.url  # the app needs a login
    assert axe_violations(page) == []
    log_in(page, "alice")
    page.goto("/cases/")
    expect(page.get_by_role("link", name=case.ref)).to_be_visible()
    page.get_by_role("link", name=case.ref).click()
    page.wait_for_url(f"**/cases/{case.ref}/")
    assert case.ref in page.title() or page.get_by_text(case.ref).first.is_visible()
    screenshot(page, "smoke-case")


def test_a_wrong_password_is_refused_with_a_message(page, cast):
    log_in(page, "alice", "not the password")
    assert "/login/" in page.url
    expect(page.get_by_role("alert")).to_be_visible()


def test_another_organizations_case_is_a_404(page, case, mallory):
    log_in(page, "mallory")
    response = page.goto(f"/cases/{case.ref}/")
    assert response.status == 404
    assert case.ref not in page.content()
