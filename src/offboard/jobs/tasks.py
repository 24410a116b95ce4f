"""The background jobs: what `offboard worker` runs (docs/jobs.md).

Each job is a function of the outbox it works on — a checkpoint's pending timestamps, a
closure receipt — and may run any number of times, in any number of workers at once: the
outbox rows are claimed one worker at a time (with a lease), so a job that finds its row
done, or claimed by another worker, does nothing. That is what makes a lost job harmless
(the sweep re-drives its row) and a duplicate one too.

The rounds (`checkpoint_round`, `timestamp_round`, `receipt_round`) are also what
`offboard worker --once` does in one go; they report each thing done to the `offboard.worker`
log, which the worker prints.
"""

import dataclasses
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django_tasks import task

if TYPE_CHECKING:
    from offboard.accounts.models import Organization
    from offboard.ledger.models import Timestamp
    from offboard.notifications.models import ClosureReceipt

log = logging.getLogger("offboard.worker")


@dataclasses.dataclass
class Round:
    """What one round did."""

    checkpoints: int = 0
    granted: int = 0
    failed: int = 0
    certificates: int = 0
    receipts_sent: int = 0
    receipts_failed: int = 0
    errors: int = 0

    def add(self, other: "Round") -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


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
            with timestamps.inline():  # the timestamps are this worker's next job, not a thread's
                checkpoint = issue_if_grown(org=org, reason="periodic")
        except Exception as exc:  # one organization's trouble (e.g. its key file) stops no other
            result.errors += 1
            log.error("error: checkpoint of %s: %s", org.slug, exc)
            continue
        if checkpoint is None:
            continue  # another worker signed this size first
        result.checkpoints += 1
        pending = checkpoint.timestamps.count()
        log.info(
            "checkpoint %s size %s (id %s, %s timestamp(s) queued)",
            org.slug,
            checkpoint.size,
            checkpoint.pk,
            pending,
        )


def timestamp_round(result: Round, checkpoint_id: int | None = None) -> None:
    from offboard.ledger import timestamps
    from offboard.ledger.timestamps import shown

    def report(ts: "Timestamp", error: str | None) -> None:
        if error is None:
            result.granted += 1
            log.info(
                "timestamp %s of checkpoint %s: granted by %s (time %s)",
                ts.pk,
                ts.checkpoint_id,
                shown(ts.tsa_url),
                f"{ts.gen_time:%Y-%m-%dT%H:%M:%SZ}",
            )
        else:
            result.failed += 1
            log.info(
                "timestamp %s of checkpoint %s: attempt %s failed: %s; next attempt at %s",
                ts.pk,
                ts.checkpoint_id,
                ts.attempts,
                error,
                f"{ts.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}",
            )

    limit = 50
    try:
        while True:  # drain a backlog, but a failing TSA waits for its retry
            counts = timestamps.process_pending(
                checkpoint_id=checkpoint_id, limit=limit, report=report
            )
            if counts["granted"] < limit:
                break
    except Exception as exc:
        result.errors += 1
        log.error("error: timestamps: %s", exc)


def receipt_round(result: Round, receipt_id: int | None = None) -> None:
    from offboard.notifications import receipts

    def report(receipt: "ClosureReceipt", what: str, error: str | None) -> None:
        ref = receipt.case.ref
        if what == "certificate":
            result.certificates += 1
            sha = receipt.certificate.sha256 if receipt.certificate else "?"
            log.info("certificate of %s issued (evidence file %s…)", ref, sha[:12])
        elif what == "sent":
            result.receipts_sent += 1
            log.info("closure receipt of %s sent to %s", ref, ", ".join(receipt.emails))
        else:
            result.receipts_failed += 1
            log.info(
                "closure receipt of %s: attempt %s failed: %s; next attempt at %s",
                ref,
                receipt.attempts,
                error,
                f"{receipt.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}",
            )

    try:
        receipts.process_pending(receipt_id=receipt_id, report=report)
    except Exception as exc:
        result.errors += 1
        log.error("error: closure receipts: %s", exc)


def webhook_round() -> dict[str, int]:
    """Post the outbound webhook deliveries that are due (docs/webhooks-out.md): a backlog is
    drained; a failing endpoint waits for the next round. Errors are printed, not raised."""
    from offboard.webhooks.delivery import deliver_due

    total = {"delivered": 0, "failed": 0, "skipped": 0, "disabled": 0, "errors": 0}
    limit = 50
    try:
        while True:
            counts = deliver_due(limit=limit)
            for key, value in counts.items():
                total[key] += value
            if counts["delivered"] + counts["failed"] < limit:
                break
    except Exception as exc:
        total["errors"] += 1
        log.error("error: webhooks: %s", exc)
    if total["delivered"] or total["failed"]:
        log.info(
            f"webhooks: {total['delivered']} delivered, {total['failed']} attempt(s) failed"
            + (f", {total['disabled']} endpoint(s) disabled" if total["disabled"] else "")
        )
    return total


