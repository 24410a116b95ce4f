"""Every page on a phone (390×844) and on a laptop (1366×900): each staff page as an admin, a
manager and an auditor, and each page of the client portal. On every one nothing scrolls the
page sideways or is cut off, every section of the main navigation is in sight, no two visible
controls overlap nor does text run over text or out of its box, no phrase is squeezed into a column a few
characters wide, the page keeps a sensible height, and axe-core finds nothing serious.
Full-page screenshots go to test-artifacts/<width>/<role>-<page>.png for review (decision 0016).

The tables below must name every page: a new route without a row fails
`test_every_page_is_in_the_matrix`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver
from playwright.sync_api import expect

from offboard.portal import ratelimit
from tests.browser.conftest import ARTIFACTS, AXE, PASSWORD, axe_violations, log_in

SIZES = {390: 844, 1366: 900}
ROLES = {"admin": "alice", "manager": "bob", "auditor": "erin"}
WRITERS = ("admin", "manager")
# Sensible heights: stacking a row's columns makes a phone page up to ~2.5 times as tall as
# the laptop's (plus a screen); text squeezed into narrow columns makes it far taller — the
# case workspace was 14,000–31,000 px before issue 12. Nor ever a scroll without end.
PHONE_HEIGHT_RATIO = 2.5
MAX_PHONE_HEIGHT = 16_000


@dataclass(frozen=True)
class Page:
    name: str
    url: str  # formatted with the ids of the `offices` fixture
    roles: tuple[str, ...] = tuple(ROLES)
    then: Callable[[Any], None] | None = None  # what to do once loaded (fill and submit)


def _preview(page: Any) -> None:
    page.get_by_label("Trigger", exact=True).select_option("termination_by_client")
    page.get_by_label("Trigger date").fill("2026-11-02")
    page.get_by_role("button", name="Preview steps and dates").click()
    page.locator("#preview").wait_for()


def _import_file(problems: bool) -> Any:
    """Choose a clients CSV on the import page and check it: the preview, or its problems."""

    def then(page: Any) -> None:
        from offboard.clients.csvfile import template_csv

        text = template_csv()
        if problems:
            text = (
                text.replace("fiona@fabrikam.example", "fiona-at-fabrikam").replace(
                    "2025-01-01", "01/01/2025"
                )
                + "contact,Contoso,,,,Carl,carl@contoso.example,boss\n"
            )
        page.set_input_files(
            "#id_file",
            files=[{"name": "crm-export.csv", "mimeType": "text/csv", "buffer": text.encode()}],
        )
        page.get_by_role("button", name="Check the file").click()
        page.locator("#problems-h" if problems else "#ready-h").wait_for()

    return then


STAFF = [
    Page("dashboard", "/"),
    Page("cases", "/cases/"),
    Page("case-active", "/cases/{active}/"),
    Page("case-closed", "/cases/{closed}/"),
    Page("case-cancelled", "/cases/{cancelled}/"),
    Page("clients", "/clients/"),
    Page("client", "/clients/{client}/"),
    Page("client-new", "/clients/new/", ("admin",)),
    Page("client-edit", "/clients/{client}/edit/", ("admin",)),
    Page("contact-new", "/clients/{client}/contacts/new/", ("admin",)),
    Page("contact-edit", "/clients/{client}/contacts/{contact}/edit/", ("admin",)),
    Page("contract-new", "/clients/{client}/contracts/new/", ("admin",)),
    Page("client-import", "/clients/import/", ("admin",)),
    Page("client-import-preview", "/clients/import/", ("admin",), then=_import_file(False)),
    Page("client-import-problems", "/clients/import/", ("admin",), then=_import_file(True)),
    Page("open-case", "/cases/new/"),  # the auditor's is the "You can't do that" page
    Page("open-case-form", "/cases/new/?client={other_client}", WRITERS),
    Page("open-case-preview", "/cases/new/?client={other_client}", WRITERS, then=_preview),
    Page("playbooks", "/playbooks/"),
    Page("playbook", "/playbooks/consulting/"),
    Page("playbook-diff", "/playbooks/consulting/versions/2/diff/"),
    Page("playbook-upload", "/playbooks/upload/", WRITERS),
    Page("settings", "/settings/"),  # members, tokens, keys, checkpoints, services
    Page("password", "/settings/password/"),
    Page("webhook-deliveries", "/settings/webhooks/{webhook}/deliveries/", ("admin",)),
    Page("connector-discover", "/cases/{active}/connectors/discover/", WRITERS),
    Page("connector-revoke", "/cases/{active}/connectors/revoke/", WRITERS),
    Page("connector-run", "/cases/{active}/connectors/runs/{run}/"),
]
PORTAL = ["portal", "portal-acknowledge", "portal-dispute", "portal-invalid", "portal-no-file",
          "portal-slow-down"]  # fmt: skip

# Routes that are not pages of their own: actions (POST, answered by the page they change),
# downloads, and pages reached only in a failure the matrix shows through another row.
NOT_PAGES = {
    "web:logout": "POST, redirects to the log-in page",
    # Second factors (offboard.mfa): the two pages are checked at both sizes, with a factor
    # being set up and used, in tests/browser/test_second_factors.py; the rest are POSTs.
    "web:login-verify": "the sign-in's second step (tests/browser/test_second_factors.py)",
    "web:security-factors": "Two-factor settings (tests/browser/test_second_factors.py)",
    "web:login-verify-passkey-options": "POST (JSON) from the second step",
    "web:login-verify-passkey": "POST (JSON) from the second step",
    "web:login-passkey-options": "POST (JSON) from the log-in page",
    "web:login-passkey": "POST (JSON) from the log-in page",
    "web:totp-start": "POST from the two-factor settings",
    "web:totp-confirm": "POST from the two-factor settings (answered with the page)",
    "web:totp-remove": "POST from the two-factor settings",
    "web:passkey-options": "POST (JSON) from the two-factor settings",
    "web:passkey-register": "POST (JSON) from the two-factor settings",
    "web:passkey-remove": "POST from the two-factor settings",
    "web:recovery-codes": "POST from the two-factor settings (answered with the page)",
    "web:mfa-policy": "POST from the two-factor settings",
    # Sessions and password reset (offboard.security): the pages are checked at both sizes in
    # tests/browser/test_security_settings.py; the reset link's pages in tests/security.
    "web:security": "Security settings (tests/browser/test_security_settings.py)",
    "web:session-end": "POST from the Security settings",
    "web:sessions-end-others": "POST from the Security settings",
    "web:password-reset": "Forgot your password? (tests/browser/test_security_settings.py)",
    "web:password-reset-confirm": "the e-mailed link's page (tests/security/test_password_reset.py)",
    # Single sign-on (offboard.sso): its pages are checked at both sizes, with a real provider,
    # in tests/browser/test_sso.py; the rest are redirects and POSTs.
    "web:sso-login": "Sign in with single sign-on (tests/browser/test_sso.py)",
    "web:sso-login-org": "redirects to the organization's identity provider",
    "web:sso-callback": "the identity provider's redirect back (tests/sso/test_sign_in.py)",
    "web:sso-settings": "Single sign-on settings (tests/browser/test_sso.py)",
    "web:sso-test": "POST from the single sign-on settings (tests/browser/test_sso.py)",
    "web:sso-remove": "POST from the single sign-on settings",
    "web:evidence-pack": "a zip download",
    "web:contract-document": "a file download",
    "web:client-import-template": "a CSV download",
    "web:contract-document-upload": "POST from the client page",
    "web:member-role": "POST from settings",
    "web:member-add": "POST from settings",
    "web:member-access": "POST from settings",
    "web:token-create": "POST from settings",
    "web:token-revoke": "POST from settings",
    "web:token-policy": "POST from settings (tests/web/test_settings_pages.py)",
    "web:calendar-feed-create": "POST from settings",
    "web:calendar-feed-revoke": "POST from settings",
    "web:reminder-preferences": "POST from settings (tests/reminders/test_settings_card.py)",
    "web:inbound-create": "POST from settings (tests/browser/test_inbound_settings.py)",
    "web:inbound-rotate": "POST from settings (tests/browser/test_inbound_settings.py)",
    "web:inbound-revoke": "POST from settings",
    "web:webhook-create": "POST from settings (tests/browser/test_webhook_settings.py)",
    "web:webhook-rotate": "POST from settings (tests/browser/test_webhook_settings.py)",
    "web:webhook-state": "POST from settings (disable, enable, delete)",
    "web:webhook-redeliver": "POST from the delivery log (tests/browser/test_webhook_settings.py)",
    "web:connection-create": "POST from settings (tests/connectors/test_web.py)",
    "web:connection-edit": "POST from settings (tests/connectors/test_web.py)",
    "web:connection-test": "POST from settings (tests/connectors/test_web.py)",
    "web:connection-disable": "POST from settings (tests/connectors/test_web.py)",
    "web:connector-run-decide": "POST from the run page (tests/connectors/test_approval.py)",
    "calendar:feed": "a calendar feed download",
    "web:case-file": "an evidence file download",
    "web:case-certificate": "a PDF download",
    "portal:file": "a file download; an unknown file is the portal-no-file page",
}
COVERED = {
    "web:login": "login",
    "web:dashboard": "dashboard",
    "web:case-list": "cases",
    "web:open-case": "open-case",
    "web:case-detail": "case-active",
    "web:client-list": "clients",
    "web:client-create": "client-new",
    "web:client-detail": "client",
    "web:client-edit": "client-edit",
    "web:contact-create": "contact-new",
    "web:contact-edit": "contact-edit",
    "web:contract-create": "contract-new",
    "web:client-import": "client-import",
    "web:playbook-list": "playbooks",
    "web:playbook-upload": "playbook-upload",
    "web:playbook-detail": "playbook",
    "web:playbook-diff": "playbook-diff",
    "web:settings": "settings",
    "web:password-change": "password",
    "web:webhook-deliveries": "webhook-deliveries",
    "web:connector-discover": "connector-discover",
    "web:connector-revoke": "connector-revoke",
    "web:connector-run": "connector-run",
    "portal:case": "portal",
    "portal:acknowledge": "portal-acknowledge",
    "portal:dispute": "portal-dispute",
    "reminders:unsubscribe": "unsubscribe",
}
# The pages of a reminder email's unsubscribe link (no login): asked, done, a bad link.
UNSUBSCRIBE = ["unsubscribe", "unsubscribed", "unsubscribe-invalid"]


def _names(patterns: list[Any], namespace: str) -> set[str]:
    names = set()
    for p in patterns:
        if isinstance(p, URLResolver):
            continue
        if isinstance(p, URLPattern) and p.name:
            names.add(f"{namespace}:{p.name}")
    return names


def test_every_page_is_in_the_matrix() -> None:
    from offboard.calendar.urls import urlpatterns as calendar_urls
    from offboard.portal.urls import urlpatterns as portal_urls
    from offboard.reminders.urls import urlpatterns as reminders_urls
    from offboard.web.urls import urlpatterns as web_urls

    routes = _names(web_urls, "web") | _names(portal_urls, "portal")
    routes |= _names(calendar_urls, "calendar")
    routes |= _names(reminders_urls, "reminders")
    workspace_actions = {r for r in routes if r.startswith("web:ws-")}  # all POST, in place
    missing = routes - set(COVERED) - set(NOT_PAGES) - workspace_actions
    assert not missing, f"routes with no row in the phone matrix: {sorted(missing)}"
    shown = {p.name for p in STAFF} | set(PORTAL) | set(UNSUBSCRIBE) | {"login"}
    assert set(COVERED.values()) <= shown


# --- what is checked on every page ---------------------------------------------------------

CHECKS = """() => {
  const out = {overflow: null, overlaps: [], clipped: [], squeezed: [], hidden_nav: [], overlapping_text: [], sticking_out: [], height: 0, sticky: false};
  const vw = window.innerWidth;
  const sw = document.documentElement.scrollWidth;
  if (sw > vw) out.overflow = sw;
  // Every section of the main navigation in sight, on the screen's width.
  for (const a of document.querySelectorAll('nav[aria-label="Main"] a')) {
    const r = a.getBoundingClientRect();
    if (!a.checkVisibility({visibilityProperty: true}) || r.width < 2 || r.left < 0 || r.right > vw) out.hidden_nav.push(a.textContent.trim());
  }
  // Measured at the end of the page, where a sticky bar sits in its own place in the flow.
  window.scrollTo(0, document.documentElement.scrollHeight);
  out.height = document.documentElement.scrollHeight;
  const name = el => {
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '')
      .replace(/\\s+/g, ' ').trim().slice(0, 40);
    const id = el.id ? '#' + el.id : (el.className && typeof el.className === 'string'
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
    return `${el.tagName.toLowerCase()}${id} "${text}"`;
  };
  const rects = el => {
    // Each line's fragment of a link that wraps: its bounding box would span both lines whole.
    if (!el.checkVisibility({contentVisibilityAuto: true, opacityProperty: true, visibilityProperty: true})) return [];
    return [...el.getClientRects()].filter(r => r.width >= 2 && r.height >= 2 && r.bottom + window.scrollY > 0)
      .map(r => ({x1: r.left + window.scrollX, y1: r.top + window.scrollY, x2: r.right + window.scrollX, y2: r.bottom + window.scrollY}));
  };
  const seen = el => {
    // Not what a closed <details> holds, nor what is transparent or hidden.
    if (!el.checkVisibility({contentVisibilityAuto: true, opacityProperty: true, visibilityProperty: true})) return null;
    const r = el.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) return null;  // visually hidden (1 px), or not rendered
    if (r.bottom + window.scrollY <= 0) return null;  // the skip link, until focused
    return {x1: r.left + window.scrollX, y1: r.top + window.scrollY,
            x2: r.right + window.scrollX, y2: r.bottom + window.scrollY};
  };
  const controls = [];
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=tab]';
  for (const el of document.querySelectorAll(selector)) {
    for (const box of rects(el)) controls.push([el, box]);
  }
  controls.sort((a, b) => a[1].y1 - b[1].y1);
  for (let i = 0; i < controls.length; i++) {
    const [a, p] = controls[i];
    for (let j = i + 1; j < controls.length && controls[j][1].y1 < p.y2; j++) {
      const [b, q] = controls[j];
      if (a === b || a.contains(b) || b.contains(a)) continue;
      const w = Math.min(p.x2, q.x2) - Math.max(p.x1, q.x1);
      const h = Math.min(p.y2, q.y2) - Math.max(p.y1, q.y1);
      if (w > 1 && h > 1) out.overlaps.push(`${name(a)} × ${name(b)}`);
    }
  }
  // Cut off: a box that clips or scrolls its content sideways (tables, cards, chips), unless
  // it truncates with an ellipsis on purpose or is a focusable scroll region (a diff).
  for (const el of document.body.querySelectorAll('*')) {
    if (el.matches('input, textarea, select, [tabindex="0"]')) continue;
    const cs = getComputedStyle(el);
    if (cs.position === 'sticky') out.sticky = true;
    if (!['auto', 'scroll', 'hidden', 'clip'].includes(cs.overflowX)) continue;
    if (cs.textOverflow === 'ellipsis' || el.clientWidth < 2 || !seen(el)) continue;
    if (el.scrollWidth > el.clientWidth + 1) out.clipped.push(`${name(el)} ${el.scrollWidth}>${el.clientWidth}`);
  }
  // Squeezed: a phrase broken over three or more lines none wider than 110 px — a title a
  // word per line, a note a character per line.
  const range = document.createRange();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (text.length < 16 || !node.parentElement || !seen(node.parentElement)) continue;
    range.selectNodeContents(node);
    const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    if (lines.size < 3) continue;
    const widest = Math.max(...[...range.getClientRects()].map(r => r.width));
    if (widest < 110) out.squeezed.push(`"${text.slice(0, 40)}" in ${name(node.parentElement)}: ${lines.size} lines, ${Math.round(widest)} px`);
  }
  // Text over text: a due date running into the evidence beside it. Each line of each text
  // node, cut to the boxes that clip it (an ellipsis), against the lines near it.
  const clipOf = new Map();
  const clip = el => {
    if (clipOf.has(el)) return clipOf.get(el);
    let box = {x1: -1e9, y1: -1e9, x2: 1e9, y2: 1e9};
    if (el.parentElement) box = {...clip(el.parentElement)};
    const cs = getComputedStyle(el);
    if (cs.overflowX !== 'visible' || cs.overflowY !== 'visible') {
      const r = el.getBoundingClientRect();
      box = {x1: Math.max(box.x1, r.left + window.scrollX), y1: Math.max(box.y1, r.top + window.scrollY),
             x2: Math.min(box.x2, r.right + window.scrollX), y2: Math.min(box.y2, r.bottom + window.scrollY)};
    }
    clipOf.set(el, box);
    return box;
  };
  const lines = [];
  const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = texts.nextNode(); node; node = texts.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || el.closest('.visually-hidden, script, style') || !seen(el)) continue;
    const c = clip(el);
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      const box = {x1: Math.max(c.x1, r.left + window.scrollX), y1: Math.max(c.y1, r.top + window.scrollY),
                   x2: Math.min(c.x2, r.right + window.scrollX), y2: Math.min(c.y2, r.bottom + window.scrollY)};
      if (box.x2 - box.x1 > 2 && box.y2 - box.y1 > 2) lines.push([node, box]);
      else continue;
      // Text sticking out of its box: past the edge of the block that holds it.
      let holder = el;
      while (holder.parentElement && getComputedStyle(holder).display.startsWith('inline')) holder = holder.parentElement;
      const h = holder.getBoundingClientRect();
      if (box.x2 > h.right + window.scrollX + 2 || box.x1 < h.left + window.scrollX - 2) {
        out.sticking_out.push(`"${node.textContent.trim().slice(0, 30)}" out of ${name(holder)} by ${Math.round(Math.max(box.x2 - h.right - window.scrollX, h.left + window.scrollX - box.x1))} px`);
      }
    }
  }
  lines.sort((a, b) => a[1].y1 - b[1].y1);
  for (let i = 0; i < lines.length; i++) {
    const [a, p] = lines[i];
    for (let j = i + 1; j < lines.length && lines[j][1].y1 < p.y2; j++) {
      const [b, q] = lines[j];
      if (a === b) continue;
      const w = Math.min(p.x2, q.x2) - Math.max(p.x1, q.x1);
      const h = Math.min(p.y2, q.y2) - Math.max(p.y1, q.y1);
      if (w > 3 && h > 3) out.overlapping_text.push(`"${a.textContent.trim().slice(0, 30)}" × "${b.textContent.trim().slice(0, 30)}" in ${name(b.parentElement)}`);
    }
  }
  window.scrollTo(0, 0);
  return out;
}"""


# The closure card's left border and background, and the theme's greens for "done".
CLOSURE_COLOURS = """el => {
  const probe = document.createElement('span');
  probe.style.color = 'var(--ok)';
  probe.style.backgroundColor = 'var(--ok-bg)';
  document.body.append(probe);
  const greens = [getComputedStyle(probe).color, getComputedStyle(probe).backgroundColor];
  probe.remove();
  const cs = getComputedStyle(el);
  return {border: cs.borderLeftColor, background: cs.backgroundImage, greens};
}"""


def check(page: Any, width: int, role: str, name: str, heights: dict[str, int]) -> list[str]:
    """The problems on the page as it stands, one line each; notes its height in `heights`
    and saves its screenshot."""
    found = page.evaluate(CHECKS)
    where = f"{width}px {role} {name}"
    heights[f"{role}-{name}@{width}"] = found["height"]
    problems = []
    if found["overflow"]:
        problems.append(f"{where}: scrolls sideways ({found['overflow']}px wide)")
    if found["hidden_nav"]:
        problems.append(f"{where}: navigation out of sight: {found['hidden_nav']}")
    problems += [f"{where}: overlapping controls {o}" for o in found["overlaps"][:5]]
    problems += [f"{where}: cut off {c}" for c in found["clipped"][:5]]
    problems += [f"{where}: text over text {t}" for t in found["overlapping_text"][:5]]
    problems += [f"{where}: text out of its box {t}" for t in found["sticking_out"][:5]]
    problems += [f"{where}: squeezed text {s}" for s in found["squeezed"][:5]]
    problems += [f"{where}: axe {v}" for v in axe_violations(page)]
    folder = ARTIFACTS / str(width)
    folder.mkdir(parents=True, exist_ok=True)
    if found["sticky"]:  # a screen as tall as the page: the sticky bar where it sits in the flow
        page.set_viewport_size({"width": width, "height": found["height"]})
    page.screenshot(path=str(folder / f"{role}-{name}.png"), full_page=True)
    if found["sticky"]:
        page.set_viewport_size({"width": width, "height": SIZES[width]})
    return problems


def too_tall(heights: dict[str, int]) -> list[str]:
    """Pages whose phone height is out of proportion with the laptop's, or without end."""
    problems = []
    phone, laptop = SIZES
    for key, height in heights.items():
        page, width = key.rsplit("@", 1)
        if int(width) != phone:
            continue
        limit = min(
            MAX_PHONE_HEIGHT, PHONE_HEIGHT_RATIO * heights[f"{page}@{laptop}"] + SIZES[phone]
        )
        if height > limit:
            problems.append(f"{phone}px {page}: {height}px tall (at most {limit:.0f})")
    return problems


