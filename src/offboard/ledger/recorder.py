"""`record_event`: the single hook every service calls, inside its transaction.

Its storage is a plain append-only table for now; the Merkle-log ledger replaces the
storage behind this same call, so call sites never change.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction

from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.canonical import to_jsonable
from offboard.ledger.models import CaseEvent

if TYPE_CHECKING:
    from offboard.evidence.models import EvidenceFile


def record_event(
    *,
    actor: Actor,
    type: str,
    case: Any = None,
    data: dict[str, Any] | None = None,
    files: Iterable["EvidenceFile"] = (),
) -> CaseEvent:
    """Append one event. Must run inside the action's transaction, so both commit or neither."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must be called inside the action's transaction")
    return CaseEvent.objects.create(
        org=actor.org,
        case=case,
        case_ref=getattr(case, "ref", "") or "",
        type=type,
        at=clock.now(),
        actor_user=actor.user,
        actor=to_jsonable(actor.as_event_actor()),
        data=to_jsonable(data or {}),
        files=sorted({f.sha256 for f in files}),
    )
