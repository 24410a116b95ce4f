"""`offboard worker`: the deployment's background jobs, in a loop until Ctrl-C or SIGTERM.

Every OFFBOARD_CHECKPOINT_INTERVAL seconds it signs a checkpoint for each organization whose
log grew since its last one; every few seconds it asks the time-stamping authorities for the
pending RFC 3161 tokens (docs/timestamps.md), then issues the certificates and sends the
closure receipts that are due (docs/email.md). Several workers may run at once: a checkpoint
is issued under the log head's lock (one per size), and each pending timestamp and each
closure receipt is claimed by one worker only.
"""

import datetime as dt
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from offboard.cli.common import ensure_django

if TYPE_CHECKING:
    from offboard.accounts.models import Organization
    from offboard.ledger.models import Timestamp
    from offboard.notifications.models import ClosureReceipt


@dataclass
class Round:
    """What one round did."""

    checkpoints: int = 0
    granted: int = 0
    failed: int = 0
    certificates: int = 0
    receipts_sent: int = 0
    receipts_failed: int = 0
    errors: int = 0


def _line(message: str, *, error: bool = False) -> None:
    from offboard.core import clock

    stamp = clock.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    typer.echo(f"{stamp} {' '.join(message.split())}", err=error)


def grown_orgs() -> list["Organization"]:
    """Organizations whose log has entries no checkpoint covers yet, in one query."""
    from django.db.models import F, OuterRef, Q, Subquery

    from offboard.ledger.models import Checkpoint, LogHead

    last = Checkpoint.objects.filter(org=OuterRef("org")).order_by("-size").values("size")[:1]
    heads = (
        LogHead.objects.annotate(last=Subquery(last))
        .filter(size__gt=0)
        .filter(Q(last__isnull=True) | Q(size__gt=F("last")))
        .select_related("org")
        .order_by("org__slug")
    )
    return [head.org for head in heads]


def checkpoint_round(result: Round) -> None:
    from offboard.ledger import timestamps
    from offboard.ledger.checkpoints import issue_if_grown

    for org in grown_orgs():
        try:
            with timestamps.inline():  # this round's timestamp step asks the TSAs itself
                checkpoint = issue_if_grown(org=org, reason="periodic")
        except Exception as exc:  # one organization's trouble (e.g. its key file) stops no other
            result.errors += 1
            _line(f"error: checkpoint of {org.slug}: {exc}", error=True)
            continue
        if checkpoint is None:
            continue  # another worker signed this size first
        result.checkpoints += 1
        pending = checkpoint.timestamps.count()
        _line(
            f"checkpoint {org.slug} size {checkpoint.size} (id {checkpoint.pk}, "
            f"{pending} timestamp(s) queued)"
        )


def timestamp_round(result: Round) -> None:
    from offboard.ledger import timestamps
    from offboard.ledger.timestamps import shown

    def report(ts: "Timestamp", error: str | None) -> None:
        if error is None:
            result.granted += 1
            _line(
                f"timestamp {ts.pk} of checkpoint {ts.checkpoint_id}: granted by {shown(ts.tsa_url)} "
                f"(time {ts.gen_time:%Y-%m-%dT%H:%M:%SZ})"
            )
        else:
            result.failed += 1
            _line(
                f"timestamp {ts.pk} of checkpoint {ts.checkpoint_id}: attempt {ts.attempts} "
                f"failed: {error}; next attempt at {ts.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}"
            )

    limit = 50
    try:
        while True:  # drain a backlog, but a failing TSA waits for the next round
            counts = timestamps.process_pending(limit=limit, report=report)
            if counts["granted"] < limit:
                break
    except Exception as exc:
        result.errors += 1
        _line(f"error: timestamps: {exc}", error=True)


def receipt_round(result: Round) -> None:
    from offboard.notifications import receipts

    def report(receipt: "ClosureReceipt", what: str, error: str | None) -> None:
        ref = receipt.case.ref
        if what == "certificate":
            result.certificates += 1
            sha = receipt.certificate.sha256 if receipt.certificate else "?"
            _line(f"certificate of {ref} issued (evidence file {sha[:12]}…)")
        elif what == "sent":
            result.receipts_sent += 1
            _line(f"closure receipt of {ref} sent to {', '.join(receipt.emails)}")
        else:
            result.receipts_failed += 1
            _line(
                f"closure receipt of {ref}: attempt {receipt.attempts} failed: {error}; "
                f"next attempt at {receipt.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}"
            )

    try:
        receipts.process_pending(report=report)
    except Exception as exc:
        result.errors += 1
        _line(f"error: closure receipts: {exc}", error=True)


def _fresh_connections() -> None:
    """Between rounds: drop broken or expired database connections (as Django does per request)."""
    from django.db import close_old_connections, connection

    if not connection.in_atomic_block:  # never under a caller's transaction (tests)
        close_old_connections()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C finish the current round and stop; a second Ctrl-C forces."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        _line(f"{signal.Signals(signum).name}: stopping after this round")
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Do one round, print what it did, and exit.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=0.05,
            metavar="SECONDS",
            help="Seconds between rounds of pending timestamps and closure receipts.",
        ),
    ] = 5.0,
    checkpoint_interval: Annotated[
        float | None,
        typer.Option(
            min=0.05,
            metavar="SECONDS",
            help="Seconds between periodic checkpoints. Default: $OFFBOARD_CHECKPOINT_INTERVAL.",
        ),
    ] = None,
) -> None:
    """Run the background jobs: periodic checkpoints, RFC 3161 timestamps, closure certificates
    and receipts, until stopped.

    Safe to run several at once. Stop with Ctrl-C or SIGTERM (the current round finishes).
    """
    ensure_django()
    from django.conf import settings

    every = checkpoint_interval or float(settings.OFFBOARD_CHECKPOINT_INTERVAL)
    if once:
        result = Round()
        checkpoint_round(result)
        timestamp_round(result)
        receipt_round(result)
        typer.echo(
            f"one round: {result.checkpoints} checkpoint(s) issued, {result.granted} "
            f"timestamp(s) granted, {result.failed} failed; {result.certificates} "
            f"certificate(s) issued, {result.receipts_sent} closure receipt(s) sent, "
            f"{result.receipts_failed} failed"
            + (f", {result.errors} error(s)" if result.errors else "")
        )
        raise typer.Exit(1 if result.errors else 0)

    stop = threading.Event()
    tsa_count = len(settings.OFFBOARD_TSA_URLS)
    _line(
        f"worker started: checkpoints every {every:g} s, timestamps every {interval:g} s "
        f"({tsa_count} TSA(s) configured)"
    )
    next_checkpoint = time.monotonic()
    try:
        with _stop_on_signals(stop):
            while not stop.is_set():
                _fresh_connections()
                result = Round()
                if time.monotonic() >= next_checkpoint:
                    checkpoint_round(result)
                    next_checkpoint = time.monotonic() + every
                timestamp_round(result)
                receipt_round(result)
                stop.wait(interval)
    except KeyboardInterrupt:
        _line("worker interrupted")
        raise typer.Exit(130) from None
    _line("worker stopped")