def _context(chromium: Any, live_server: Any, width: int, **options: Any) -> Any:
    context = chromium.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": SIZES[width]},
        locale="en-GB",
        **options,
    )
    context.set_default_timeout(15_000)
    context.add_init_script(path=str(AXE))  # in each page as it loads, not sent per check
    return context


def _visit(page: Any, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status < 500, (url, response and response.status)


# --- the data: a client mid-exit ------------------------------------------------------------


def _northwind(
    cast: dict[str, Any], playbooks: dict[str, Any], client_contract: Any
) -> dict[str, Any]:
    """Northwind leaving Acme: an active case past its end date with work delivered, a portal
    link answered (one item acknowledged, one disputed) and a waiver."""
    from django.utils import timezone

    from offboard.cases.services import grant_waiver, open_case
    from offboard.portal.selectors import link_for_token, manifest, manifest_digest
    from offboard.portal.services import acknowledge_items, dispute_item, issue_portal_link
    from tests.portal.conftest import deliver_work, token_of, upload_files

    alice = cast["alice"]
    client, contract = client_contract
    nina = client.contacts.get()
    opened = open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="termination_by_client",
        trigger_date=dt.date.today() - dt.timedelta(days=45),
        owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"],
    )
    active = deliver_work(opened, cast, upload_files(alice))
    issued = issue_portal_link(
        actor=alice, case=active, contact=nina, base_url="http://unused", send_email=False
    )
    token = token_of(issued.url)
    first, second = active.handover_items.order_by("id")[:2]
    answer = {"ip": "203.0.113.9", "user_agent": "PortalTest/1.0"}
    acknowledge_items(
        link=link_for_token(token),
        items=[f"handover_item:{first.pk}"],
        typed_name="Nina North",
        confirmed=True,
        manifest_sha256=manifest_digest(manifest(active)),
        **answer,
    )
    dispute_item(
        link=link_for_token(token),
        item=f"handover_item:{second.pk}",
        comment="We still do not have admin rights on the Google Ads account.",
        manifest_sha256=manifest_digest(manifest(active)),
        **answer,
    )
    grant_waiver(
        actor=cast["bob"],
        case=active,
        target_type="access_grant",
        target_id=active.access_grants.order_by("id").first().pk,
        justification="Northwind asked us to keep read access to the analytics for 90 days",
        expires_at=timezone.now() + dt.timedelta(days=90),
    )
    return {"active": active.ref, "client": client.pk, "contact": nina.pk, "token": token}


