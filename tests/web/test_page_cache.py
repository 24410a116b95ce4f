"""The workspace kept whole, by the rows it shows (web/page_cache.py, decision 0036): a kept
page is the page built afresh, whatever changed in the database and by whatever means,
whoever looks and whenever; it is never used past an instant its rows compare the time with;
a page built while its case changed is not kept; each answer carries its own working token."""

import datetime as dt
import re

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from offboard.core import clock
from offboard.web import fragments, workspace_page
from tests.factories import upload
from tests.test_demo import _demo_loaded, demo  # noqa: F401 (fixtures: the demo, loaded once)

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"')
ANY_TOKEN = re.compile(r'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[A-Za-z0-9]+')


@pytest.fixture(autouse=True)
def _kept(settings):
    settings.OFFBOARD_PAGE_CACHE = True
    caches["pages"].clear()
    yield
    caches["pages"].clear()


@pytest.fixture
def builds(monkeypatch):
    """How many times the page was built (its context made) rather than read from the cache."""
    made = []
    real = workspace_page.workspace_context

    def counted(*args, **kwargs):
        made.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(workspace_page, "workspace_context", counted)
    return made


def _client(user, **kwargs):
    c = Client(**kwargs)
    c.force_login(user)
    return c


def _page(client, ref, settings, *, kept=True, query=""):
    settings.OFFBOARD_PAGE_CACHE = kept
    response = client.get(f"/cases/{ref}/{query}")
    assert response.status_code == 200
    return ANY_TOKEN.sub(r"\1T", response.content.decode())


def _same_either_way(client, ref, settings, query=""):
    """The page read through the cache (filled now or earlier) is the page built afresh."""
    fresh = _page(client, ref, settings, kept=False, query=query)
    assert _page(client, ref, settings, query=query) == fresh
    assert _page(client, ref, settings, query=query) == fresh
    return fresh


def test_a_page_is_built_once_and_then_read_until_something_changes(cast, case, settings, builds):
    alice = cast["alice"]
    web = _client(alice.user)
    first = _page(web, case.ref, settings)
    assert _page(web, case.ref, settings) == first
    assert builds == [case.ref]  # the second answer was read, not built
    step = case.steps.get(key="confirm_notice")
    from offboard.cases.services import complete_step

    complete_step(actor=alice, step=step, evidence=[upload(alice)])
    changed = _page(web, case.ref, settings)
    assert builds == [case.ref, case.ref]
    assert re.search(rf'id="step-{step.pk}" class="step st-done', changed)
    assert changed == _page(web, case.ref, settings, kept=False)


def test_turned_off_it_keeps_nothing(cast, case, settings, builds):
    web = _client(cast["alice"].user)
    _page(web, case.ref, settings, kept=False)
    _page(web, case.ref, settings, kept=False)
    assert builds == [case.ref, case.ref]
    assert len(caches["pages"]._cache) == 0


def test_each_viewer_and_each_view_has_its_own_page(cast, case, settings):
    """alice works every step, erin (an auditor) none: erin's page, read after alice's was
    kept, offers none of alice's forms; the whole timeline is another page than its end."""
    alice_page = _page(_client(cast["alice"].user), case.ref, settings)
    assert "Mark done" in alice_page
    erin = _client(cast["erin"].user)
    erin_page = _same_either_way(erin, case.ref, settings)
    assert "Mark done" not in erin_page
    from django.db import transaction

    from offboard.ledger.recorder import record_event

    with transaction.atomic():
        for i in range(60):  # more than the 50 the timeline shows
            record_event(actor=cast["alice"], type="case.note", case=case, data={"text": f"{i}"})
    web = _client(cast["alice"].user)
    end = _same_either_way(web, case.ref, settings)
    everything = _same_either_way(web, case.ref, settings, query="?events=all")
    assert "Show all" in end and "Show all" not in everything


