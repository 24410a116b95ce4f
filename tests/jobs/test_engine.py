"""The job engine in one process: jobs enqueued with the change that causes them, run once by
the engine's own claim, periodic jobs enqueued once per period (decision 0021)."""

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from offboard.core import clock
from offboard.jobs import schedule
from offboard.jobs.engine import enqueue
from offboard.jobs.models import Schedule
from offboard.jobs.worker import JobRunner
from offboard.ledger import services, timestamps
from offboard.ledger.models import Timestamp
from tests.ledger.test_timestamps import grow
from tests.tsa import LocalTSA

RECORD = "tests.jobs.probe.record"


def jobs(path: str) -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=path).order_by("enqueued_at"))


@pytest.fixture
def tsa_settings(settings: Any, tsa: LocalTSA) -> Any:
    settings.OFFBOARD_TSA_URLS = [tsa.url]
    settings.OFFBOARD_TSA_ROOTS = tsa.ca_pem_path
    settings.OFFBOARD_TSA_TIMEOUT = 5.0
    settings.OFFBOARD_TSA_ON_COMMIT = "off"  # the engine's job, nothing else
    return settings


def test_a_job_enqueued_in_a_transaction_that_rolls_back_is_gone(db, tmp_path):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue(RECORD, str(tmp_path), "a")
        assert len(jobs(RECORD)) == 1  # written in the transaction...
        raise RuntimeError("the change fails")
    assert jobs(RECORD) == []  # ...and gone with it

    with transaction.atomic():
        enqueue(RECORD, str(tmp_path), "b")
    (job,) = jobs(RECORD)
    assert (job.status, job.args_kwargs["args"]) == ("READY", [str(tmp_path), "b"])


def test_a_checkpoint_enqueues_its_timestamps_in_its_own_transaction(tsa_settings, alice, tsa):
    grow(alice)
    received = tsa.received
    with pytest.raises(RuntimeError), transaction.atomic():
        services.issue_checkpoint(actor=alice)
        raise RuntimeError("rolled back after the checkpoint")
    assert jobs("offboard.jobs.tasks.request_timestamps") == []

    checkpoint = services.issue_checkpoint(actor=alice)
    (job,) = jobs("offboard.jobs.tasks.request_timestamps")
    assert job.args_kwargs["args"] == [checkpoint.pk]

    assert JobRunner().run_ready() == 1
    job.refresh_from_db()
    assert job.status == "SUCCESSFUL"
    assert job.return_value["granted"] == 1
    assert checkpoint.timestamps.get().status == "granted"
    assert JobRunner().run_ready() == 0  # nothing left, nothing run twice
    assert tsa.received == received + 1


def test_a_failed_attempt_enqueues_its_retry_for_when_it_is_due(tsa_settings, alice, tsa):
    grow(alice)
    tsa.down("503")
    checkpoint = services.issue_checkpoint(actor=alice)
    assert JobRunner().run_ready() == 1
    ts = checkpoint.timestamps.get()
    assert (ts.status, ts.attempts) == ("pending", 1)

    first, retry = jobs("offboard.jobs.tasks.request_timestamps")
    assert first.status == "SUCCESSFUL"  # the job ran; the TSA failed, and said so
    assert retry.status == "READY" and retry.args_kwargs["args"] == [checkpoint.pk]
    wait = retry.run_after - first.finished_at
    assert dt.timedelta(seconds=25) < wait <= timestamps.backoff(1) + dt.timedelta(seconds=5)
    assert JobRunner().run_ready() == 0  # not before it is due


def test_a_failing_job_is_recorded_as_failed_and_the_others_still_run(db, tmp_path):
    enqueue("tests.jobs.probe.fail", "the job's own error")
    enqueue(RECORD, str(tmp_path), "after")

    assert JobRunner().run_ready() == 2

    (failed,) = jobs("tests.jobs.probe.fail")
    assert failed.status == "FAILED"
    assert "the job's own error" in failed.traceback
    assert (tmp_path / "after").read_text().count("\n") == 1


