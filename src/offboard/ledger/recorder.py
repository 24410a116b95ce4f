"""`record_event`: the single hook every service calls, inside its transaction.

It turns the action into an event body — RFC 8785 canonical JSON with `v, org, case, seq,
prev, type, actor, at, data, files, nonce` — and appends it as the next leaf of the
organization's Merkle log, in the same transaction as the change it records.

The events of one case form a chain (decision 0010): `seq` is the event's place in its case
(1, 2, 3, …) and `prev` the leaf hash (hex) of the case's previous event (null for the
first). An evidence pack can then prove it holds every event of its case: a gap, a reorder
or an omission breaks the numbering or the links. Events of no case carry neither.
"""

import base64
import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction

from offboard.core import clock
from offboard.core.actor import EventActor
from offboard.core.canonical import canonical_json
from offboard.ledger import store
from offboard.ledger.models import LedgerEntry

if TYPE_CHECKING:
    from offboard.evidence.models import EvidenceFile

EVENT_VERSION = 2  # 2: case events carry `seq` and `prev`

# Called with each appended entry, inside its transaction: the outbound webhooks write their
# deliveries here (webhooks/fanout.py), so an event and what it owes commit together. The
# ledger knows nothing of them: an app registers itself in its `ready()`.
Listener = Callable[[LedgerEntry], None]
_listeners: list[Listener] = []


def on_record(listener: Listener) -> None:
    """Call `listener(entry)` after every append, in the appending transaction."""
    if listener not in _listeners:
        _listeners.append(listener)


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
    chain: tuple[int, bytes | None] | None = None,
    version: int = EVENT_VERSION,
) -> bytes:
    """The exact leaf bytes of an event. `chain`: (seq, leaf hash of the case's previous
    event) for an event of a case."""
    placed: dict[str, Any] = {}
    if chain is not None:
        seq, prev = chain
        placed = {"seq": seq, "prev": prev.hex() if prev is not None else None}
    return canonical_json(
        {
            "v": version,
            "org": org_slug,
            "case": case_ref,
            **placed,
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
    chain = None
    if case is not None:
        count, last = store.case_head(actor.org, case.pk)  # locks the log head
        chain = (count + 1, last)
    at = clock.now()
    body = event_body(
        org_slug=actor.org.slug,
        case_ref=getattr(case, "ref", None),
        type=type,
        actor=actor.as_event_actor(),
        at=at,
        data=data or {},
        files=[f.sha256 for f in files],
        chain=chain,
    )
    entry = store.append(
        org=actor.org,
        body=body,
        meta={"case": case, "type": type, "at": at, "actor_user": actor.user},
        case_seq=chain[0] if chain else None,
    )
    for listener in _listeners:
        listener(entry)
    return entry
