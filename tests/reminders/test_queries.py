"""The daily digest is built in a fixed number of queries, whatever the number of people and
steps (issue 14: 1,000 people × 20 steps; `make bench` times it beside a plain query)."""

import datetime as dt
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from offboard.accounts.models import Membership, User
from offboard.cases.models import Step
from offboard.reminders.selectors import build_digests
from tests.reminders.conftest import T


def add_people(case: Any, count: int, steps_each: int, start: int = 0) -> None:
    users = User.objects.bulk_create(
        [User(username=f"p{start + i}", email=f"p{start + i}@acme.example") for i in range(count)]
    )
    Membership.objects.bulk_create(
        [Membership(org=case.org, user=u, role="operator") for u in users]
    )
    template = case.steps.order_by("position").first()
    Step.objects.bulk_create(
        [
            Step(
                org=case.org,
                case=case,
                key=f"extra_{u.pk}_{n}",
                position=1000 + n,
                phase=template.phase,
                title=f"Extra step {n}",
                owner_role="operator",
                owner=u,
                due_anchor="notice",
                due_offset_days=n % 9,
                due_date=T + dt.timedelta(days=n % 9),
            )
            for u in users
            for n in range(steps_each)
        ]
    )


def queries(org: Any) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        digests = build_digests(org, T + dt.timedelta(days=2))
    return len(captured.captured_queries), len(digests)


def test_the_digest_is_built_in_a_fixed_number_of_queries(exit_case: Any, cast: Any) -> None:
    add_people(exit_case, 10, 20)
    few, built_few = queries(exit_case.org)
    add_people(exit_case, 90, 20, start=10)
    many, built_many = queries(exit_case.org)
    assert built_many - built_few == 90
    assert few == many <= 3, (few, many)