@pytest.mark.parametrize("viewer", ["alice", "erin"])
def test_any_change_behind_the_services_back_is_shown(cast, case, settings, viewer):
    """Each table the page reads, written directly (no event, no service): the kept page is
    never the one from before — for alice, whose forms repeat values, and for erin."""
    from offboard.accounts.models import Membership, User
    from offboard.cases.models import AccessGrant, OffboardingCase, Step
    from offboard.clients.models import Client as ClientModel
    from offboard.clients.models import Contact, Contract
    from offboard.evidence.models import EvidenceFile
    from offboard.ledger.models import LedgerEntry
    from offboard.playbooks.models import Playbook

    alice = cast["alice"]
    step = case.steps.get(key="confirm_notice")
    from offboard.cases.services import complete_step

    complete_step(actor=alice, step=step, evidence=[upload(alice, name="memo.pdf")])
    web = _client(cast[viewer].user)
    file = step.evidence.get()
    grant = case.access_grants.first()
    changes = {
        "case": lambda: OffboardingCase.objects.filter(pk=case.pk).update(
            effective_end_date=case.effective_end_date + dt.timedelta(days=3)
        ),
        "client": lambda: ClientModel.objects.filter(pk=case.client_id).update(
            name="Renamed Client Ltd"
        ),
        "contract": lambda: Contract.objects.filter(cases=case).update(reference="MSA-RENAMED"),
        "playbook": lambda: Playbook.objects.filter(versions__cases=case).update(
            name="Renamed playbook"
        ),
        "step": lambda: Step.objects.filter(pk=step.pk).update(title="Notice confirmed by post"),
        "file": lambda: EvidenceFile.objects.filter(pk=file.pk).update(
            original_name="renamed-memo.pdf"
        ),
        "step link": lambda: step.evidence.add(upload(alice, b"%PDF-1.4 more", "more.pdf")),
        "item": lambda: AccessGrant.objects.filter(pk=grant.pk).update(system="Renamed CRM"),
        "user": lambda: User.objects.filter(pk=alice.user.pk).update(first_name="Alicia"),
        "redaction": lambda: LedgerEntry.objects.filter(
            pk=LedgerEntry.objects.filter(case=case).latest("index").pk
        ).update(body=b"", redacted=True),
    }
    if viewer == "alice":  # in alice's forms only: whom a link goes to, who may own work
        changes["contact"] = lambda: Contact.objects.filter(client=case.client_id).update(
            name="Renamed Contact"
        )
        changes["member"] = lambda: Membership.objects.filter(user=cast["erin"].user).update(
            role="operator"
        )
    for name, change in changes.items():
        before = _page(web, case.ref, settings)
        change()
        after = _same_either_way(web, case.ref, settings)
        assert after != before, f"changing the {name} does not show on the page at all"


def test_a_role_changed_behind_the_services_back_is_shown(cast, case, settings):
    from offboard.accounts.models import Membership

    alice = cast["alice"]
    web = _client(alice.user)
    assert "Mark done" in _page(web, case.ref, settings)
    Membership.objects.filter(user=alice.user, org=case.org).update(role="auditor")
    assert "Mark done" not in _same_either_way(web, case.ref, settings)


def test_a_kept_page_is_not_used_past_an_instant_its_rows_hold(cast, case, settings):
    """A waiver in force until a minute from now: the page kept now says so; two minutes on,
    with nothing changed in the database, the page says it expired."""
    from offboard.cases.services import grant_waiver

    now = clock.now()
    grant = case.access_grants.first()
    grant_waiver(
        actor=cast["bob"],
        case=case,
        target_type="access_grant",
        target_id=grant.pk,
        justification="The client keeps this account until the migration is done.",
        expires_at=now + dt.timedelta(minutes=1),
    )
    web = _client(cast["alice"].user)
    waivers = re.compile(r'id="waivers".*?</section>', re.S)
    page = _same_either_way(web, case.ref, settings)
    assert "in force" in waivers.search(page)[0] and "expired" not in waivers.search(page)[0]
    with clock.pinned(now + dt.timedelta(minutes=2)):
        later = _page(web, case.ref, settings)
        assert "expired" in waivers.search(later)[0]
        assert later == _page(web, case.ref, settings, kept=False)


def test_a_kept_page_is_not_used_on_another_day(cast, case, settings, builds):
    """Overdue steps and days left are counted from today: tomorrow is another page."""
    web = _client(cast["alice"].user)
    _page(web, case.ref, settings)
    tomorrow = clock.now() + dt.timedelta(days=1)
    with clock.pinned(tomorrow):
        _page(web, case.ref, settings)
    assert builds == [case.ref, case.ref]


def test_a_page_built_while_its_case_changed_is_not_kept(cast, case, settings, monkeypatch):
    """A step renamed while the page is built: what was built may show either name, so it is
    not kept under the key read before; the next answer shows the new name."""
    from offboard.cases.models import Step

    step = case.steps.get(key="confirm_notice")
    real = workspace_page.workspace_context

    def meanwhile(*args, **kwargs):
        context = real(*args, **kwargs)
        Step.objects.filter(pk=step.pk).update(title="Renamed while building")
        return context

    monkeypatch.setattr(workspace_page, "workspace_context", meanwhile)
    web = _client(cast["alice"].user)
    assert "Renamed while building" not in _page(web, case.ref, settings)
    assert len(caches["pages"]._cache) == 0
    monkeypatch.setattr(workspace_page, "workspace_context", real)
    assert "Renamed while building" in _page(web, case.ref, settings)


