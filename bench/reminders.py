"""Daily-digest benchmark on ONE database (a scratch SQLite file); bench/run.py drives it.

    python bench/reminders.py --out RESULT.json [--people 1000] [--steps 20]

An organization with `--people` members, each owning `--steps` open steps due within the
digest's horizon (spread over 50 cases), then, alternating, best of 5 each:
- ours: `reminders.selectors.build_digests(org, today)`: every member's digest, with the
  preference and membership checks, counted in queries;
- baseline: a plain `cursor.execute` of the same step rows (the same columns, joins and
  filters) fetched as tuples — what reading the rows costs at all.
Target: ratio ≤ 3, and a number of queries that does not grow with the people (asserted in
tests/reminders/test_queries.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

RATIO_TARGET = 3.0


def setup(people: int, steps: int) -> tuple[Any, dt.date]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from offboard.accounts.models import Membership, User
    from offboard.accounts.services import create_organization
    from offboard.cases.models import OffboardingCase, Step
    from offboard.clients.models import Client
    from offboard.core.actor import Actor
    from offboard.playbooks.models import PlaybookVersion
    from offboard.playbooks.services import install_builtin_playbooks

    org = create_organization(slug="bench", name="Bench Ltd")
    admin = User.objects.create(username="admin", email="admin@bench.example")
    Membership.objects.create(org=org, user=admin, role="admin")
    actor = Actor(user=admin, org=org, role="admin", auth_method="cli")
    install_builtin_playbooks(actor=actor)
    version = (
        PlaybookVersion.objects.filter(playbook__org=org).first() or PlaybookVersion.objects.first()
    )
    client = Client.objects.create(org=org, name="Northwind")
    today = dt.date(2027, 3, 10)
    cases = OffboardingCase.objects.bulk_create(
        [
            OffboardingCase(
                org=org,
                ref=f"C-2027-{i:04d}",
                client=client,
                trigger="non_renewal",
                trigger_date=today,
                fee_type="retainer",
                notice_date=today,
                effective_end_date=today + dt.timedelta(days=30),
                data_return_deadline=today + dt.timedelta(days=60),
                owner=admin,
                playbook_version=version,
                playbook_sha256=version.sha256,
                state="active",
                created_at=dt.datetime.now(dt.UTC),
                updated_at=dt.datetime.now(dt.UTC),
            )
            for i in range(50)
        ]
    )
    users = User.objects.bulk_create(
        [
            User(username=f"p{i}", email=f"p{i}@bench.example", first_name=f"P{i}")
            for i in range(people)
        ]
    )
    Membership.objects.bulk_create([Membership(org=org, user=u, role="operator") for u in users])
    rows = []
    for u in users:
        for n in range(steps):
            case = cases[(u.pk + n) % len(cases)]
            rows.append(
                Step(
                    org=org,
                    case=case,
                    key=f"s{u.pk}_{n}",
                    position=n,
                    phase="exit",
                    title=f"Step {n} of {u.username}",
                    owner_role="operator",
                    owner=u,
                    due_anchor="notice",
                    due_offset_days=n % 12 - 4,
                    due_date=today + dt.timedelta(days=n % 12 - 4),
                )
            )
    Step.objects.bulk_create(rows, batch_size=2000)
    return org, today


def measure(org: Any, today: dt.date, rounds: int = 5) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from offboard.cases import risks
    from offboard.reminders.items import STEP_FIELDS
    from offboard.reminders.selectors import build_digests

    sql, params = (
        risks.steps_due(org, today=today)
        .order_by("due_date", "case__ref", "position")
        .values_list(*STEP_FIELDS)
        .query.sql_with_params()
    )

    def baseline() -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return len(cursor.fetchall())

    ours_s, base_s = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        digests = build_digests(org, today)
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rows = baseline()
        base_s.append(time.perf_counter() - t0)
    with CaptureQueriesContext(connection) as captured:
        build_digests(org, today)
    ours, base = min(ours_s), min(base_s)
    return {
        "people": len(digests),
        "steps": sum(len(d.payload["items"]) for d in digests),
        "rows": rows,
        "queries": len(captured.captured_queries),
        "ours_s": ours,
        "baseline_s": base,
        "ratio": ours / base,
        "target": f"ratio <= {RATIO_TARGET:g}",
        "met": ours / base <= RATIO_TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    org, today = setup(args.people, args.steps)
    result = measure(org, today)
    result["ok"] = result["people"] == args.people and result["steps"] == args.people * args.steps
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
