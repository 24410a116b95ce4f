"""Workspace rows kept by what they show (web/fragments.py): a page built from kept rows is the
page rendered afresh, whatever changed in between and whoever looks; each answer carries its
own CSRF token, and that token works."""

import re

import pytest
from django.core.cache import caches
from django.test import Client

from offboard.cases.services import complete_step
from tests.factories import settle_everything, upload

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"')
ANY_TOKEN = re.compile(r'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[A-Za-z0-9]+')


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    settings.OFFBOARD_PAGE_CACHE = False  # whole pages would hide the rows (test_page_cache.py)
    caches["fragments"].clear()
    yield
    caches["fragments"].clear()


def _client(user, **kwargs):
    c = Client(**kwargs)
    c.force_login(user)
    return c


def _page(client, case, settings, *, kept):
    settings.OFFBOARD_FRAGMENT_CACHE = kept
    response = client.get(f"/cases/{case.ref}/")
    assert response.status_code == 200
    return ANY_TOKEN.sub(r"\1T", response.content.decode())


def _same_either_way(client, case, settings):
    """The page from kept rows (filled now, then read back) is the page rendered afresh."""
    fresh = _page(client, case, settings, kept=False)
    assert _page(client, case, settings, kept=True) == fresh
    assert _page(client, case, settings, kept=True) == fresh
    return fresh


def test_kept_rows_equal_fresh_rows_through_a_case_s_changes(cast, case, settings):
    alice = cast["alice"]
    web = _client(alice.user)
    _same_either_way(web, case, settings)
    assert len(caches["fragments"]._cache) >= case.steps.count()  # the rows were kept

    step = case.steps.get(key="confirm_notice")
    complete_step(actor=alice, step=step, evidence=[upload(alice)])
    page = _same_either_way(web, case, settings)
    assert re.search(rf'id="step-{step.pk}" class="step st-done', page)

    settle_everything(case, cast)  # revocations, verifications, settlements, every step
    page = _same_either_way(web, case, settings)
    assert 'class="badge pending"' not in page.split('id="steps"')[1].split("</section>")[0]


def test_a_renamed_owner_is_shown_by_the_new_name(cast, case, settings):
    web = _client(cast["alice"].user)
    assert "Alice" in _page(web, case, settings, kept=True)
    owner = case.steps.first().owner
    owner.first_name, owner.last_name = "Alicia", "Renamed"
    owner.save(update_fields=["first_name", "last_name"])
    page = _same_either_way(web, case, settings)
    assert "Alicia Renamed" in page


def test_rows_kept_for_one_role_are_not_shown_to_another(cast, case, settings):
    """alice may work every step; erin, an auditor, may not: her page, read after alice's
    filled the cache, offers none of alice's forms."""
    alice_page = _page(_client(cast["alice"].user), case, settings, kept=True)
    assert "Mark done" in alice_page and "Mark not applicable" in alice_page
    erin = _client(cast["erin"].user)
    erin_page = _page(erin, case, settings, kept=True)
    assert "Mark done" not in erin_page and "Mark not applicable" not in erin_page
    assert erin_page == _page(erin, case, settings, kept=False)


def test_each_answer_carries_its_own_token_and_it_is_accepted(cast, case, settings):
    settings.OFFBOARD_FRAGMENT_CACHE = True
    _client(cast["bob"].user).get(f"/cases/{case.ref}/")  # bob's rows fill the cache
    alice = _client(cast["alice"].user, enforce_csrf_checks=True)
    body = alice.get(f"/cases/{case.ref}/").content.decode()
    assert "__offboard-csrf-token__" not in body
    step = case.steps.get(key="confirm_notice")
    row = body.split(f'id="step-{step.pk}"')[1].split("</li>")[0]
    token = TOKEN.search(row)[1]
    posted = alice.post(
        f"/cases/{case.ref}/steps/{step.key}/not-applicable",
        {"reason": "The client gave notice in person", "csrfmiddlewaretoken": token},
    )
    assert posted.status_code == 302
    step.refresh_from_db()
    assert step.status == "not_applicable"
    refused = alice.post(
        f"/cases/{case.ref}/steps/{step.key}/reopen",
        {"reason": "again", "csrfmiddlewaretoken": "__offboard-csrf-token__"},
    )
    assert refused.status_code == 403


