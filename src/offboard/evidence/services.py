"""Storing evidence files. `store_file` is a building block used inside other actions;
`upload_evidence` is the stand-alone action with its own event.

An action that stores files runs in `atomic_with_files()`: the files' rows are written with
the action, their bytes only once the action has passed every check (at the end of its
transaction, before the commit), so a refused action leaves no row, no event and no file."""

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.db import IntegrityError, transaction

from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import ValidationFailed
from offboard.core.permissions import require
from offboard.evidence import storage
from offboard.evidence.models import EvidenceFile
from offboard.ledger.recorder import record_event

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """Bytes whose row is written, to be stored if the action succeeds."""

    name: str
    spooled: IO[bytes]


# The files of the action running in `atomic_with_files()`, if any.
_PENDING: contextvars.ContextVar[list[_Pending] | None] = contextvars.ContextVar(
    "offboard_pending_files", default=None
)


@contextlib.contextmanager
def atomic_with_files() -> Iterator[None]:
    """`transaction.atomic()` for an action that stores files: their bytes are written at the
    end of the block, once everything in it succeeded, still inside the transaction (a write
    that fails undoes the action). Nested, it joins the outer block; usable as a decorator."""
    if _PENDING.get() is not None:
        with transaction.atomic():
            yield
        return
    pending: list[_Pending] = []
    token = _PENDING.set(pending)
    try:
        with transaction.atomic():
            yield
            _write(pending)
    finally:
        _PENDING.reset(token)
        for item in pending:
            item.spooled.close()


def _write(pending: list[_Pending]) -> None:
    """Store each file; if one fails, remove those this call created before the rollback
    (while the rows' uniqueness still holds back anyone storing the same bytes)."""
    created: list[str] = []
    try:
        for item in pending:
            if storage.put(item.name, item.spooled):
                created.append(item.name)
    except BaseException:
        for name in created:
            try:
                storage.delete(name)
            except Exception:  # the first failure is the one to report; this one is logged
                log.exception("could not remove %s after a failed action", name)
        raise


def _clean_name(name: str, field: str) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    if not base or base in {".", ".."}:
        raise ValidationFailed({field: ["needs a file name"]})
    if any(ord(c) < 32 for c in base):
        raise ValidationFailed({field: ["file name contains control characters"]})
    return base[:255]


def store_file(*, actor: Actor, stream: IO[bytes], name: str, field: str = "file") -> EvidenceFile:
    """Hash and store bytes for the actor's organization; the same bytes are stored once.
    Inside `atomic_with_files()` the bytes are written when the action succeeds; elsewhere
    at once."""
    require(actor, "evidence.upload")
    clean = _clean_name(name, field)
    spooled, sha, size, head, crc = storage.spool_and_hash(stream, field)
    pending = _PENDING.get()
    kept = False
    try:
        if size == 0:
            raise ValidationFailed({field: ["is empty"]})
        existing = EvidenceFile.objects.filter(org=actor.org, sha256=sha).first()
        if existing is not None:
            return existing
        name_in_store = storage.storage_name_for(actor.org.pk, sha)
        if pending is None:
            storage.put(name_in_store, spooled)
        try:
            with transaction.atomic():
                evidence = EvidenceFile.objects.create(
                    org=actor.org,
                    sha256=sha,
                    size=size,
                    media_type=storage.sniff_media_type(head),
                    original_name=clean,
                    uploaded_by=actor.user,
                    uploaded_at=clock.now(),
                    storage_name=name_in_store,
                    crc32=crc,
                )
        except IntegrityError:
            return EvidenceFile.objects.get(org=actor.org, sha256=sha)
        if pending is not None:
            pending.append(_Pending(name_in_store, spooled))
            kept = True
        return evidence
    finally:
        if not kept:
            spooled.close()


@atomic_with_files()
def upload_evidence(*, actor: Actor, stream: IO[bytes], name: str) -> EvidenceFile:
    evidence = store_file(actor=actor, stream=stream, name=name)
    record_event(
        actor=actor, type="evidence_file.stored", data=evidence.as_event_data(), files=[evidence]
    )
    return evidence
