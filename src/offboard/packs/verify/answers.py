"""The five questions, answered PROVEN or NOT PROVEN from what an evidence pack verified.

Nothing is PROVEN unless every check passed and the pack is anchored outside itself (a key
the user gave, or the closure receipt the client holds). Only anchored events are used —
with a receipt, only those up to its checkpoint; the registers only from a data/case.json
whose state digest is the one the closure event recorded. Every fact says how it is known
(a system's read, the client in the portal, a vendor's document, or staff's word) and when it
happened, and a claim the events do not back is NOT PROVEN (decision 0010).

Pure: the standard library and the ledger core only.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
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
LATE_AFTER = dt.timedelta(hours=1)  # recorded later than this after it happened: say both


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

    @property
    def by_contact(self) -> bool:
        actor = self.body.get("actor")
        return isinstance(actor, dict) and actor.get("role") == "client_contact"


@dataclass
class Evidence:
    """What the checks established, for the answers."""

    case_ref: str | None = None
    outcome: str = "failed"  # verified | failed | unanchored
    failed_checks: list[str] = field(default_factory=list)
    events: list[VerifiedEvent] = field(default_factory=list)  # anchored, up to the cutoff
    redacted: list[int] = field(default_factory=list)  # anchored placeholders, same range
    state: dict[str, Any] | None = None  # case.json's state, bound by the closure digest
    timestamps: list[tuple[str, dt.datetime, str, bool]] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    pack_trusted: bool = False  # data/checkpoint is signed by a key the user trusts
    signed_by: str = ""  # key id that signed data/checkpoint
    anchors: list[str] = field(default_factory=list)  # "--key", "--receipt", "--checkpoint"
    receipt_size: int | None = None  # the receipt's checkpoint, shown to be a prefix
    receipt_key: str = ""
    client_size: int | None = None

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
    parsed = value if isinstance(value, dt.datetime) else _parse(value)
    if parsed is None:
        return str(value) if value else "at an unrecorded time"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _parse(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _detail(item: dict[str, Any]) -> dict[str, Any]:
    detail = item.get("source_detail")
    return detail if isinstance(detail, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _quote(value: Any) -> str:
    return f"“{value}”"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


# Phrases for how a fact is known; the summary counts items by these, strongest first.
SOURCE_ORDER = ("observed", "client_portal", "vendor_document", "staff")
SOURCE_PHRASES = {
    "observed": "observed by a system read",
    "client_portal": "acknowledged by the client in the portal",
    "vendor_document": "confirmed by a vendor's document",
    "staff": "recorded by staff",
}


class _Case:
    """The closed case as the anchored events and the bound case.json show it."""

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
        return f"{event.path}" if event is not None else "as set when the case was opened"

    def person(self, user_id: Any) -> str:
        return self.people.get(user_id) or (f"user #{user_id}" if user_id else "someone")

    def portal_event(self, register: str, item: dict[str, Any]) -> VerifiedEvent | None:
        """The client's own acknowledgement of this item: a portal event by a contact."""
        for e in reversed(self.evidence.events):
            if e.type != "portal.acknowledged" or not e.by_contact:
                continue
            for ref in _dicts(e.data.get("items")):
                if ref.get("register") == register and ref.get("id") == item.get("id"):
                    return e
        return None

    def connector_read(self, item: dict[str, Any]) -> VerifiedEvent | None:
        """The latest connector read of the grant's account (`connector.verified`, written by
        `connectors.services.record_verify`), whatever it found."""
        for e in reversed(self.evidence.events):
            grant = e.data.get("grant") if e.type == "connector.verified" else None
            if isinstance(grant, dict) and grant.get("id") == item.get("id"):
                return e
        return None


def _observed(case: _Case, item: dict[str, Any]) -> tuple[bool, str]:
    """An access grant said to be observed absent: only the latest connector read of it in the
    pack can say so — a later read that found it present, or could not tell, outweighs an
    earlier absent one."""
    event = case.connector_read(item)
    if event is None:
        return False, (
            "recorded as observed by a system read, but no connector read in the pack shows it"
        )
    seen = str(event.data.get("observation") or "no result")
    if seen != "absent":
        return False, (
            f"recorded as observed absent, but the latest connector read in the pack found it "
            f"{seen} ({event.path})"
        )
    return True, f"observed absent by a system read ({event.path})"


def _times(item: dict[str, Any], fallback: Any = None) -> str:
    """When it happened, and when it was recorded if that was notably later (a late entry)."""
    occurred = item.get("occurred_at") or fallback
    recorded = item.get("recorded_at")
    text = when(occurred)
    happened, noted = _parse(occurred), _parse(recorded)
    if happened is not None and noted is not None and noted - happened > LATE_AFTER:
        text += f" (recorded {when(noted)})"
    return text


