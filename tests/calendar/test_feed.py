"""GET /calendar/<token>.ics: what a calendar app reads — the owner's outstanding steps and
their cases' milestones, of their organization only, with stable UIDs, in a fixed number of
queries; any token that does not open a live feed is the same 404."""

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from offboard.accounts.models import Membership
from offboard.calendar.models import CalendarFeed
from offboard.cases.models import OffboardingCase, Step
from offboard.ledger.models import LedgerEntry
from tests.calendar.conftest import create_feed, events, fetch, member, parse, path_of
from tests.calendar.test_ics import physical_lines

HOST = "http://testserver"
OUTSTANDING = ("pending", "in_progress")


def expected_uids(user: Any, org: Any) -> set[str]:
    steps = Step.objects.filter(
        org=org, owner=user, status__in=OUTSTANDING, case__state__in=("draft", "active", "closing")
    )
    cases = OffboardingCase.objects.filter(
        org=org, owner=user, state__in=("draft", "active", "closing")
    )
    return {f"offboard-{org.slug}-step-{s.pk}@offboard.localhost" for s in steps} | {
        f"offboard-{org.slug}-case-{c.pk}-{m}@offboard.localhost"
        for c in cases
        for m in ("notice", "end", "data-return")
    }


def open_globex_case(mallory: Any, owner: Any) -> OffboardingCase:
    """Globex's own exit for its client Initech, owned by `owner` (a Globex member)."""
    from offboard.cases.services import open_case
    from offboard.clients.services import create_client, create_contract
    from offboard.playbooks.services import install_builtin_playbooks

    versions = {v.playbook.service_type: v for v in install_builtin_playbooks(actor=mallory)}
    client = create_client(actor=mallory, name="Initech")
    contract = create_contract(
        actor=mallory,
        client=client,
        reference="IN-2025-07",
        service_type="consulting",
        fee_type="fixed",
        start_date=dt.date(2025, 7, 1),
        end_date=dt.date(2026, 12, 31),
        notice_period_days=30,
        data_return_window_days=30,
    )
    return open_case(
        actor=mallory,
        client=client,
        contracts=[contract],
        trigger="contract_expiry",
        trigger_date=dt.date(2026, 11, 15),
        owner_id=owner.pk,
        playbook_version=versions["consulting"],
    )


def test_the_feed_is_icalendar_of_the_owners_steps_and_case_milestones(alice_feed, alice, case):
    response = fetch(alice_feed.url)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert all(len(line) <= 75 for line in physical_lines(response.content))
    found = events(response.content)
    assert set(found) == expected_uids(alice.user, alice.org)
    mine = Step.objects.filter(case=case, owner=alice.user)
    assert len(found) == mine.count() + 3
    for step in mine:
        event = found[f"offboard-acme-step-{step.pk}@offboard.localhost"]
        assert str(event["SUMMARY"]) == f"{step.title} ({case.ref}, Northwind Traders)"
        assert event.decoded("DTSTART") == step.due_date
        assert event["DTSTART"].params["VALUE"] == "DATE"
        assert event.decoded("DTEND") == step.due_date + dt.timedelta(days=1)
        assert str(event["URL"]) == f"{HOST}/cases/{case.ref}/#step-{step.pk}"
        assert isinstance(event.decoded("DTSTAMP"), dt.datetime)
    end = found[f"offboard-acme-case-{case.pk}-end@offboard.localhost"]
    assert str(end["SUMMARY"]) == f"Effective end date ({case.ref}, Northwind Traders)"
    assert end.decoded("DTSTART") == case.effective_end_date
    assert str(end["URL"]) == f"{HOST}/cases/{case.ref}/"
    notice = found[f"offboard-acme-case-{case.pk}-notice@offboard.localhost"]
    assert notice.decoded("DTSTART") == case.notice_date
    data = found[f"offboard-acme-case-{case.pk}-data-return@offboard.localhost"]
    assert data.decoded("DTSTART") == case.data_return_deadline
    assert "Alice" in str(parse(response.content)["X-WR-CALNAME"])