def test_a_kept_page_carries_each_answer_s_own_token(cast, case, settings, builds):
    """alice's page kept from one session is read by another of hers: it carries that
    session's token, which is accepted, and never the placeholder."""
    _client(cast["alice"].user).get(f"/cases/{case.ref}/")
    other = _client(cast["alice"].user, enforce_csrf_checks=True)
    body = other.get(f"/cases/{case.ref}/").content.decode()
    assert builds == [case.ref]  # read from the cache
    assert "__offboard-csrf-token__" not in body
    step = case.steps.get(key="confirm_notice")
    row = body.split(f'id="step-{step.pk}"')[1].split("</li>")[0]
    posted = other.post(
        f"/cases/{case.ref}/steps/{step.key}/not-applicable",
        {"reason": "The client gave notice in person", "csrfmiddlewaretoken": TOKEN.search(row)[1]},
    )
    assert posted.status_code == 302
    step.refresh_from_db()
    assert step.status == "not_applicable"


def test_another_organization_s_case_is_not_found_even_when_kept(cast, case, settings, mallory):
    _page(_client(cast["alice"].user), case.ref, settings)
    assert _client(mallory.user).get(f"/cases/{case.ref}/").status_code == 404
    assert _client(cast["alice"].user).get("/cases/C-1999-0001/").status_code == 404


def test_a_failed_form_is_shown_and_never_kept(cast, case, settings):
    web = _client(cast["alice"].user)
    _page(web, case.ref, settings)
    step = case.steps.get(key="confirm_notice")
    failed = web.post(f"/cases/{case.ref}/steps/{step.key}/not-applicable", {"reason": ""})
    assert failed.status_code == 422
    assert '<details class="pop pop-right" open>' in failed.content.decode()
    again = _page(web, case.ref, settings)
    assert '<details class="pop pop-right" open>' not in again


# --- on the demo: every kind of case, every role -------------------------------------------------


def _demo_cases():
    from offboard.cases.models import OffboardingCase

    return list(OffboardingCase.objects.filter(org__slug="brightline").order_by("ref"))


def test_on_every_demo_case_the_kept_page_is_the_page_built_afresh(demo, settings):  # noqa: F811
    from offboard.accounts.models import User

    cases = _demo_cases()
    assert {c.state for c in cases} >= {"draft", "active", "closing", "closed", "cancelled"}
    for username in ("alice", "erin", "oscar"):
        web = _client(User.objects.get(username=username))
        for case in cases:
            _same_either_way(web, case.ref, settings)


def test_the_body_needs_nothing_of_the_request_but_what_its_context_names(demo, settings):  # noqa: F811
    """The kept body is rendered without context processors (user, messages, request): the
    same body rendered with them is identical, so it shows nothing they would add."""
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from offboard.accounts.models import Membership
    from offboard.web import page_cache

    membership = Membership.objects.select_related("user", "org").get(
        user__username="alice", org__slug="brightline"
    )
    for case in _demo_cases():
        request = RequestFactory().get(f"/cases/{case.ref}/")
        request.user = membership.user
        context = workspace_page.workspace_context(request, membership, case.ref)
        plain = render_to_string(workspace_page.BODY, context, request=request)
        kept = fragments.with_token(request, page_cache.body(request, context, workspace_page.BODY))
        assert ANY_TOKEN.sub(r"\1T", kept) == ANY_TOKEN.sub(r"\1T", plain), case.ref


def test_building_the_page_reads_no_table_its_key_does_not(demo):  # noqa: F811
    """Every table the page's context and body read is one the key reads (page_cache.TABLES):
    a new query on the page without a new source in the key fails here."""
    from django.test import RequestFactory

    from offboard.accounts.models import Membership
    from offboard.web import page_cache

    read: set[str] = set()
    for username in ("alice", "erin"):
        membership = Membership.objects.select_related("user", "org").get(
            user__username=username, org__slug="brightline"
        )
        for case in _demo_cases():
            request = RequestFactory().get(f"/cases/{case.ref}/")
            request.user = membership.user
            with CaptureQueriesContext(connection) as queries:
                context = workspace_page.workspace_context(request, membership, case.ref)
                page_cache.body(request, context, workspace_page.BODY)
            for query in queries.captured_queries:
                read |= set(re.findall(r'(?:FROM|JOIN) "([a-z_0-9]+)"', query["sql"]))
    assert {"cases_step", "notifications_closure_receipt", "portal_link"} <= read
    assert read - page_cache.TABLES == set()


def test_with_debug_on_an_edited_template_shows_at_once(settings, monkeypatch):
    """`make run` (debug on): the templates' source is read on every answer, so an edit shows
    without a restart; in production it is read once per process (a deploy restarts them)."""
    from pathlib import Path

    from offboard.web import page_cache

    names = ("web/partials/ws_step_row.html",)
    settings.DEBUG = False
    page, row = page_cache._templates_digest(), fragments._templates_digest(names)
    monkeypatch.setattr(Path, "read_bytes", lambda self: b"{# edited #}")
    try:
        assert page_cache._templates_digest() == page  # read once
        assert fragments._templates_digest(names) == row
        settings.DEBUG = True
        assert page_cache._templates_digest() != page  # read again
        assert fragments._templates_digest(names) != row
    finally:
        monkeypatch.undo()
        page_cache._templates.clear()
        fragments._sources.clear()