def _source(case: _Case, register: str, item: dict[str, Any]) -> tuple[bool, str, str]:
    """(backed by the record, how it is known in words, the source key for the summary)."""
    source = str(item.get("source") or "")
    detail = _detail(item)
    if source == "client_portal":
        event = case.portal_event(register, item)
        if event is None:
            return (
                False,
                "recorded as acknowledged by the client in the portal, but no acknowledgement "
                "by a client contact in the pack shows it",
                source,
            )
        digest = str(event.data.get("manifest_sha256") or "")
        return (
            True,
            f"acknowledged by the client in the portal: {event.actor} signed with their typed "
            f"name {when(event.body.get('at'))} for the list with sha256 {digest[:16]}… "
            f"({event.path})",
            source,
        )
    if source == "observed":
        return (*_observed(case, item), source)
    if source == "vendor_document":
        sha = str(detail.get("document_sha256") or "")
        if not sha or sha not in (item.get("evidence") or []):
            return False, "said to be confirmed by a vendor's document that is not attached", source
        vendor = f" from {detail['vendor']}" if detail.get("vendor") else ""
        return True, f"confirmed by a vendor's document{vendor} (data/files/{sha})", source
    if source == "staff":
        name = detail.get("name") or case.person(item.get("recorded_by_id"))
        if detail.get("deemed"):
            events = ", ".join(f"#{i}" for i in detail.get("reminder_events") or [])
            return (
                True,
                f"deemed by staff ({name}) after the client's silence"
                + (f" despite logged reminders ({events})" if events else ""),
                "staff",
            )
        return True, f"recorded by staff ({name}): their statement, not the client's", source
    return True, "how this is known was not recorded", "unrecorded"


ACCESS_PHRASES = {
    "observed": "observed absent by a system read",
    "vendor_document": "confirmed by the vendor's document",
    "staff": "attested by staff",
}


def _summary(
    noun: str,
    sources: list[tuple[str, str]],
    others: Counter[str],
    phrases: dict[str, str] = SOURCE_PHRASES,
) -> str:
    """`9 handover items: 3 acknowledged by the client in the portal (Nina North), 6 recorded
    by staff (Alice Whitford)`."""
    total = len(sources) + sum(others.values())
    parts = []
    for key in (*SOURCE_ORDER, "unrecorded"):
        names = [name for source, name in sources if source == key]
        if not names:
            continue
        who = ", ".join(dict.fromkeys(n for n in names if n))
        phrase = phrases.get(key, "with no recorded source")
        parts.append(f"{len(names)} {phrase}" + (f" ({who})" if who else ""))
    parts += [f"{n} {what}" for what, n in others.items()]
    return f"{_plural(total, noun)}: " + ", ".join(parts) if parts else f"no {noun}s"


def _who(case: _Case, item: dict[str, Any]) -> str:
    detail = _detail(item)
    if item.get("source") == "client_portal":
        contact = detail.get("contact")
        return str(contact.get("name") or "") if isinstance(contact, dict) else ""
    if item.get("source") == "staff":
        return str(detail.get("name") or case.person(item.get("recorded_by_id")))
    return str(detail.get("vendor") or "")


def _deliverables(case: _Case) -> tuple[bool, list[str]]:
    items = case.items("deliverables")
    if not items:
        return True, ["no contractual deliverables were recorded for this case"]
    proven, reasons, sources, others = True, [], [], Counter[str]()
    for d in items:
        title, status = _quote(d.get("title")), d.get("status")
        if status in ("accepted", "deemed_accepted"):
            word = "accepted" if status == "accepted" else "deemed accepted"
            backed, how, key = _source(case, "deliverables", d)
            proven = proven and backed
            sources.append((key, _who(case, d)))
            reasons.append(
                f"{title} {word} {_times(d, d.get('accepted_at'))} — {how} "
                f"({case.cite('deliverable', d)})"
            )
        elif case.is_waived("deliverable", d):
            others["waived"] += 1
            reasons.append(f"{title} waived under a waiver in force at closure")
        else:
            proven = False
            others[str(status)] += 1
            extra = " (marked waived, but no waiver was in force)" if status == "waived" else ""
            reasons.append(f"{title} is {status}, not accepted or waived{extra}")
    return proven, [_summary("deliverable", sources, others), *reasons]


