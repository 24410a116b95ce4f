"""Completing the steps an action settled the items of — inside that action (decision 0012).

An action that settles register items (a register update, a waiver, the client's response
in the portal, a deemed acceptance) calls `complete_settled_steps` after its change and
before its event: every open step whose dependencies are done and whose items are now all
settled is marked done, and the action's one event says so (`completes_steps`). There is no
second action and no second event. After the event, `note_completing_event` writes its index
into each step's record. A step already done or not applicable is never touched, whatever
happens to its items later: reopening it is a person's decision, with a reason.
"""

from typing import Any

from offboard.cases.links import CaseLinks, ItemsEvidence
from offboard.cases.models import OffboardingCase, Step
from offboard.cases.state import fresh
from offboard.core import clock
from offboard.core.actor import EventActor
from offboard.ledger.models import LedgerEntry
from offboard.ledger.selectors import case_events

DONE_LIKE = (Step.Status.DONE, Step.Status.NOT_APPLICABLE)
STARTED = (OffboardingCase.State.ACTIVE, OffboardingCase.State.CLOSING)


def complete_settled_steps(*, actor: EventActor, case: OffboardingCase) -> list[Step]:
    """Mark done every open step of the case that its settled items now complete, in the
    playbook's order (so a step completed here counts as done for the ones after it).
    Call inside the action's transaction, holding the case's lock, after the change."""
    if case.state not in STARTED or not _candidates(case):
        return []
    loaded = fresh(case)
    steps = sorted(loaded.steps.all(), key=lambda s: s.position)
    links = CaseLinks(loaded)
    done = {s.key for s in steps if s.status in DONE_LIKE}
    acknowledgements: dict[Any, int] | None = None
    completed = []
    now = clock.now()
    for step in steps:
        if step.status in DONE_LIKE or not step.about:
            continue
        if any(dep not in done for dep in step.depends_on):
            continue
        found = links.evidence(step)
        if found is None:
            continue
        step.status = Step.Status.DONE
        step.completed_at = now
        step.completed_by = actor.user
        if acknowledgements is None and any(i.acknowledged for i in found.items):
            acknowledgements = acknowledgement_events(case)
        step.settled_by = settled_record(found, acknowledgements or {})
        step.save(update_fields=["status", "completed_at", "completed_by", "settled_by"])
        done.add(step.key)
        completed.append(step)
    return completed


def _candidates(case: OffboardingCase) -> bool:
    """Whether any step could complete now: open, about items, and its dependencies done.
    One small query; when none could, the whole case (`fresh`, ~20 queries and every row it
    holds) is not loaded — most register changes on most cases."""
    rows = list(Step.objects.filter(case=case).values_list("key", "status", "about", "depends_on"))
    done = {key for key, status, _, _ in rows if status in DONE_LIKE}
    return any(
        about and status not in DONE_LIKE and all(dep in done for dep in depends_on or ())
        for _, status, about, depends_on in rows
    )


def settled_record(found: ItemsEvidence, acknowledgements: dict[Any, int]) -> dict[str, Any]:
    """The step's `settled_by`, each client acknowledgement with the event that recorded it
    (known for those already in the ledger)."""
    record = found.record()
    for ref in record["items"]:
        ack = ref.get("acknowledgement")
        if ack is not None:
            index = acknowledgements.get(_ack_key(ref))
            if index is not None:
                ack["event"] = index
    return record


def completing_data(completed: list[Step]) -> dict[str, Any]:
    """What the action's event says of the steps it completed (nothing when none)."""
    if not completed:
        return {}
    return {
        "completes_steps": [{"step": s.key, "title": s.title, **s.settled_by} for s in completed]
    }


def note_completing_event(case: OffboardingCase, completed: list[Step], event: LedgerEntry) -> None:
    """After the event: each completed step names it, and an acknowledgement made in this
    very action names it too."""
    if not completed:
        return
    acknowledgements: dict[Any, int] = {}
    if any(
        "event" not in (ref.get("acknowledgement") or {"event": None})
        for s in completed
        for ref in s.settled_by.get("items", [])
    ):
        acknowledgements = acknowledgement_events(case)
    for step in completed:
        record = dict(step.settled_by)
        record["event"] = event.index
        for ref in record.get("items", []):
            ack = ref.get("acknowledgement")
            if ack is not None and "event" not in ack:
                index = acknowledgements.get(_ack_key(ref))
                if index is not None:
                    ack["event"] = index
        step.settled_by = record
        Step.objects.filter(pk=step.pk).update(settled_by=record)


def _ack_key(ref: dict[str, Any]) -> tuple[Any, Any, Any]:
    ack = ref.get("acknowledgement") or {}
    return (ref.get("register"), ref.get("id"), ack.get("manifest_sha256"))


def acknowledgement_events(case: Any) -> dict[Any, int]:
    """(register, item id, manifest digest) → index of the `portal.acknowledged` event in
    which the client acknowledged the item for that list (the latest, if several)."""
    found: dict[Any, int] = {}
    for entry in case_events(case).filter(type="portal.acknowledged", redacted=False):
        data = entry.data
        for item in data.get("items") or []:
            if isinstance(item, dict):
                key = (item.get("register"), item.get("id"), data.get("manifest_sha256"))
                found[key] = entry.index
    return found