def test_a_failed_form_is_never_kept(cast, case, settings):
    settings.OFFBOARD_FRAGMENT_CACHE = True
    web = _client(cast["alice"].user)
    step = case.steps.get(key="confirm_notice")
    failed = web.post(
        f"/cases/{case.ref}/steps/{step.key}/not-applicable", {"reason": ""}
    ).content.decode()
    assert failed.count('<details class="pop pop-right" open>') == 1
    again = web.get(f"/cases/{case.ref}/").content.decode()
    assert '<details class="pop pop-right" open>' not in again


@pytest.mark.parametrize("viewer", ["alice", "erin"])
def test_any_change_to_what_a_row_reads_is_shown(cast, case, settings, viewer):
    """Written behind the services' back, one column or one file at a time: each is in the
    row's key, so none is hidden behind a kept row — for alice, whose forms repeat the values,
    and for erin, an auditor, who sees no forms."""
    web = _client(cast[viewer].user)
    step = case.steps.get(key="confirm_notice")
    grant = case.access_grants.first()
    changes = [
        lambda: type(step).objects.filter(pk=step.pk).update(title="Notice confirmed by post"),
        lambda: step.evidence.add(upload(cast["alice"], b"%PDF-1.4 memo", "memo-kept.pdf")),
        lambda: type(grant).objects.filter(pk=grant.pk).update(system="Renamed CRM"),
        lambda: grant.evidence.add(upload(cast["alice"], b"%PDF-1.4 log", "log-kept.pdf")),
    ]
    for change, shown in zip(
        changes,
        ("Notice confirmed by post", "memo-kept.pdf", "Renamed CRM", "log-kept.pdf"),
        strict=True,
    ):
        assert shown not in _page(web, case, settings, kept=True)
        change()
        assert shown in _same_either_way(web, case, settings)


def test_a_kept_row_is_what_including_its_template_in_the_page_renders(cast, case, settings):
    """The row tags render a row with only the row, the case and the viewer's rights; a row
    template that read anything else from the page would differ from the plain `{% include %}`
    it replaced. Each row, kept and afresh, against that include with the whole page's context."""
    from django.template import RequestContext, Template
    from django.test import RequestFactory

    from offboard.accounts.models import Membership
    from offboard.web.workspace_page import workspace_context

    alice = cast["alice"]
    settle_everything(case, cast)  # rows in every state, items with files and provenance
    request = RequestFactory().get(f"/cases/{case.ref}/")
    request.user = alice.user
    membership = Membership.objects.get(user=alice.user, org=case.org)
    page = workspace_context(request, membership, case.ref)
    include = {
        "step": Template('{% include "web/partials/ws_step_row.html" %}'),
        "item": Template('{% include "web/partials/ws_item_row.html" %}'),
        "step_tag": Template("{% load workspace_tags %}{% step_row row %}"),
        "item_tag": Template("{% load workspace_tags %}{% item_row reg row %}"),
    }

    def both(kind, extra):
        context = RequestContext(request, {**page, **extra})
        plain = ANY_TOKEN.sub(r"\1T", include[kind].render(context))
        for kept in (False, True, True):
            settings.OFFBOARD_FRAGMENT_CACHE = kept
            tagged = ANY_TOKEN.sub(r"\1T", include[f"{kind}_tag"].render(context))
            assert tagged == plain, (kind, kept)

    rows = [row for phase in page["phases"].values() for row in phase]
    assert len(rows) == case.steps.count()
    for row in rows:
        both("step", {"row": row})
    items = [(reg, row) for reg in page["registers"] for row in reg.rows]
    assert len(items) >= 5
    for reg, row in items:
        both("item", {"reg": reg, "row": row})