@pytest.fixture
def northwind(cast, playbooks, client_contract) -> dict[str, Any]:
    return _northwind(cast, playbooks, client_contract)


@pytest.fixture
def offices(cast, playbooks, client_contract) -> dict[str, Any]:
    """Northwind's exit, after a closed case (its closure receipt sent) and a cancelled one;
    a second client, a second playbook version, API tokens and a checkpoint — so every list
    and table has rows."""
    from django.db import transaction

    from offboard.accounts.services import create_api_token
    from offboard.calendar.services import create_calendar_feed
    from offboard.cases.services import cancel_case, open_case
    from offboard.clients.services import add_contact, create_client, create_contract
    from offboard.inbound.services import create_inbound_endpoint
    from offboard.ledger.checkpoints import issue_checkpoint
    from offboard.notifications import receipts
    from offboard.playbooks.services import import_playbook
    from offboard.webhooks.services import create_webhook_endpoint
    from tests.calendar.conftest import BASE, member
    from tests.factories import close_with_approvals, settle_everything
    from tests.web.test_playbooks_pages import consulting_v2

    alice = cast["alice"]
    client, contract = client_contract
    webhook = create_webhook_endpoint(  # its deliveries wait (none is attempted here)
        actor=alice,
        name="CRM",
        url="https://crm.example.com/hooks/offboard",
        event_types=["case.closed", "case.cancelled", "client.created"],
    ).endpoint

    def northwind_case() -> Any:
        return open_case(
            actor=alice,
            client=client,
            contracts=[contract],
            trigger="termination_by_client",
            trigger_date=dt.date.today(),
            owner_id=alice.user.pk,
            playbook_version=playbooks["marketing_agency"],
        )

    closed = close_with_approvals(settle_everything(northwind_case(), cast), cast)
    receipts.process_pending()  # the certificate, and the receipt mailed with its Message-ID
    cancelled = cancel_case(
        actor=alice,
        case=northwind_case(),
        reason="Northwind renewed for another year after all; the exit is off.",
    )
    lumen = create_client(actor=alice, name="Lumen Architecture Studio", reference="CRM-20417")
    add_contact(
        actor=alice, client=lumen, name="Lea Lumen", email="lea@lumen.example", role="primary"
    )
    create_contract(
        actor=alice,
        client=lumen,
        reference="LU-2024-07",
        service_type="software_development",
        fee_type="time_and_materials",
        start_date=dt.date(2024, 7, 1),
        notice_period_days=30,
        data_return_window_days=30,
    )
    import_playbook(actor=alice, source=consulting_v2())
    for name in ROLES.values():
        create_api_token(actor=cast[name], name="CRM integration (nightly sync)")
    for name in ("alice", "bob"):  # a calendar feed in use (erin's card offers to create one)
        create_calendar_feed(actor=cast[name], membership=member(cast[name]), base_url=BASE)
    create_inbound_endpoint(actor=alice, name="HubSpot deals", case_owner_id=alice.user.pk)
    with transaction.atomic():
        issue_checkpoint(org=closed.org, reason="manual")
    northwind = _northwind(cast, playbooks, client_contract)
    run = _connector_run(alice, northwind["active"])
    return {
        **northwind,
        "run": run,
        "closed": closed.ref,
        "cancelled": cancelled.ref,
        "other_client": lumen.pk,
        "webhook": webhook.pk,
    }


