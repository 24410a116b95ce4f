"""Enqueue a job so that a committed change can never lose it.

With the database backend (the default) the job's row is written in the caller's transaction:
it commits with the change or not at all. With another backend (RQ on Redis) the job is sent
after commit; a process that dies between the commit and the send loses the message, not the
work — the outbox rows (timestamps, closure receipts, webhook deliveries) stay the source of
truth, and the periodic sweep (`jobs.tasks.sweep`) re-drives every due row whose job was lost.
"""

import datetime as dt
import urllib.parse
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks.base import Task

from offboard.core import clock


def in_database() -> bool:
    """Whether jobs are rows of this database (and so part of its transactions)."""
    return settings.TASKS["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"


def task_of(task: Task | str) -> Task:
    found = import_string(task) if isinstance(task, str) else task
    if not isinstance(found, Task):
        raise TypeError(f"{task!r} is not a task (decorate it with django_tasks.task)")
    return found


def enqueue(task: Task | str, *args: Any, run_after: dt.datetime | None = None) -> None:
    """Run `task(*args)` in a worker, not before `run_after` (default: as soon as one is free).

    `task` may be given by its dotted path, so a model-level module can enqueue a job whose
    code sits above it without importing it."""
    job = task_of(task)
    if run_after is not None and run_after > clock.now():
        # The queue runs on the wall clock; `run_after` is on Offboard's (pinned in the demo
        # and in tests): the same delay from now.
        job = job.using(run_after=timezone.now() + (run_after - clock.now()))
    if in_database() or not transaction.get_connection().in_atomic_block:
        job.enqueue(*args)
    else:
        transaction.on_commit(lambda: job.enqueue(*args))


def backend_name() -> str:
    """Where the queue is, for the worker's first line (never a password)."""
    if in_database():
        return f"the database ({transaction.get_connection().vendor})"
    url = urllib.parse.urlsplit(settings.OFFBOARD_REDIS_URL)
    return f"Redis at {url.hostname}:{url.port or 6379}{url.path}"