def _handover(case: _Case) -> tuple[bool, list[str]]:
    proven, reasons, sources, others = True, [], [], Counter[str]()
    items = case.items("handover_items")
    for h in items:
        name, status = _quote(h.get("name")), h.get("status")
        if status in ("handed_over", "acknowledged"):
            backed, how, key = _source(case, "handover_items", h)
            proven = proven and backed
            sources.append((key, _who(case, h)))
            word = "acknowledged" if status == "acknowledged" else "handed over"
            reasons.append(
                f"{name} {word} {_times(h, h.get('handed_over_at'))}, to "
                f"{h.get('new_owner') or 'the client'} ({h.get('method') or 'method not stated'})"
                f" — {how} ({case.cite('handover_item', h)})"
            )
        elif case.is_waived("handover_item", h):
            others["waived"] += 1
            reasons.append(f"{name} not handed over, under a waiver in force at closure")
        else:
            proven = False
            others[str(status)] += 1
            reasons.append(f"{name} is {status}, not handed over")
    lead = [_summary("handover item", sources, others)] if items else [
        "no handover items were recorded for this case"
    ]  # fmt: skip
    for d in case.items("data_dispositions"):
        dataset, action = _quote(d.get("dataset")), d.get("action")
        if action == "retain":
            if d.get("retention_basis"):
                reasons.append(f"data {dataset} retained: {d.get('retention_basis')}")
            else:
                proven = False
                reasons.append(f"data {dataset} retained without a stated basis")
        elif d.get("status") == "done":
            backed, how, _ = _source(case, "data_dispositions", d)
            proven = proven and backed
            verb = "returned" if action == "return" else "deleted"
            reasons.append(
                f"data {dataset} {verb} {_times(d, d.get('completed_at'))} by method "
                f"{d.get('method') or 'not stated'} — {how} ({case.cite('data_disposition', d)})"
            )
        elif case.is_waived("data_disposition", d):
            reasons.append(f"data {dataset} not {action}ed, under a waiver in force at closure")
        else:
            proven = False
            reasons.append(f"data {dataset} is still to be {action}ed")
    return proven, [*lead, *reasons]


# How a revocation's verification level is counted in the summary.
VERIFICATION = {
    "observed": "observed",
    "vendor_confirmed": "vendor_document",
    "attested": "staff",
}


def _verification(case: _Case, grant: dict[str, Any], level: str) -> tuple[bool, str]:
    """How a revocation's verification is known, and whether the record backs it."""
    if level == "observed":
        return _observed(case, grant)
    if level == "vendor_confirmed":
        detail = _detail(grant)
        files = grant.get("evidence") or []
        sha = str(detail.get("document_sha256") or (files[0] if files else ""))
        if not sha or sha not in files:
            return False, "said to be confirmed by the vendor, but no vendor document is attached"
        vendor = f" from {detail['vendor']}" if detail.get("vendor") else ""
        return True, f"confirmed by a vendor's document{vendor} (data/files/{sha})"
    name = case.person(grant.get("verified_by_id"))
    return True, f"attested by staff ({name}): their statement, with what they saw attached"


def _verifier_name(case: _Case, grant: dict[str, Any], level: str) -> str:
    if level == "attested":
        return case.person(grant.get("verified_by_id"))
    detail = _detail(grant)
    return str(detail.get("vendor") or "")


