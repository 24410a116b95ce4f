"""Queueing notices: the planned messages of a job become `Notice` rows with their sent-log
keys (`SentItem`), in one transaction per member, skipping every key already taken.

`queue_assignments` runs inside the transaction that assigns steps (cases.services: opening a
case, activating a draft): nothing is sent there, the outbox (reminders.outbox) sends after
commit, so a committed assignment never loses its email and a rolled-back one never sends it.
Kept apart from reminders.services so that the case services import it without a cycle.
"""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction

from offboard.cases.models import Step
from offboard.core import clock
from offboard.jobs.engine import enqueue
from offboard.reminders.items import STEP_FIELDS, Planned, step_item
from offboard.reminders.models import ASSIGNMENT, Notice, SentItem


def taken_keys(org: Any, plans: list[Planned]) -> set[tuple[int, str, str, dt.date]]:
    """The sent-log keys of `plans` already taken: one query (per 500 item names)."""
    names = sorted({item for p in plans for item, _ in p.keys})
    kinds = sorted({p.kind for p in plans})
    taken: set[tuple[int, str, str, dt.date]] = set()
    for start in range(0, len(names), 500):
        taken.update(
            SentItem.objects.filter(
                org=org, kind__in=kinds, item__in=names[start : start + 500]
            ).values_list("user_id", "kind", "item", "day")
        )
    return taken


def _write(org: Any, plan: Planned, now: dt.datetime) -> Notice:
    notice = Notice.objects.create(
        org=org,
        user_id=plan.user_id,
        kind=plan.kind,
        payload=plan.payload,
        next_attempt_at=now,
        created_at=now,
    )
    SentItem.objects.bulk_create(
        [
            SentItem(
                org=org, user_id=plan.user_id, kind=plan.kind, item=item, day=day, notice=notice
            )
            for item, day in plan.keys
        ]
    )
    return notice


def queue(org: Any, plans: list[Planned]) -> int:
    """Queue the plans whose keys are all free; a plan some of whose keys are taken keeps only
    the items still free (an escalation already sent is not repeated). Returns how many
    notices were queued. All at once when nobody raced us; else one member at a time, a key
    taken meanwhile by another worker dropping that member's notice."""
    taken = taken_keys(org, plans)
    fresh: list[Planned] = []
    for plan in plans:
        keys = [(i, d) for i, d in plan.keys if (plan.user_id, plan.kind, i, d) not in taken]
        if not keys:
            continue
        if len(keys) < len(plan.keys):
            free = {i for i, _ in keys}
            items = [x for x in plan.payload.get("items", []) if x.get("key") in free]
            plan = Planned(plan.user_id, plan.kind, keys, {**plan.payload, "items": items})
        fresh.append(plan)
    if not fresh:
        return 0
    now = clock.now()
    try:
        with transaction.atomic():
            for plan in fresh:
                _write(org, plan, now)
        return len(fresh)
    except IntegrityError:
        pass  # another worker queued some of them meanwhile: one by one
    queued = 0
    for plan in fresh:
        try:
            with transaction.atomic():
                _write(org, plan, now)
            queued += 1
        except IntegrityError:
            continue
    return queued


def queue_assignments(*, case: Any, assigned_by_user_id: int | None = None) -> int:
    """One notice per member given steps on `case` (one email listing all of theirs), except
    the member who assigned them — they know. Must run inside the assigning transaction.
    Returns how many were queued."""
    by_owner: dict[int, list[dict[str, Any]]] = {}
    rows = Step.objects.filter(case=case).order_by("position").values(*STEP_FIELDS)
    for row in rows:
        if row["owner_id"] != assigned_by_user_id:
            by_owner.setdefault(row["owner_id"], []).append(row)
    if not by_owner:
        return 0
    today = clock.now().date()
    plans = [
        Planned(
            user_id=owner_id,
            kind=ASSIGNMENT,
            keys=[(f"step:{r['pk']}", today) for r in steps],
            payload={"items": [step_item(r, f"step:{r['pk']}") for r in steps]},
        )
        for owner_id, steps in by_owner.items()
    ]
    queued = queue(case.org, plans)
    if queued:  # sent by a worker right after the assigning transaction commits
        enqueue("offboard.jobs.tasks.send_notices")
    return queued
