"""`offboard worker`: the deployment's background jobs, until Ctrl-C or SIGTERM (docs/jobs.md).

It runs the jobs queued on the configured backend (OFFBOARD_JOBS_BACKEND: the database, or
RQ on Redis) — timestamps and closure receipts, enqueued with the change that caused them —
and enqueues the periodic ones when due (`jobs.schedule`): checkpoints every
OFFBOARD_CHECKPOINT_INTERVAL seconds, the outbox sweep every OFFBOARD_SWEEP_INTERVAL. Run as
many as you like: each job is claimed by one worker, each periodic run enqueued by one.
`--once` does everything that is due now in one go, and exits (for cron, or to look).
"""

import datetime as dt
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from offboard.cli.common import ensure_django


class _Lines(logging.Handler):
    """The worker's log as lines on the terminal: UTC time first; errors to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        from offboard.core import clock

        stamp = clock.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = " ".join(record.getMessage().split())
        typer.echo(f"{stamp} {message}", err=record.levelno >= logging.ERROR)


@contextmanager
def _printed() -> Iterator[None]:
    logger = logging.getLogger("offboard.worker")
    handler, level, propagate = _Lines(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _line(message: str) -> None:
    logging.getLogger("offboard.worker").info(message)


def run_loop(stop: threading.Event, runner: Any, interval: float) -> None:
    """Tick the periodic schedule, run every job that is ready, wait when there is none;
    until `stop` is set or the runner was stopped by a signal."""
    from offboard.jobs import schedule

    while not stop.is_set() and not runner.stopped:
        _fresh_connections()
        for name in schedule.tick():
            _line(f"periodic job {name} enqueued")
        if not runner.run_ready() and not runner.stopped:
            stop.wait(interval)


def in_background(interval: float = 1.0) -> threading.Event:
    """A worker in a daemon thread of this process (`offboard serve` on a laptop): set the
    event it returns to stop it."""
    from offboard.jobs.worker import JobRunner

    stop, runner = threading.Event(), JobRunner()

    def run() -> None:
        from django.db import connection

        try:
            with _printed():
                _line(f"worker {runner.worker_id} started in this process")
                run_loop(stop, runner, interval)
        except Exception:
            logging.getLogger("offboard.worker").exception("the background worker stopped")
        finally:
            connection.close()

    threading.Thread(target=run, name="offboard-worker", daemon=True).start()
    return stop


def _fresh_connections() -> None:
    """Between rounds: drop broken or expired database connections (as Django does per request)."""
    from django.db import close_old_connections, connection

    if not connection.in_atomic_block:  # never under a caller's transaction (tests)
        close_old_connections()


@contextmanager
def _stop_on_signals(stop: threading.Event, runner: Any) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C finish the job in hand and stop; a second Ctrl-C forces."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        _line(f"{signal.Signals(signum).name}: stopping after the job in hand")
        stop.set()
        runner.stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def worker(
    once: Annotated[
        bool,
        typer.Option("--once", help="Do everything that is due now, print what it did, and exit."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=0.05,
            metavar="SECONDS",
            help="Seconds to wait when no job is ready before looking again.",
        ),
    ] = 1.0,
    checkpoint_interval: Annotated[
        float | None,
        typer.Option(
            min=0.05,
            metavar="SECONDS",
            help="Seconds between periodic checkpoints. Default: $OFFBOARD_CHECKPOINT_INTERVAL.",
        ),
    ] = None,
) -> None:
    """Run the background jobs — periodic checkpoints, RFC 3161 timestamps, closure
    certificates and receipts, outbound webhooks, reminders and escalations — until stopped.

    Run as many workers as you like, on as many hosts (docs/jobs.md): each job runs in one of
    them. Stop with Ctrl-C or SIGTERM (the job in hand finishes).
    """
    ensure_django()
    from django.conf import settings

    from offboard.jobs.engine import backend_name
    from offboard.jobs.tasks import (
        Round,
        checkpoint_round,
        receipt_round,
        reminder_round,
        timestamp_round,
        webhook_round,
    )
    from offboard.jobs.worker import JobRunner

    if checkpoint_interval:
        settings.OFFBOARD_CHECKPOINT_INTERVAL = checkpoint_interval  # this process's schedule
    runner = JobRunner()
    with _printed():
        if once:
            result = Round()
            checkpoint_round(result)
            timestamp_round(result)
            receipt_round(result)
            hooks = webhook_round()
            reminders = reminder_round()
            ran = runner.run_ready()
            typer.echo(
                f"one round: {result.checkpoints} checkpoint(s) issued, {result.granted} "
                f"timestamp(s) granted, {result.failed} failed; {result.certificates} "
                f"certificate(s) issued, {result.receipts_sent} closure receipt(s) sent, "
                f"{result.receipts_failed} failed; {hooks['delivered']} webhook(s) delivered, "
                f"{hooks['failed']} failed; {reminders['sent']} reminder(s) sent, "
                f"{reminders['failed']} failed; {ran} queued job(s) run"
                + (f", {result.errors} error(s)" if result.errors else "")
            )
            raise typer.Exit(1 if result.errors or hooks["errors"] or reminders["errors"] else 0)

        stop = threading.Event()
        every = float(settings.OFFBOARD_CHECKPOINT_INTERVAL)
        _line(
            f"worker {runner.worker_id} started: jobs on {backend_name()}, checkpoints every "
            f"{every:g} s, outbox sweep every {settings.OFFBOARD_SWEEP_INTERVAL} s, "
            f"{len(settings.OFFBOARD_TSA_URLS)} TSA(s) configured"
        )
        try:
            with _stop_on_signals(stop, runner):
                run_loop(stop, runner, interval)
        except KeyboardInterrupt:
            _line("worker interrupted")
            raise typer.Exit(130) from None
        _line("worker stopped")
