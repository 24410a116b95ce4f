"""Read the event record, checkpoints and keys of an organization."""

from typing import Any

from django.db.models import QuerySet

from offboard.core.errors import NotFound
from offboard.ledger.models import Checkpoint, LedgerEntry, LogHead, SigningKey


def case_events(case: Any) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(org_id=case.org_id, case=case).order_by("index")


def get_entry(org: Any, index: int) -> LedgerEntry:
    entry = LedgerEntry.objects.filter(org=org, index=index).first()
    if entry is None:
        raise NotFound(f"No event #{index} in this organization's ledger.")
    return entry


def latest_checkpoint(org: Any, *, size: int | None = None) -> Checkpoint:
    qs = Checkpoint.objects.filter(org=org).select_related("key").prefetch_related("timestamps")
    if size is not None:
        qs = qs.filter(size=size)
    found = qs.order_by("-size", "-id").first()
    if found is None:
        if size is not None:
            raise NotFound(
                f"No checkpoint of size {size}; ask for a proof against an existing one."
            )
        raise NotFound(
            "No checkpoint yet: one is signed at every case closure, by the worker, "
            "or on request with POST /api/v1/ledger/checkpoints."
        )
    return found


def signing_keys(org: Any) -> QuerySet[SigningKey]:
    return SigningKey.objects.filter(org=org).order_by("created_at", "id")


def recent_checkpoints(org: Any, limit: int = 10) -> list[Checkpoint]:
    """The latest checkpoints, newest first, with their key and timestamps (three queries)."""
    qs = Checkpoint.objects.filter(org=org).select_related("key").prefetch_related("timestamps")
    return list(qs.order_by("-size", "-id")[:limit])


def log_size(org: Any) -> int:
    """How many events the organization's log holds."""
    head = LogHead.objects.filter(org=org).first()
    return head.size if head is not None else 0
