"""The interactive API docs (/api/v1/docs) in Chromium: Swagger UI, served from our own static
files, parses the OpenAPI document and lists the operations."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_docs_page_renders_every_operation_from_local_assets(page, live_server):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto("/api/v1/docs")
    page.locator(".opblock, .errors-wrapper").first.wait_for()

    errors = page.locator(".errors-wrapper")
    assert errors.count() == 0, errors.first.inner_text()
    expect(page.get_by_text("Offboard API").first).to_be_visible()
    assert page.locator(".opblock").count() > 50
    for path in ("/api/v1/cases/preview", "/api/v1/evidence/{sha256}/content"):
        expect(page.locator(f".opblock-summary-path[data-path='{path}']").first).to_be_visible()
    assert page.get_by_text("Parser error").count() == 0
    origin = urlsplit(live_server.url).netloc
    assert {urlsplit(url).netloc for url in requested if not url.startswith("data:")} == {origin}
    screenshot(page, "api-docs")
