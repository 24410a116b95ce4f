"""The periodic jobs, and the tick that enqueues each one when it is due — once, however many
workers tick at the same moment.

Each periodic job has a `Schedule` row. A tick moves a due row's `next_run_at` on with a
conditional UPDATE (`WHERE next_run_at <= now`) and enqueues the job in the same transaction:
only the worker whose UPDATE matched enqueues it, and with the database backend the job and
the move commit together. Nothing sleeps through a period: a worker that was down finds the
job due when it comes back and runs it once, not once per missed period.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from offboard.core import clock
from offboard.jobs.engine import enqueue, task_of
from offboard.jobs.models import Schedule


@dataclasses.dataclass(frozen=True)
class Periodic:
    name: str
    task: str  # the task's dotted path
    every: Callable[[], float]  # seconds, read from the settings at each tick
    description: str


PERIODIC = [
    Periodic(
        "checkpoints",
        "offboard.jobs.tasks.issue_checkpoints",
        lambda: float(settings.OFFBOARD_CHECKPOINT_INTERVAL),
        "sign a checkpoint of each organization whose log grew",
    ),
    Periodic(
        "reminders",
        "offboard.jobs.tasks.reminders",
        lambda: float(settings.OFFBOARD_REMINDER_TICK),
        "digests, deadline reminders, escalations and the portal's reminders, when their "
        "period has come (each job keeps its own once-per-period record)",
    ),
    Periodic(
        "sweep",
        "offboard.jobs.tasks.sweep",
        lambda: float(settings.OFFBOARD_SWEEP_INTERVAL),
        "re-drive due outbox rows (timestamps, closure receipts, webhook deliveries) whose "
        "job was lost",
    ),
    Periodic(
        "connector_recheck",
        "offboard.connectors.recheck.recheck_connectors",
        lambda: float(settings.OFFBOARD_RECHECK_TICK),
        "read again the access connectors revoked on closed cases, each account when its "
        "connection's re-check interval has passed (docs/connectors.md)",
    ),
]


def _ensure_rows(now: dt.datetime) -> None:
    known = set(Schedule.objects.values_list("name", flat=True))
    for periodic in PERIODIC:
        if periodic.name in known:
            continue
        try:
            with transaction.atomic():
                Schedule.objects.create(name=periodic.name, next_run_at=now)
        except IntegrityError:
            pass  # another worker made it first


def tick(now: dt.datetime | None = None) -> list[str]:
    """Enqueue every periodic job that is due; the names of those this call enqueued."""
    now = now or clock.now()
    _ensure_rows(now)
    enqueued = []
    for periodic in PERIODIC:
        task_of(periodic.task)  # a typo in the table fails here, loudly, not silently later
        with transaction.atomic():
            moved = Schedule.objects.filter(name=periodic.name, next_run_at__lte=now).update(
                next_run_at=now + dt.timedelta(seconds=periodic.every()),
                last_enqueued_at=now,
                runs=F("runs") + 1,
            )
            if moved:
                enqueue(periodic.task)
                enqueued.append(periodic.name)
    return enqueued
