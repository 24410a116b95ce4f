"""The five questions, answered PROVEN or NOT PROVEN from what an evidence pack verified.

Only events whose inclusion proof led to a trusted checkpoint are used, and the registers
only from a `data/case.json` whose state digest is the one the verified `case.closed` event
recorded. Pure: the standard library and the ledger core only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from offboard.ledger.note import Checkpoint

QUESTIONS = (
    "Were all contractual deliverables completed?",
    "What exactly was handed over to the client?",
    "When was access revoked — and to which systems?",
    "Who approved final closure?",
    "Can this be proven later?",
)


@dataclass(frozen=True)
class VerifiedEvent:
    index: int
    body: dict[str, Any]
    path: str

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))

    @property
    def data(self) -> dict[str, Any]:
        data = self.body.get("data")
        return data if isinstance(data, dict) else {}

    @property
    def actor(self) -> str:
        actor = self.body.get("actor")
        actor = actor if isinstance(actor, dict) else {}
        return str(actor.get("name") or actor.get("username") or "the system")

    @property
    def actor_id(self) -> Any:
        actor = self.body.get("actor")
        return actor.get("id") if isinstance(actor, dict) else None


@dataclass
class Evidence:
    """What the checks established, for the answers."""

    case_ref: str | None = None
    events: list[VerifiedEvent] = field(default_factory=list)  # verified, in index order
    redacted: list[int] = field(default_factory=list)
    state: dict[str, Any] | None = None  # case.json's state, bound by the closure digest
    case_document: dict[str, Any] = field(default_factory=dict)
    timestamps: list[tuple[str, dt.datetime, str, bool]] = field(default_factory=list)
    client_size: int | None = None
    all_checks_ok: bool = False
    failed_checks: list[str] = field(default_factory=list)
    key_given: bool = False
    checkpoint: Checkpoint | None = None
    signed_by: str = ""

    def last(self, type_: str) -> VerifiedEvent | None:
        return next((e for e in reversed(self.events) if e.type == type_), None)


@dataclass
class Answer:
    number: int
    question: str
    proven: bool
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "question": self.question,
            "proven": self.proven,
            "reasons": self.reasons,
        }


def when(value: Any) -> str:
    """An RFC 3339 time as a reader writes it (UTC, to the minute); other values as given."""
    if isinstance(value, dt.datetime):
        parsed: dt.datetime | None = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            parsed = None
    if parsed is None:
        return str(value) if value else "an unrecorded time"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


class _Case:
    """The closed case as the verified events and the bound case.json show it."""

    def __init__(self, evidence: Evidence, closed: VerifiedEvent) -> None:
        self.evidence = evidence
        self.closed = closed
        self.closed_at = _parse(closed.body.get("at"))
        state = evidence.state or {}
        registers = state.get("registers")
        self.registers: dict[str, Any] = registers if isinstance(registers, dict) else {}
        self.people = {e.actor_id: e.actor for e in evidence.events if e.actor_id is not None}
        self.waived = {
            (w.get("target_type"), w.get("target_id"))
            for w in _dicts(state.get("waivers"))
            if not w.get("revoked")
            and self.closed_at is not None
            and (_parse(w.get("expires_at")) or self.closed_at) > self.closed_at
        }
        self.latest: dict[tuple[str, Any], VerifiedEvent] = {}
        for e in evidence.events:
            item = e.data.get("item")
            if isinstance(item, dict) and "." in e.type:
                self.latest[(e.type.split(".", 1)[0], item.get("id"))] = e

    def items(self, register: str) -> list[dict[str, Any]]:
        return _dicts(self.registers.get(register))

    def is_waived(self, target: str, item: dict[str, Any]) -> bool:
        return (target, item.get("id")) in self.waived

    def cite(self, prefix: str, item: dict[str, Any]) -> str:
        event = self.latest.get((prefix, item.get("id")))
        if event is None:
            return "(as set when the case was opened)"
        return f"(recorded by {event.actor}, {event.path})"

    def person(self, user_id: Any) -> str:
        return self.people.get(user_id) or (f"user #{user_id}" if user_id else "someone")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _parse(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _quote(value: Any) -> str:
    return f"“{value}”"


def _not_closed(evidence: Evidence) -> str | None:
    """Why the closure questions cannot be answered, or None when they can."""
    if not evidence.events:
        return "no event of this case verified, so nothing about it is proven"
    cancelled = evidence.last("case.cancelled")
    if cancelled is not None:
        return f"the case was cancelled, not closed ({cancelled.path})"
    if evidence.last("case.closed") is None:
        return "case not closed: the pack holds no verified case.closed event (an interim pack)"
    return None


def _needs_state(evidence: Evidence) -> str | None:
    if evidence.state is None:
        return (
            "data/case.json is missing or is not the state the case was closed on, so the "
            "registers are not proven"
        )
    return None


def _deliverables(case: _Case) -> tuple[bool, list[str]]:
    items = case.items("deliverables")
    if not items:
        return True, ["no contractual deliverables were recorded for this case"]
    proven, reasons = True, []
    for d in items:
        title, status = _quote(d.get("title")), d.get("status")
        if status in ("accepted", "deemed_accepted"):
            word = "accepted" if status == "accepted" else "deemed accepted"
            reasons.append(
                f"{title} {word} {when(d.get('accepted_at'))} {case.cite('deliverable', d)}"
            )
        elif case.is_waived("deliverable", d) or (status == "waived"):
            if not case.is_waived("deliverable", d):
                proven = False
                reasons.append(f"{title} is marked waived but no waiver was in force at closure")
            else:
                reasons.append(f"{title} waived under a waiver in force at closure")
        else:
            proven = False
            reasons.append(f"{title} is {status}, not accepted or waived")
    return proven, reasons


def _handover(case: _Case) -> tuple[bool, list[str]]:
    proven, reasons = True, []
    items = case.items("handover_items")
    if not items:
        reasons.append("no handover items were recorded for this case")
    for h in items:
        name, status = _quote(h.get("name")), h.get("status")
        if status in ("handed_over", "acknowledged"):
            ack = (
                f", acknowledged by the client {when(h.get('acknowledged_at'))}"
                if status == "acknowledged"
                else ""
            )
            reasons.append(
                f"{name} handed over to {h.get('new_owner') or 'the client'} "
                f"{when(h.get('handed_over_at'))} — {h.get('method') or 'method not stated'}"
                f"{ack} {case.cite('handover_item', h)}"
            )
        elif case.is_waived("handover_item", h):
            reasons.append(f"{name} not handed over, under a waiver in force at closure")
        else:
            proven = False
            reasons.append(f"{name} is {status}, not handed over")
    for d in case.items("data_dispositions"):
        dataset, action = _quote(d.get("dataset")), d.get("action")
        if action == "retain":
            if d.get("retention_basis"):
                reasons.append(f"data {dataset} retained: {d.get('retention_basis')}")
            else:
                proven = False
                reasons.append(f"data {dataset} retained without a stated basis")
        elif d.get("status") == "done":
            verb = "returned" if action == "return" else "deleted"
            reasons.append(
                f"data {dataset} {verb} {when(d.get('completed_at'))} by method "
                f"{d.get('method') or 'not stated'} {case.cite('data_disposition', d)}"
            )
        elif case.is_waived("data_disposition", d):
            reasons.append(f"data {dataset} not {action}ed, under a waiver in force at closure")
        else:
            proven = False
            reasons.append(f"data {dataset} is still to be {action}ed")
    return proven, reasons


def _access(case: _Case) -> tuple[bool, list[str]]:
    items = case.items("access_grants")
    if not items:
        return True, ["no access grants were recorded for this case"]
    proven, reasons = True, []
    for g in items:
        label = f"{g.get('system')} ({g.get('principal') or g.get('direction')})"
        waived = case.is_waived("access_grant", g)
        status, level = g.get("status"), g.get("verification_level")
        if g.get("planned_action") == "keep":
            if waived:
                reasons.append(f"{label} kept, under a waiver in force at closure")
            else:
                proven = False
                reasons.append(f"{label} kept without a waiver in force")
        elif status == "revoked":
            revoked = f"{label} revoked {when(g.get('actioned_at'))} by {case.person(g.get('actioned_by_id'))}"
            if level and (level != "waived" or waived):
                reasons.append(
                    f"{revoked}, verified ({level}) {when(g.get('verified_at'))} "
                    f"{case.cite('access_grant', g)}"
                )
            else:
                proven = False
                reasons.append(f"{revoked}, but the revocation was not verified")
        elif status == "transferred":
            reasons.append(
                f"{label} transferred {when(g.get('actioned_at'))} {case.cite('access_grant', g)}"
            )
        elif waived:
            reasons.append(f"{label} still {status}, under a waiver in force at closure")
        else:
            proven = False
            reasons.append(f"{label} is still {status}")
    return proven, reasons


def _approvals(evidence: Evidence, closed: VerifiedEvent) -> tuple[bool, list[str]]:
    digest = closed.data.get("state_digest")
    listed = _dicts(closed.data.get("approvals"))
    approved = [a for a in listed if a.get("decision") == "approved"]
    proven, reasons = bool(approved), []
    if not approved:
        reasons.append(f"{closed.path} lists no approval of the closed state")
    for a in approved:
        event = next(
            (
                e
                for e in evidence.events
                if e.type == "case.approved"
                and e.actor_id == a.get("approver_id")
                and e.data.get("state_digest") == digest
            ),
            None,
        )
        if event is None:
            proven = False
            reasons.append(
                f"the approval by user #{a.get('approver_id')} listed in {closed.path} has no "
                "verified case.approved event of the same state in the pack"
            )
            continue
        reasons.append(
            f"{event.actor} ({a.get('role')}) approved state {str(digest)[:16]}… "
            f"{when(event.body.get('at'))} ({event.path})"
        )
    if len({a.get("approver_id") for a in approved}) != len(approved):
        proven = False
        reasons.append(f"{closed.path} lists the same approver twice")
    reasons.append(f"{closed.actor} closed the case {when(closed.body.get('at'))} ({closed.path})")
    return proven, reasons


def _provable(evidence: Evidence) -> tuple[bool, list[str]]:
    cp = evidence.checkpoint
    if not evidence.all_checks_ok:
        failed = ", ".join(evidence.failed_checks)
        return False, [f"not every check passed ({failed}): see the checks below"]
    if cp is None:
        return False, ["the pack has no usable checkpoint"]
    reasons = [
        f"all {len(evidence.events) + len(evidence.redacted)} events of case "
        f"{evidence.case_ref} in the pack are leaves of the append-only log {cp.origin}, "
        f"included in its checkpoint of size {cp.size} (root {cp.root.hex()[:16]}…)"
    ]
    if evidence.redacted:
        shown = ", ".join(f"#{i}" for i in evidence.redacted[:10])
        reasons.append(
            f"{len(evidence.redacted)} of them ({shown}) were erased on a lawful request; "
            "their leaf hashes are still proven"
        )
    key = evidence.signed_by.split("+")[1] if "+" in evidence.signed_by else "?"
    anchors = []
    if evidence.key_given:
        anchors.append("--key")
        reasons.append(f"the checkpoint is signed by key {key}, the key you gave with --key")
    else:
        reasons.append(
            f"the checkpoint is signed by key {key}, found in the pack itself (give the "
            "organization's published key with --key to anchor it)"
        )
    if evidence.client_size is not None:
        anchors.append("--checkpoint")
        reasons.append(
            f"the log is an extension of the checkpoint of size {evidence.client_size} you hold "
            "(--checkpoint): nothing you were shown was rewritten"
        )
    for path, at, tsa, anchored in evidence.timestamps:
        if anchored:
            anchors.append("--tsa-roots")
        chain = "anchored to --tsa-roots" if anchored else "chain not anchored"
        reasons.append(f"{tsa} timestamped the checkpoint at {when(at)} ({path}, {chain})")
    if not evidence.timestamps:
        reasons.append("no trusted timestamp is in the pack: the checkpoint's time is not proven")
    if not anchors:
        return False, [
            "everything verifies, but only against keys and certificates carried in the pack: "
            "give --key (the organization's published verifier key), --checkpoint (the one you "
            "received at closure) or --tsa-roots",
            *reasons,
        ]
    return True, reasons


def answer_questions(evidence: Evidence, unreadable: str | None = None) -> list[Answer]:
    """The five answers, in order. `unreadable`: the pack could not be read at all."""
    if unreadable is not None:
        unread = f"the pack could not be read: {unreadable}"
        return [Answer(n, q, False, [unread]) for n, q in enumerate(QUESTIONS, start=1)]
    answers: list[Answer] = []
    blocked = _not_closed(evidence)
    closed = evidence.last("case.closed")
    for number, ask in ((1, _deliverables), (2, _handover), (3, _access)):
        why = blocked or _needs_state(evidence)
        if why is not None or closed is None:
            answers.append(Answer(number, QUESTIONS[number - 1], False, [why or ""]))
            continue
        case = _Case(evidence, closed)
        proven, reasons = ask(case)
        answers.append(Answer(number, QUESTIONS[number - 1], proven, reasons))
    if blocked is not None or closed is None:
        answers.append(Answer(4, QUESTIONS[3], False, [blocked or ""]))
    else:
        answers.append(Answer(4, QUESTIONS[3], *_approvals(evidence, closed)))
    answers.append(Answer(5, QUESTIONS[4], *_provable(evidence)))
    return answers