def _access(case: _Case) -> tuple[bool, list[str]]:
    items = case.items("access_grants")
    if not items:
        return True, ["no access grants were recorded for this case"]
    proven, reasons, sources, others = True, [], [], Counter[str]()
    for g in items:
        label = f"{g.get('system')} ({g.get('principal') or g.get('direction')})"
        waived = case.is_waived("access_grant", g)
        status, level = g.get("status"), g.get("verification_level")
        if g.get("planned_action") == "keep":
            others["kept under a waiver" if waived else "kept without a waiver"] += 1
            if waived:
                reasons.append(f"{label} kept, under a waiver in force at closure")
            else:
                proven = False
                reasons.append(f"{label} kept without a waiver in force")
        elif status == "revoked":
            revoked = (
                f"{label} revoked {_times(g, g.get('actioned_at'))} by "
                f"{case.person(g.get('actioned_by_id'))}"
            )
            if level in VERIFICATION:
                backed, how = _verification(case, g, level)
                proven = proven and backed
                sources.append((VERIFICATION[level], _verifier_name(case, g, level)))
                reasons.append(
                    f"{revoked}; verified {when(g.get('verified_at'))} — {how} "
                    f"({case.cite('access_grant', g)})"
                )
            elif level == "waived" and waived:
                others["verification waived"] += 1
                reasons.append(f"{revoked}; verification waived under a waiver in force")
            else:
                proven = False
                others["not verified"] += 1
                reasons.append(f"{revoked}, but the revocation was not verified")
        elif status == "transferred":
            others["transferred"] += 1
            reasons.append(
                f"{label} transferred {_times(g, g.get('actioned_at'))} "
                f"({case.cite('access_grant', g)})"
            )
        elif waived:
            others["still active under a waiver"] += 1
            reasons.append(f"{label} still {status}, under a waiver in force at closure")
        else:
            proven = False
            others[f"still {status}"] += 1
            reasons.append(f"{label} is still {status}")
    return proven, [_summary("access grant", sources, others, ACCESS_PHRASES), *reasons]


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
                "anchored case.approved event of the same state in the pack"
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
    """Yes only when something outside the organization fixes the record: the receipt the
    client holds, or a trusted timestamp over a checkpoint signed by a trusted key."""
    cp = evidence.checkpoint
    assert cp is not None
    reasons = []
    count = len(evidence.events) + len(evidence.redacted)
    if evidence.receipt_size is not None:
        reasons.append(
            f"the {count} events of case {evidence.case_ref} up to its closure are leaves of "
            f"the log your closure receipt fixed at size {evidence.receipt_size}, signed by "
            f"key {evidence.receipt_key}: nothing you were given at closure was rewritten, "
            "and none of those events is missing"
        )
    else:
        reasons.append(
            f"all {count} events of case {evidence.case_ref} are leaves of the append-only log "
            f"{cp.origin} at size {cp.size} (root {cp.root.hex()[:16]}…), signed by key "
            f"{evidence.signed_by}, the key you gave; none of the case's events is missing"
        )
    if evidence.redacted:
        shown = ", ".join(f"#{i}" for i in evidence.redacted[:10])
        reasons.append(
            f"{len(evidence.redacted)} of them ({shown}) were erased on a lawful request; "
            "their leaf hashes are still proven"
        )
    anchored_times = [t for t in evidence.timestamps if t[3] and evidence.pack_trusted]
    for path, at, tsa, anchored in evidence.timestamps:
        chain = "anchored to --tsa-roots" if anchored else "chain not anchored: give --tsa-roots"
        reasons.append(f"{tsa} timestamped data/checkpoint at {when(at)} ({path}, {chain})")
    if evidence.receipt_size is not None or anchored_times:
        return True, reasons
    return False, [
        "nothing outside the organization fixes when this record existed: the key you gave "
        "signs what the organization says, and it could sign a rewritten history today. Give "
        "--receipt (the closure receipt you received) or --tsa-roots (to anchor a trusted "
        "timestamp)",
        *reasons,
    ]


def _not_closed(evidence: Evidence) -> str | None:
    """Why the closure questions cannot be answered, or None when they can."""
    if not evidence.events:
        return "no anchored event of this case is in the pack, so nothing about it is proven"
    cancelled = evidence.last("case.cancelled")
    if cancelled is not None:
        return f"the case was cancelled, not closed ({cancelled.path})"
    if evidence.last("case.closed") is None:
        return "case not closed: the pack holds no anchored case.closed event (an interim pack)"
    return None


def _needs_state(evidence: Evidence) -> str | None:
    if evidence.state is None:
        return (
            "data/case.json is missing or is not the state the case was closed on, so the "
            "registers are not proven"
        )
    return None


def _refused(evidence: Evidence) -> str | None:
    if evidence.outcome == "failed":
        failed = ", ".join(evidence.failed_checks) or "reading the pack"
        return (
            f"a check failed ({failed}): nothing in a pack that fails a check is proven; see "
            "the checks below"
        )
    if evidence.outcome == "unanchored":
        return (
            "the pack is internally consistent but unanchored: nothing outside it says whose "
            "record it is (keys inside a pack say which key signed, never whether to trust "
            "it). Give --receipt (the closure receipt the client received) or --key (the "
            "organization's verifier key, obtained from them directly)"
        )
    return None


def answer_questions(evidence: Evidence, unreadable: str | None = None) -> list[Answer]:
    """The five answers, in order. `unreadable`: the pack could not be read at all."""
    if unreadable is not None:
        unread = f"the pack could not be read: {unreadable}"
        return [Answer(n, q, False, [unread]) for n, q in enumerate(QUESTIONS, start=1)]
    refused = _refused(evidence)
    if refused is not None:
        return [Answer(n, q, False, [refused]) for n, q in enumerate(QUESTIONS, start=1)]
    answers: list[Answer] = []
    blocked = _not_closed(evidence)
    closed = evidence.last("case.closed")
    for number, ask in ((1, _deliverables), (2, _handover), (3, _access)):
        why = blocked or _needs_state(evidence)
        if why is not None or closed is None:
            answers.append(Answer(number, QUESTIONS[number - 1], False, [why or ""]))
            continue
        proven, reasons = ask(_Case(evidence, closed))
        answers.append(Answer(number, QUESTIONS[number - 1], proven, reasons))
    if blocked is not None or closed is None:
        answers.append(Answer(4, QUESTIONS[3], False, [blocked or ""]))
    else:
        answers.append(Answer(4, QUESTIONS[3], *_approvals(evidence, closed)))
    answers.append(Answer(5, QUESTIONS[4], *_provable(evidence)))
    return answers
