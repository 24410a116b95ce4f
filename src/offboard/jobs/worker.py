"""Run the queued jobs: the engine's own claiming and running, driven by `offboard worker`.

Database backend: django-tasks-db's claim (`SELECT … FOR UPDATE SKIP LOCKED`, an exclusive
transaction on SQLite) and its `Worker.run_task`, which records each job's outcome. Redis: an
RQ worker in burst mode, with RQ's scheduler for jobs that wait for a time. Either way one
call runs every job that is ready and returns; the loop around it (`offboard worker`) ticks the
periodic schedule between calls. Neither closes this thread's database connection, so the
same code runs under a test's transaction.
"""

import logging
import threading
from typing import Any

from django.db import OperationalError
from django.utils.crypto import get_random_string

from offboard.jobs.engine import in_database

log = logging.getLogger("offboard.worker")


class JobRunner:
    """One worker process's runner; `stop()` (from a signal handler) ends it after the job
    in hand."""

    def __init__(self, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or f"offboard-{get_random_string(12)}"
        self._stop = threading.Event()
        self._rq_worker: Any = None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._rq_worker is not None:
            self._rq_worker._stop_requested = True  # RQ's own flag: finish the job, then return

    def run_ready(self) -> int:
        """Run every job that is ready now; how many ran."""
        return self._run_database() if in_database() else self._run_rq()

    def _run_database(self) -> int:
        from django_tasks_db.management.commands.db_worker import Worker
        from django_tasks_db.models import DBTaskResult
        from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

        runner = Worker(
            queue_names=["*"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=self.worker_id,
            excluded_queue_names=[],
        )
        ran = 0
        while not self._stop.is_set():
            ready = DBTaskResult.objects.ready().filter(backend_name="default")
            try:
                with exclusive_transaction(ready.db):
                    job = ready.get_locked()
                    if job is not None:
                        job.claim(self.worker_id)  # RUNNING, in this worker's name
            except OperationalError as exc:
                if is_locked_database_exception(exc):
                    break  # SQLite: another worker holds the queue; next round
                raise
            if job is None:
                break
            log.debug("job %s: %s", job.id, job.task_path)
            runner.run_task(job)
            if job.status == "FAILED":
                log.error("error: job %s (%s) failed: %s", job.id, job.task_path, job.traceback)
            ran += 1
        return ran

    def _run_rq(self) -> int:
        import django_rq

        worker = django_rq.get_worker(
            "default",
            job_class="django_tasks_rq.Job",  # runs the task, records its result for the API
            worker_class=_quiet_worker_class(),
            name=f"{self.worker_id}-{get_random_string(6)}",
        )
        self._rq_worker = worker
        try:
            worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        finally:
            self._rq_worker = None
        return int(worker.successful_job_count + worker.failed_job_count)


def _quiet_worker_class() -> type:
    """RQ's SimpleWorker (jobs run in this process: one database connection, no fork per job)
    without what a long-lived RQ worker sets up for itself: its signal handlers (`offboard
    worker`'s stay in place, and stop RQ between jobs through `JobRunner.stop()`) and its
    pub/sub command channel, whose listener thread takes up to a minute to stop at the end of
    every burst (RQ's `rq suspend`/`rq resume` still work: they set a key, not a message)."""
    from rq import SimpleWorker

    class QuietWorker(SimpleWorker):
        def _install_signal_handlers(self) -> None:
            pass

        def subscribe(self) -> None:
            pass

        def unsubscribe(self) -> None:
            pass

    return QuietWorker