def _connector_run(alice: Any, ref: str) -> str:
    """A connection (pointing at nothing: the pages shown here do not call it) and a finished
    revoke run on the active case, one grant absent and one still open."""
    from offboard.cases.models import AccessGrant, OffboardingCase
    from offboard.connectors.models import ConnectorRun
    from offboard.connectors.runs import request_run
    from offboard.connectors.services import create_connection

    case = OffboardingCase.objects.get(ref=ref)
    conn = create_connection(
        actor=alice,
        name="Client directory (SCIM)",
        kind="scim",
        config={"url": "http://127.0.0.1:9/scim/v2"},
        secret="not-a-real-token",
    )
    grants = list(AccessGrant.objects.filter(case=case, planned_action="revoke", status="active"))
    run = request_run(actor=alice, case=case, connection=conn, grants=grants[:2])
    results = [
        {"grant": g.pk, "label": g.label(), "account": "ann@northwind.example",
         "outcome": "revoked", "observation": "absent",
         "detail": "The user is inactive and no group lists it.",
         "operations": [{"action": "remove_member", "status": "revoked", "detail": ""},
                        {"action": "deactivate", "status": "revoked", "detail": ""}]}
        for g in grants[:1]
    ] + [
        {"grant": g.pk, "label": g.label(), "account": None, "outcome": "failed",
         "observation": None, "detail": "no single account in Client directory matches it",
         "operations": []}
        for g in grants[1:2]
    ]  # fmt: skip
    ConnectorRun.objects.filter(pk=run.pk).update(
        state="done", done=len(results), results=results, attempts=1
    )
    return str(run.public_id)