def test_the_workspace_link_is_the_page_a_member_opens(alice_feed, alice, case):
    web = Client()
    web.force_login(alice.user)
    step = Step.objects.filter(case=case, owner=alice.user).first()
    found = events(fetch(alice_feed.url).content)
    url = str(found[f"offboard-acme-step-{step.pk}@offboard.localhost"]["URL"])
    page = web.get(url.removeprefix(HOST).split("#")[0])
    assert page.status_code == 200
    assert f'id="step-{step.pk}"' in page.content.decode()


def test_each_member_sees_their_own_steps_and_only_case_owners_the_milestones(cast, case):
    bob = create_feed(cast["bob"])
    found = events(fetch(bob.url).content)

    assert set(found) == expected_uids(cast["bob"].user, case.org)
    assert found and all("-step-" in uid for uid in found)  # bob owns steps, not the case
    alice_steps = Step.objects.filter(case=case, owner=cast["alice"].user)
    assert not {f"offboard-acme-step-{s.pk}@offboard.localhost" for s in alice_steps} & set(found)


def test_finished_steps_and_closed_or_cancelled_cases_leave_the_feed(alice_feed, alice, case):
    from offboard.cases.services import cancel_case, mark_step_not_applicable

    step = Step.objects.filter(case=case, owner=alice.user).first()
    mark_step_not_applicable(actor=alice, step=step, reason="Notice came by registered mail")
    found = events(fetch(alice_feed.url).content)
    assert f"offboard-acme-step-{step.pk}@offboard.localhost" not in found
    assert f"offboard-acme-case-{case.pk}-end@offboard.localhost" in found

    cancel_case(actor=alice, case=case, reason="The client renewed after all")
    assert events(fetch(alice_feed.url).content) == {}


def test_uids_are_stable_so_a_moved_date_moves_the_event(alice_feed, alice, case):
    from offboard.cases.services import update_case

    before = events(fetch(alice_feed.url).content)
    new_end = case.effective_end_date + dt.timedelta(days=14)
    update_case(actor=alice, case=case, effective_end_date=new_end)
    after = events(fetch(alice_feed.url).content)

    assert set(after) == set(before)
    end = f"offboard-acme-case-{case.pk}-end@offboard.localhost"
    assert after[end].decoded("DTSTART") == new_end
    data = f"offboard-acme-case-{case.pk}-data-return@offboard.localhost"
    assert after[data].decoded("DTSTART") == before[data].decoded("DTSTART") + dt.timedelta(14)


def test_a_token_that_opens_no_live_feed_is_the_same_404(cast, case):
    from offboard.accounts.services import deactivate_member
    from offboard.calendar.services import revoke_calendar_feed

    revoked = create_feed(cast["carol"])
    revoke_calendar_feed(actor=cast["carol"], membership=member(cast["carol"]))
    left = create_feed(cast["bob"])
    deactivate_member(actor=cast["alice"], membership=member(cast["bob"]))
    web = Client()
    answers = [
        web.get("/calendar/" + "A" * 43 + ".ics"),  # well-formed, unknown
        web.get("/calendar/not-a-token.ics"),
        web.get("/calendar/" + "A" * 42 + "!.ics"),
        web.get(path_of(revoked.url)),
        web.get(path_of(left.url)),  # its member was deactivated
    ]
    assert {r.status_code for r in answers} == {404}
    assert {r.content for r in answers} == {b"No such calendar feed.\n"}
    assert all(r["Cache-Control"] == "private, no-store" for r in answers)
    assert web.get(path_of(revoked.url).removesuffix(".ics")).status_code == 404


def test_a_feed_never_shows_another_organizations_cases(alice_feed, alice, case, mallory):
    globex = open_globex_case(mallory, mallory.user)
    mine = events(fetch(alice_feed.url).content)
    theirs = events(fetch(create_feed(mallory).url).content)

    assert set(mine) == expected_uids(alice.user, alice.org)
    assert set(theirs) == expected_uids(mallory.user, mallory.org)
    assert not set(mine) & set(theirs)
    assert all("-globex-" in uid for uid in theirs)
    assert all("Northwind" in str(e["SUMMARY"]) for e in mine.values())
    assert f"offboard-globex-case-{globex.pk}-end@offboard.localhost" in theirs
    assert all("Initech" in str(e["SUMMARY"]) for e in theirs.values())