def reminder_round() -> dict[str, int]:
    """The reminders (docs/reminders.md): the assignment emails queued by case openings, and
    each periodic job whose period has come — daily digests and deadline reminders (from
    OFFBOARD_DIGEST_HOUR UTC), escalations, the portal's reminders and deemed acceptance —
    at most once per period, whichever worker gets there first (a row in the database).
    Errors are printed, not raised."""
    from offboard.reminders.jobs import run_due

    total = {"sent": 0, "failed": 0, "errors": 0}
    try:
        done = run_due()
    except Exception as exc:
        total["errors"] += 1
        log.error("error: reminders: %s", exc)
        return total
    for name, counts in done.items():
        if isinstance(counts, str):
            total["errors"] += 1
            log.error("error: reminders %s: %s", name, counts)
            continue
        total["sent"] += counts.get("sent", 0)
        total["failed"] += counts.get("failed", 0)
        shown = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        if shown:
            log.info(f"reminders {name}: {shown}")
    return total


# --- the jobs ------------------------------------------------------------------------------


@task()
def issue_checkpoints() -> dict[str, Any]:
    """Periodic: a signed checkpoint for each organization whose log grew."""
    result = Round()
    checkpoint_round(result)
    return result.as_dict()


@task()
def request_timestamps(checkpoint_id: int) -> dict[str, Any]:
    """A checkpoint's RFC 3161 timestamps that are due (enqueued with the checkpoint, and
    again for each retry at its `next_attempt_at`)."""
    result = Round()
    timestamp_round(result, checkpoint_id=checkpoint_id)
    return result.as_dict()


@task()
def send_closure_receipt(receipt_id: int) -> dict[str, Any]:
    """A closed case's certificate and receipt email (enqueued in the closing transaction,
    and again for each retry)."""
    result = Round()
    receipt_round(result, receipt_id=receipt_id)
    return result.as_dict()


@task()
def deliver_webhooks(delivery_ids: list[int]) -> dict[str, Any]:
    """An event's outbound webhook deliveries (enqueued with the event, and again for each
    retry at its `next_attempt_at`)."""
    from offboard.webhooks.delivery import deliver_one

    done = 0
    for delivery_id in delivery_ids:
        if deliver_one(delivery_id) is not None:
            done += 1
    return {"attempted": done}


@task()
def deliver_due_webhooks() -> dict[str, Any]:
    """Every outbound webhook delivery that is due (an endpoint enabled again, say)."""
    return webhook_round()


@task()
def send_notices() -> dict[str, Any]:
    """The reminder emails queued and not yet sent (an assignment's, enqueued with it)."""
    from offboard.reminders.outbox import send_pending

    return send_pending()


@task()
def reminders() -> dict[str, Any]:
    """Periodic: each reminder job whose period has come (daily digests and deadline
    reminders, escalations, the portal's reminders), once per period (docs/reminders.md)."""
    return reminder_round()


@task()
def sweep() -> dict[str, Any]:
    """Periodic: every due outbox row, whatever became of its job (a worker killed mid-job
    leaves its row claimed until the lease runs out; then this picks it up)."""
    result = Round()
    timestamp_round(result)
    receipt_round(result)
    hooks = webhook_round()
    runs = connector_round()
    pruned = prune_results()
    return {**result.as_dict(), "webhooks": hooks, "connector_runs": runs, "pruned": pruned}


def connector_round() -> int:
    """Connector runs whose job was lost or whose worker died, queued again (they are
    idempotent: each operation reads first). Errors are printed, not raised."""
    from offboard.connectors.runs import redrive

    try:
        return redrive()
    except Exception as exc:
        log.error("error: connector runs: %s", exc)
        return 0


KEEP_RESULTS = dt.timedelta(days=7)


def prune_results() -> int:
    """The database backend keeps a row per job run: the successful ones go after a week (the
    failed ones stay, for an operator to read); the work itself is on record elsewhere."""
    from offboard.jobs.engine import in_database

    if not in_database():
        return 0  # RQ expires its own results
    from django_tasks_db.models import DBTaskResult

    cutoff = timezone.now() - KEEP_RESULTS
    deleted, _ = DBTaskResult.objects.successful().filter(finished_at__lt=cutoff).delete()
    return deleted