# --- the matrix ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_staff_page_works_on_a_phone_and_a_laptop(chromium, live_server, offices):
    problems: list[str] = []
    errors: list[str] = []
    closure: dict[str, Any] = {}
    heights: dict[str, int] = {}
    for width in SIZES:
        for role, username in ("anonymous", None), *ROLES.items():
            context = _context(chromium, live_server, width)
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            if username is None:
                _visit(page, "/login/")
                problems += check(page, width, role, "login", heights)
                context.close()
                continue
            log_in(page, username, PASSWORD)
            for p in STAFF:
                if role not in p.roles:
                    continue
                _visit(page, p.url.format(**offices))
                if p.then:
                    p.then(page)
                problems += check(page, width, role, p.name, heights)
                if p.name in ("case-closed", "case-cancelled"):
                    closure[p.name] = page.locator("#closure").evaluate(CLOSURE_COLOURS)
            context.close()
    assert not errors, f"JavaScript errors: {errors}"
    problems += too_tall(heights)
    assert not problems, "\n".join(problems)
    # A cancelled case's closure card reads as cancelled: neutral, not the closed case's green.
    ok, ok_bg = closure["case-closed"]["greens"]
    assert closure["case-closed"]["border"] == ok and ok_bg in closure["case-closed"]["background"]
    assert closure["case-cancelled"]["border"] != ok
    assert ok_bg not in closure["case-cancelled"]["background"]


