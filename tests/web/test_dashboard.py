"""The dashboard: cases by state, my inbox (here: my steps due or overdue; every kind is in
tests/web/test_inbox.py), and the risk list."""

import datetime as dt
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from offboard.cases.models import AccessGrant, Deliverable, Step


def at(day: dt.date):
    """Pin the clock to noon UTC on `day` (the dashboard's "today")."""
    moment = timezone.make_aware(dt.datetime.combine(day, dt.time(12)), dt.UTC)
    return mock.patch("offboard.core.clock.now", return_value=moment)


@pytest.fixture
def web(cast):
    c = Client()
    c.force_login(cast["alice"].user)
    return c


def test_the_home_page_is_the_dashboard_and_needs_a_login(db):
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_cases_are_counted_by_state_each_linking_to_the_filtered_list(web, case):
    body = web.get("/").content.decode()
    assert 'href="/cases/?state=active"><span class="stat-n">1</span>' in body
    assert 'href="/cases/?state=closed"><span class="stat-n">0</span>' in body
    listed = web.get("/cases/?state=active").content.decode()
    assert case.ref in listed


def test_my_steps_lists_my_open_steps_due_soon_with_overdue_ones_marked(web, case, cast):
    mine = Step.objects.filter(case=case, owner=cast["alice"].user).order_by("due_date")
    first = mine.first()
    with at(first.due_date + dt.timedelta(days=1)):
        body = web.get("/").content.decode()
    assert first.title in body
    assert f'href="/cases/{case.ref}/#step-{first.pk}"' in body
    overdue = body[body.index("Your overdue steps") :]
    assert f"#step-{first.pk}" in overdue.split("</ul>", 1)[0] and "1 day ago" in overdue
    far = mine.order_by("-due_date").first()
    assert far.due_date > first.due_date + dt.timedelta(days=9)
    assert f"#step-{far.pk}" not in body  # not due within the week


def test_my_steps_leaves_out_other_peoples_and_settled_steps(case, cast):
    from offboard.cases.services import mark_step_not_applicable

    alice = cast["alice"]
    steps = list(Step.objects.filter(case=case, owner=alice.user).order_by("due_date"))
    mark_step_not_applicable(actor=alice, step=steps[0], reason="Client served notice by email")
    c = Client()
    c.force_login(cast["erin"].user)  # the auditor owns no step
    with at(steps[0].due_date + dt.timedelta(days=3)):
        assert "You’re clear" in c.get("/").content.decode()
        c.force_login(alice.user)
        body = c.get("/").content.decode()
    assert f"#step-{steps[0].pk}" not in body


def test_access_still_active_after_the_end_date_is_a_risk_linking_to_the_grant(web, case):
    grant = case.access_grants.filter(planned_action="revoke").first()
    with at(case.effective_end_date + dt.timedelta(days=3)):
        body = web.get("/").content.decode()
    assert f'href="/cases/{case.ref}/#access_grants-{grant.pk}"' in body
    assert grant.label() in body and "Access still active after the end date" in body
    assert "the case ended 3 days ago" in body


def test_a_revoked_or_waived_grant_is_not_a_risk(web, case, cast):
    from offboard.cases.services import grant_waiver, update_register_item

    revoked, waived = case.access_grants.filter(planned_action="revoke")[:2]
    update_register_item(actor=cast["alice"], item=revoked, values={"status": "revoked"})
    grant_waiver(
        actor=cast["bob"],
        case=case,
        target_type="access_grant",
        target_id=waived.pk,
        justification="The client keeps our read-only seat for the audit",
        expires_at=timezone.now() + dt.timedelta(days=400),
    )
    with at(case.effective_end_date + dt.timedelta(days=3)):
        body = web.get("/").content.decode()
    assert f"#access_grants-{revoked.pk}" not in body
    assert f"#access_grants-{waived.pk}" not in body


def test_deliverables_past_due_and_data_deadlines_near_are_risks(web, case):
    deliverable = case.deliverables.filter(status=Deliverable.Status.PENDING).first()
    data_set = case.data_dispositions.filter(action__in=["return", "delete"]).first()
    with at(case.data_return_deadline - dt.timedelta(days=5)):
        body = web.get("/").content.decode()
    assert f"#deliverables-{deliverable.pk}" in body and "Deliverables past due" in body
    assert f"#data_dispositions-{data_set.pk}" in body
    assert "data-return deadline in 5 days" in body


def test_a_case_nobody_touched_for_a_week_is_stalled(web, case):
    with at(case.updated_at.date() + dt.timedelta(days=9)):
        body = web.get("/").content.decode()
    assert "No progress for 8 days" in body or "No progress for 9 days" in body
    assert f'href="/cases/{case.ref}/#closure"' in body
    assert "required steps open" in body


def test_no_risk_says_so_without_claiming_nothing_waits(web, case):
    with at(case.trigger_date):
        body = web.get("/").content.decode()
    assert "No case of the organization meets a risk rule" in body
    assert "You’re clear" not in body and "Your steps due in the next 7 days" in body


def test_another_organizations_cases_never_show(case, mallory):
    c = Client()
    c.force_login(mallory.user)
    with at(case.effective_end_date + dt.timedelta(days=30)):
        body = c.get("/").content.decode()
    assert case.ref not in body and "Northwind" not in body


def test_the_dashboard_runs_a_bounded_number_of_queries_with_many_cases(
    web, case, cast, playbooks, client_contract, django_assert_max_num_queries
):
    from offboard.cases.services import open_case

    client, contract = client_contract
    for i in range(8):
        open_case(
            actor=cast["alice"],
            client=client,
            contracts=[contract],
            trigger="termination_by_client",
            trigger_date=dt.date(2026, 9, 1 + i),
            owner_id=cast["alice"].user.pk,
            playbook_version=playbooks["marketing_agency"],
            allow_duplicate=True,
        )
    assert AccessGrant.objects.filter(status="active").count() > 20
    # 18 for the page; 1 for the second-factor policy (every page: offboard.mfa.middleware);
    # 2 for the session's "last seen", written at most once a minute (offboard.security).
    with at(dt.date(2027, 3, 1)), django_assert_max_num_queries(21):
        response = web.get("/")
    assert response.status_code == 200
    # Each live grant twice: in alice's inbox (her cases) and in the organization's risk list.
    assert response.content.decode().count("#access_grants-") > 40
