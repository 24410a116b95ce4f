"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Chromium comes from Debian (`apt-get install chromium`, done by .ci/run); Playwright never
downloads a browser. axe-core comes from npm (tests/browser/package.json, `npm ci` in
`make test`) and is injected into pages. Screenshots go to test-artifacts/ (git-ignored).
Without Chromium these tests skip, with the reason, unless OFFBOARD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("OFFBOARD_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse 1"  # tests/conftest.py's cast

# Playwright's sync API runs an event loop in this thread; the ORM calls tests make between
# browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if not AXE.exists():
        return f"axe-core is not installed at {AXE} (npm ci in tests/browser)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()
        _close_connections()


def _close_connections() -> None:
    """While Playwright's event loop runs in this thread, Django keeps database connections
    per context instead of per thread; close them while they are still visible, or one
    outlives the session (and blocks dropping the test database on PostgreSQL)."""
    from django.db import connections

    connections.close_all()


@pytest.fixture
def page(chromium: Any, live_server: Any) -> Iterator[Any]:
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 900}, locale="en-GB"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    _close_connections()
    assert not errors, f"JavaScript errors on the page: {errors}"


def log_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations on the current page at the given impacts, one line each."""
    # Evaluated through the DevTools protocol, not as a <script> tag: the pages' CSP
    # (script-src 'self') rightly refuses inline scripts, and stays in force in the tests.
    # Once per page (a context may preload it: add_init_script(path=AXE)).
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in impacts
    ]
