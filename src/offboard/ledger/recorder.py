"""`record_event`: the single hook every service calls, inside its transaction.

It turns the action into an event body — RFC 8785 canonical JSON with `v, org, case, type,
actor, at, data, files, nonce` — and appends it as the next leaf of the organization's
Merkle log, in the same transaction as the change it records.
"""

import base64
import datetime as dt
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction

from offboard.core import clock
from offboard.core.actor import EventActor
from offboard.core.canonical import canonical_json
from offboard.ledger import store
from offboard.ledger.models import LedgerEntry

if TYPE_CHECKING:
    from offboard.evidence.models import EvidenceFile

EVENT_VERSION = 1


def event_body(
    *,
    org_slug: str,
    case_ref: str | None,
    type: str,
    actor: dict[str, Any],
    at: dt.datetime,
    data: dict[str, Any],
    files: Iterable[str],
    nonce: bytes | None = None,
) -> bytes:
    """The exact leaf bytes of an event."""
    return canonical_json(
        {
            "v": EVENT_VERSION,
            "org": org_slug,
            "case": case_ref,
            "type": type,
            "actor": actor,
            "at": at,
            "data": data,
            "files": sorted(set(files)),
            # 32 random bytes: two identical actions never share a leaf, and a redacted
            # body cannot be recovered by guessing its content against the leaf hash.
            "nonce": base64.b64encode(nonce or secrets.token_bytes(32)).decode(),
        }
    )


def record_event(
    *,
    actor: EventActor,
    type: str,
    case: Any = None,
    data: dict[str, Any] | None = None,
    files: Iterable["EvidenceFile"] = (),
) -> LedgerEntry:
    """Append one event. Must run inside the action's transaction, so both commit or neither."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must be called inside the action's transaction")
    at = clock.now()
    body = event_body(
        org_slug=actor.org.slug,
        case_ref=getattr(case, "ref", None),
        type=type,
        actor=actor.as_event_actor(),
        at=at,
        data=data or {},
        files=[f.sha256 for f in files],
    )
    return store.append(
        org=actor.org,
        body=body,
        meta={"case": case, "type": type, "at": at, "actor_user": actor.user},
    )
