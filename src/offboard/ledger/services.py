"""Ledger actions: start an organization's log, rotate its signing key, issue a checkpoint,
redact an event for a lawful erasure request."""

import datetime as dt
import math
from typing import Any

from django.conf import settings
from django.db import transaction

from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, RateLimited, ValidationFailed
from offboard.core.permissions import require
from offboard.core.validation import Errors
from offboard.ledger import checkpoints, keys, store
from offboard.ledger.models import Checkpoint, LedgerEntry, LogHead, SigningKey
from offboard.ledger.recorder import record_event


def start_log(org: Any) -> None:
    """An organization's empty log and its first signing key (at organization creation)."""
    LogHead.objects.get_or_create(org=org)
    keys.active_key(org)


@transaction.atomic
def rotate_signing_key(*, actor: Actor) -> SigningKey:
    """A new key signs from now on; the old one stays published for what it signed."""
    require(actor, "org.manage_members")
    old = (
        SigningKey.objects.select_for_update()
        .filter(org=actor.org, retired_at__isnull=True)
        .first()
    )
    if old is not None:
        old.retired_at = clock.now()
        old.save(update_fields=["retired_at"])
    new = keys.create_key(actor.org)
    record_event(
        actor=actor,
        type="signing_key.rotated",
        data={
            "key_id": new.key_id,
            "verifier_key": new.verifier_key,
            "old": {"key_id": old.key_id if old else None},
        },
    )
    checkpoints.issue_checkpoint(org=actor.org, reason="key_rotated")
    return new


@transaction.atomic
def issue_checkpoint(*, actor: Actor) -> Checkpoint:
    """Sign the log as it stands now, on an admin's request (closures sign their own).

    While the log has not grown, the latest checkpoint already covers it: another is refused
    for OFFBOARD_CHECKPOINT_REQUEST_INTERVAL seconds after it, whoever asks from whichever
    process (the log head's lock serializes the check, the checkpoint table remembers).
    """
    require(actor, "ledger.checkpoint")
    size = store.lock_head(actor.org).size
    last = checkpoints.latest(actor.org)
    if last is not None and last.size >= size:
        interval = dt.timedelta(seconds=settings.OFFBOARD_CHECKPOINT_REQUEST_INTERVAL)
        wait = last.created_at + interval - clock.now()
        if wait > dt.timedelta(0):
            seconds = math.ceil(wait.total_seconds())
            raise RateLimited(
                f"The log has not grown since checkpoint of size {last.size} was signed "
                f"{_ago(clock.now() - last.created_at)} ago, and it covers every event: request "
                f"another in {seconds} s, or after the next event.",
                retry_after=seconds,
                details={"checkpoint": {"size": last.size, "created_at": last.created_at}},
            )
    return checkpoints.issue_checkpoint(org=actor.org, reason="requested")


def _ago(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


@transaction.atomic
def redact_event(*, actor: Actor, index: int, reason: str) -> LedgerEntry:
    """Crypto-shred one event's body: the leaf hash stays, so every proof still verifies."""
    require(actor, "org.manage_members")
    errors = Errors()
    reason = errors.text("reason", reason, max_length=5000)
    errors.raise_if_any()
    entry = LedgerEntry.objects.select_for_update().filter(org=actor.org, index=index).first()
    if entry is None:
        raise ValidationFailed({"event": [f"no event #{index} in this organization's ledger"]})
    if entry.redacted:
        raise Conflict(f"Event #{index} is already redacted.")
    # The one UPDATE the append-only triggers allow: body emptied, marker set, hash kept.
    LedgerEntry.objects.filter(pk=entry.pk).update(body=b"", redacted=True)
    # Recorded on the erased event's case (a closed one too: like an addendum), so the case's
    # evidence pack holds the justification of its placeholder (decision 0010).
    record_event(
        actor=actor,
        type="ledger.event_redacted",
        case=entry.case,
        data={
            "index": index,
            "leaf_hash": bytes(entry.leaf_hash).hex(),
            "event_type": entry.type,
            "case_seq": entry.case_seq,
            "reason": reason,
        },
    )
    return LedgerEntry.objects.get(pk=entry.pk)
