"""Storing evidence files. `store_file` is a building block used inside other actions;
`upload_evidence` is the stand-alone action with its own event."""

import os
from typing import IO

from django.db import IntegrityError, transaction

from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import ValidationFailed
from offboard.core.permissions import require
from offboard.evidence import storage
from offboard.evidence.models import EvidenceFile
from offboard.ledger.recorder import record_event


def _clean_name(name: str, field: str) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    if not base or base in {".", ".."}:
        raise ValidationFailed({field: ["needs a file name"]})
    if any(ord(c) < 32 for c in base):
        raise ValidationFailed({field: ["file name contains control characters"]})
    return base[:255]


def store_file(*, actor: Actor, stream: IO[bytes], name: str, field: str = "file") -> EvidenceFile:
    """Hash and store bytes for the actor's organization; the same bytes are stored once."""
    require(actor, "evidence.upload")
    clean = _clean_name(name, field)
    spooled, sha, size, head = storage.spool_and_hash(stream, field)
    try:
        if size == 0:
            raise ValidationFailed({field: ["is empty"]})
        existing = EvidenceFile.objects.filter(org=actor.org, sha256=sha).first()
        if existing is not None:
            return existing
        name_in_store = storage.storage_name_for(actor.org.pk, sha)
        storage.put(name_in_store, spooled)
        try:
            with transaction.atomic():
                return EvidenceFile.objects.create(
                    org=actor.org,
                    sha256=sha,
                    size=size,
                    media_type=storage.sniff_media_type(head),
                    original_name=clean,
                    uploaded_by=actor.user,
                    uploaded_at=clock.now(),
                    storage_name=name_in_store,
                )
        except IntegrityError:
            return EvidenceFile.objects.get(org=actor.org, sha256=sha)
    finally:
        spooled.close()


@transaction.atomic
def upload_evidence(*, actor: Actor, stream: IO[bytes], name: str) -> EvidenceFile:
    evidence = store_file(actor=actor, stream=stream, name=name)
    record_event(
        actor=actor, type="evidence_file.stored", data=evidence.as_event_data(), files=[evidence]
    )
    return evidence
