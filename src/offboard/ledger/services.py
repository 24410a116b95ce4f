"""Ledger actions: start an organization's log, rotate its signing key, issue a checkpoint,
redact an event for a lawful erasure request."""

from typing import Any

from django.db import transaction

from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.permissions import require
from offboard.core.validation import Errors
from offboard.ledger import checkpoints, keys
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
    """Sign the log as it stands now (an operator's request; also done at every closure)."""
    require(actor, "read")
    return checkpoints.issue_checkpoint(org=actor.org, reason="requested")


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
