"""Issuing signed checkpoints (C2SP tlog-checkpoint as a signed note) of an organization's log."""

from typing import Any

from django.conf import settings
from django.db import transaction

from offboard.core import clock
from offboard.ledger import keys, store
from offboard.ledger.models import Checkpoint, Timestamp
from offboard.ledger.note import Checkpoint as CheckpointBody
from offboard.ledger.note import sign_note


def issue_checkpoint(*, org: Any, reason: str, case: Any = None) -> Checkpoint:
    """Sign the log as it stands, inside the caller's transaction, and queue its timestamps.

    Holding the log head's lock means no append can slip between reading the size and
    signing it. Timestamp requests are rows in the same transaction (an outbox), so a
    committed checkpoint is never left without its requests.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("issue_checkpoint must run inside a transaction")
    head = store.lock_head(org)
    key = keys.active_key(org)
    root = store.root(org, head.size)
    body = CheckpointBody(origin=keys.origin(org), size=head.size, root=root).text()
    checkpoint = Checkpoint.objects.create(
        org=org,
        size=head.size,
        root=root,
        signed_note=sign_note(body, keys.signer_for(key)),
        key=key,
        reason=reason,
        case=case,
        created_at=clock.now(),
    )
    now = clock.now()
    Timestamp.objects.bulk_create(
        [
            Timestamp(org=org, checkpoint=checkpoint, tsa_url=url, next_attempt_at=now)
            for url in settings.OFFBOARD_TSA_URLS
        ]
    )
    if settings.OFFBOARD_TSA_URLS:
        from offboard.jobs.engine import enqueue
        from offboard.ledger.timestamps import request_soon

        enqueue("offboard.jobs.tasks.request_timestamps", checkpoint.pk)  # in this transaction
        transaction.on_commit(lambda: request_soon(checkpoint.pk))  # sooner, in this process
    return checkpoint


def latest(org: Any) -> Checkpoint | None:
    return Checkpoint.objects.filter(org=org).select_related("key").order_by("-size", "-id").first()


def issue_if_grown(*, org: Any, reason: str = "periodic") -> Checkpoint | None:
    """The periodic job: a new checkpoint only when the log grew since the last one.

    The log head is locked before the last checkpoint is read, so workers running this at
    once issue one checkpoint per size, not one each.
    """
    with transaction.atomic():
        size = store.lock_head(org).size
        last = latest(org)
        if size == 0 or (last is not None and last.size >= size):
            return None
        return issue_checkpoint(org=org, reason=reason)