@pytest.mark.django_db(transaction=True)
def test_every_portal_page_works_on_a_phone_and_a_laptop(
    chromium, live_server, northwind, settings, monkeypatch, request
):
    # The limits count per calendar minute: two requests either side of a minute's end would
    # both be the first of their minute, so the minute stands still for this test.
    monkeypatch.setattr(ratelimit, "_minute_and_rest", lambda: (29_000_000, 30))
    settings.OFFBOARD_PORTAL_RATE_PER_IP = 0  # the matrix asks for more pages than a contact
    settings.OFFBOARD_PORTAL_RATE_PER_LINK = 0
    base = f"/portal/{northwind['token']}/"
    problems: list[str] = []
    heights: dict[str, int] = {}
    for width in SIZES:
        # axe-core is injected despite the portal's CSP, as in test_portal.py.
        context = _context(chromium, live_server, width, bypass_csp=True)
        request.addfinalizer(context.close)  # closed even when a check below fails
        page = context.new_page()
        _visit(page, base)
        acknowledge = page.get_by_role("link", name="Acknowledge all").get_attribute("href")
        dispute = page.locator("a", has_text="Dispute").first.get_attribute("href")
        problems += check(page, width, "client", "portal", heights)
        _visit(page, acknowledge)
        problems += check(page, width, "client", "portal-acknowledge", heights)
        _visit(page, dispute)
        problems += check(page, width, "client", "portal-dispute", heights)
        page.goto("/portal/not-a-valid-token/")
        problems += check(page, width, "client", "portal-invalid", heights)
        page.goto(f"{base}files/{'0' * 64}")
        problems += check(page, width, "client", "portal-no-file", heights)
        settings.OFFBOARD_PORTAL_RATE_PER_IP = 1
        page.goto(base)
        page.goto(base)
        expect(page.get_by_role("heading", name="Too many requests")).to_be_visible()
        problems += check(page, width, "client", "portal-slow-down", heights)
        settings.OFFBOARD_PORTAL_RATE_PER_IP = 0
    problems += too_tall(heights)
    assert not problems, "\n".join(problems)


