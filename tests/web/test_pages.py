"""The minimal staff pages: login, case list, case detail."""

import pytest
from django.test import Client

from tests.factories import settle_everything


@pytest.fixture
def browser(cast):
    c = Client()
    assert c.login(username="alice", password="correct horse 1")
    return c


def test_pages_need_a_login(db):
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_login_page_renders(db):
    response = Client().get("/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_the_case_list_shows_the_organizations_cases(browser, case):
    response = browser.get("/cases/")
    assert response.status_code == 200
    assert case.ref.encode() in response.content
    assert b"Northwind Traders" in response.content
    # the state tabs count the organization's cases
    assert b'Active <span class="muted">1</span>' in response.content
    assert b'Closed <span class="muted">0</span>' in response.content


def test_the_case_detail_shows_gates_steps_registers_and_timeline(browser, case):
    response = browser.get(f"/cases/{case.ref}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "steps.incomplete" in body and "approvals.missing" in body
    assert case.steps.first().title in body
    assert "case.opened" in body


def test_another_organizations_case_is_a_404(case, mallory):
    c = Client()
    c.force_login(mallory.user)
    assert c.get(f"/cases/{case.ref}/").status_code == 404


def test_the_case_detail_runs_a_bounded_number_of_queries(
    browser, case, cast, django_assert_max_num_queries
):
    # Built afresh: the page's queries, and twice those of its key (web/page_cache.py).
    with django_assert_max_num_queries(100):
        assert browser.get(f"/cases/{case.ref}/").status_code == 200
    settle_everything(case, cast)  # many more events, evidence and register changes
    with django_assert_max_num_queries(100):
        assert browser.get(f"/cases/{case.ref}/").status_code == 200


def test_the_case_list_runs_a_bounded_number_of_queries(
    browser, case, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        assert browser.get("/cases/").status_code == 200


def test_the_timeline_says_what_changed(browser, case, alice):
    from offboard.cases.services import update_register_item

    grant = case.access_grants.filter(planned_action="revoke").first()
    update_register_item(actor=alice, item=grant, values={"status": "revoked"})
    body = browser.get(f"/cases/{case.ref}/").content.decode()
    assert "access_grant.revoked" in body
    assert f"{grant.system} · status: active → revoked" in body