def test_a_job_waits_for_its_time(db, tmp_path):
    enqueue(RECORD, str(tmp_path), "later", run_after=clock.now() + dt.timedelta(hours=1))
    enqueue(RECORD, str(tmp_path), "now")

    assert JobRunner().run_ready() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["now"]


# --- the periodic schedule -------------------------------------------------------------------


def test_each_periodic_job_is_enqueued_once_per_period(db, settings):
    settings.OFFBOARD_CHECKPOINT_INTERVAL = 300
    settings.OFFBOARD_SWEEP_INTERVAL = 60
    now = clock.now()

    settings.OFFBOARD_REMINDER_TICK = 120
    assert schedule.tick(now) == ["checkpoints", "reminders", "sweep", "connector_recheck"]
    assert schedule.tick(now) == []
    assert schedule.tick(now + dt.timedelta(seconds=59)) == []
    assert schedule.tick(now + dt.timedelta(seconds=60)) == ["sweep"]
    assert schedule.tick(now + dt.timedelta(seconds=120)) == ["reminders", "sweep"]
    assert schedule.tick(now + dt.timedelta(seconds=300)) == ["checkpoints", "reminders", "sweep"]

    assert len(jobs("offboard.jobs.tasks.issue_checkpoints")) == 2
    assert len(jobs("offboard.jobs.tasks.sweep")) == 4


def test_a_schedule_that_was_not_ticked_for_hours_runs_once_not_once_per_missed_period(db):
    now = clock.now()
    schedule.tick(now)
    assert schedule.tick(now + dt.timedelta(hours=5)) == ["checkpoints", "reminders", "sweep"]
    assert len(jobs("offboard.jobs.tasks.sweep")) == 2
    row = Schedule.objects.get(name="sweep")
    assert row.runs == 2
    assert row.next_run_at > now + dt.timedelta(hours=5)


def test_the_periodic_jobs_do_their_work(tsa_settings, alice, tsa):
    grow(alice)
    schedule.tick()
    assert JobRunner().run_ready() >= 2  # checkpoints, sweep, and the new checkpoint's timestamps
    assert Timestamp.objects.get(checkpoint__org=alice.org).status == "granted"
    (periodic,) = jobs("offboard.jobs.tasks.issue_checkpoints")
    assert periodic.return_value["checkpoints"] == 1


@pytest.mark.one_pass("postgresql")  # SQLite serializes writers: nothing to race
def test_workers_ticking_at_the_same_moment_enqueue_each_run_once(transactional_db):
    now = clock.now()
    schedule.tick(now - dt.timedelta(days=1))  # the rows exist, due again now
    count = 4
    barrier = threading.Barrier(count)
    won: list[Any] = [None] * count

    def tick(i: int) -> None:
        try:
            barrier.wait()
            won[i] = schedule.tick(now)
        finally:
            connection.close()

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(name for names in won for name in names) == [
        "checkpoints",
        "connector_recheck",  # daily: due again a day after the day-old tick
        "reminders",
        "sweep",
    ]
    assert len(jobs("offboard.jobs.tasks.sweep")) == 2  # the day-old tick's and this one


def test_the_sweep_drives_an_outbox_row_whose_job_was_lost(tsa_settings, alice, tsa):
    grow(alice)
    checkpoint = services.issue_checkpoint(actor=alice)
    DBTaskResult.objects.all().delete()  # the job is lost (a Redis queue flushed, say)

    schedule.tick()
    JobRunner().run_ready()

    assert checkpoint.timestamps.get().status == "granted"


def test_the_sweep_prunes_week_old_successful_results_and_keeps_failures(db, tmp_path: Path):
    enqueue(RECORD, str(tmp_path), "old")
    enqueue("tests.jobs.probe.fail", "kept")
    JobRunner().run_ready()
    DBTaskResult.objects.update(finished_at=timezone.now() - dt.timedelta(days=8))
    enqueue(RECORD, str(tmp_path), "recent")
    JobRunner().run_ready()

    from offboard.jobs.tasks import prune_results

    assert prune_results() == 1
    assert sorted(j.args_kwargs["args"][-1] for j in DBTaskResult.objects.all()) == [
        "kept",
        "recent",
    ]