def test_a_member_of_two_organizations_has_one_feed_in_each_showing_only_its_own(
    alice, case, mallory, other_org
):
    from offboard.core.actor import Actor

    Membership.objects.create(org=other_org, user=alice.user, role="operator")
    globex = open_globex_case(mallory, alice.user)
    alice_at_globex = Actor.from_membership(member_of(alice.user, other_org), auth_method="test")

    acme_feed = events(fetch(create_feed(alice).url).content)
    globex_feed = events(fetch(create_feed(alice_at_globex).url).content)

    assert set(acme_feed) == expected_uids(alice.user, alice.org)
    assert set(globex_feed) == expected_uids(alice.user, other_org)
    assert f"offboard-globex-case-{globex.pk}-end@offboard.localhost" in globex_feed
    assert all("Northwind" in str(e["SUMMARY"]) for e in acme_feed.values())
    assert all("Initech" in str(e["SUMMARY"]) for e in globex_feed.values())
    assert CalendarFeed.objects.filter(user=alice.user, revoked_at=None).count() == 2


def member_of(user: Any, org: Any) -> Membership:
    return Membership.objects.select_related("org", "user").get(user=user, org=org)


def test_the_feed_takes_a_fixed_number_of_queries(
    alice_feed, alice, case, playbooks, client_contract, django_assert_max_num_queries
):
    from offboard.cases.services import open_case

    with django_assert_max_num_queries(4) as small:
        assert fetch(alice_feed.url).status_code == 200
    client, contract = client_contract
    for _ in range(3):
        open_case(
            actor=alice,
            client=client,
            contracts=[contract],
            trigger="termination_by_client",
            trigger_date=dt.date(2026, 11, 20),
            owner_id=alice.user.pk,
            playbook_version=playbooks["marketing_agency"],
            allow_duplicate=True,
        )
    CalendarFeed.objects.update(last_used_at=None)  # the bookkeeping write happens again
    with django_assert_max_num_queries(4) as big:
        body = fetch(alice_feed.url).content
    assert len(events(body)) > 4 * 4
    assert len(big.captured_queries) == len(small.captured_queries)


def test_reading_the_feed_is_noted_on_it_but_is_no_event(alice_feed):
    before = LedgerEntry.objects.count()
    fetch(alice_feed.url)
    feed = CalendarFeed.objects.get()
    assert feed.last_used_at is not None
    assert LedgerEntry.objects.count() == before


def test_head_is_answered_and_other_methods_are_not(alice_feed):
    web = Client()
    assert web.head(path_of(alice_feed.url)).status_code == 200
    assert web.post(path_of(alice_feed.url)).status_code == 405


def test_links_point_at_the_configured_address(alice_feed, case, settings):
    settings.OFFBOARD_BASE_URL = "https://offboard.acme.example"
    found = events(fetch(alice_feed.url).content)
    end = found[f"offboard-acme-case-{case.pk}-end@offboard.localhost"]
    assert str(end["URL"]) == f"https://offboard.acme.example/cases/{case.ref}/"
    assert f"Open the case: https://offboard.acme.example/cases/{case.ref}/" in str(
        end["DESCRIPTION"]
    )


@pytest.mark.parametrize("title", ["Revoke 'Ads; Analytics, Tag Manager' \\ admin — ✓ done"])
def test_odd_characters_in_a_step_title_survive_the_trip(alice_feed, alice, case, title):
    step = Step.objects.filter(case=case, owner=alice.user).first()
    Step.objects.filter(pk=step.pk).update(title=title + "\nsecond line" + " long" * 20)
    body = fetch(alice_feed.url).content
    assert all(len(line) <= 75 for line in physical_lines(body))
    summary = str(events(body)[f"offboard-acme-step-{step.pk}@offboard.localhost"]["SUMMARY"])
    assert summary.startswith(title + "\nsecond line")
    assert summary.endswith(f"({case.ref}, Northwind Traders)")