@pytest.mark.django_db(transaction=True)
def test_the_unsubscribe_pages_work_on_a_phone_and_a_laptop(chromium, live_server, cast, request):
    from offboard.accounts.models import Membership
    from offboard.reminders.emails import unsubscribe_url
    from offboard.reminders.models import Preference

    alice = Membership.objects.get(user=cast["alice"].user)
    link = unsubscribe_url(org_id=alice.org_id, user_id=alice.user_id, channel="digest")
    path = "/" + link.split("/", 3)[3]
    problems: list[str] = []
    heights: dict[str, int] = {}
    for width in SIZES:
        context = _context(chromium, live_server, width, bypass_csp=True)
        request.addfinalizer(context.close)
        page = context.new_page()
        _visit(page, path)
        problems += check(page, width, "member", "unsubscribe", heights)
        page.get_by_role("button", name="Stop these emails").click()
        page.get_by_role("heading", name="Done: no more of these emails").wait_for()
        problems += check(page, width, "member", "unsubscribed", heights)
        page.goto(path.replace(":", "x:", 1))
        problems += check(page, width, "member", "unsubscribe-invalid", heights)
        # The next width starts from the question again.
        Preference.objects.filter(user=alice.user).update(digest=True)
    problems += too_tall(heights)
    assert not problems, "\n".join(problems)
