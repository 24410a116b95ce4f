"""The closure certificate: a PDF that answers the five questions from the records.

`render_certificate(case)` reads the case with its registers, approvals, events and the
covering checkpoint in a fixed number of queries, turns every value into words a reader
without Offboard understands (never raw JSON), and lays it out with WeasyPrint: a title
page, a table of contents, numbered sections, "Page X of Y" footers.

A case that is not closed still renders, marked "Interim report — case not closed".
The template is loaded by an engine of its own, so `reports` need not be an installed app.
"""

import base64
import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.template import Context, Engine

from offboard import labels
from offboard.cases.models import (
    AccessGrant,
    Approval,
    DataDisposition,
    Deliverable,
    HandoverItem,
    OffboardingCase,
    Settlement,
)
from offboard.cases.state import state_digest, with_everything
from offboard.core import clock
from offboard.ledger.models import Checkpoint, LedgerEntry
from offboard.ledger.selectors import case_events
from offboard.reports.sources import breakable, how_known, row_fact, sources_line, when

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "reports/certificate.html"
STYLESHEET = TEMPLATE_DIR / "reports" / "certificate.css"

_engine: Engine | None = None

VERIFICATION_WORDS: dict[str, str] = {
    AccessGrant.Verification.OBSERVED: "Observed — re-read through the system after revoking",
    AccessGrant.Verification.VENDOR_CONFIRMED: "Confirmed in writing by the vendor",
    AccessGrant.Verification.ATTESTED: "Attested — statement or screenshot on file",
    AccessGrant.Verification.WAIVED: "Verification waived by an approver",
}
VERIFICATION_SHORT: dict[str, str] = {
    AccessGrant.Verification.OBSERVED: "Observed",
    AccessGrant.Verification.VENDOR_CONFIRMED: "Vendor-confirmed",
    AccessGrant.Verification.ATTESTED: "Attested",
    AccessGrant.Verification.WAIVED: "Waived",
}
ACTION_WORDS: dict[str, str] = {
    AccessGrant.PlannedAction.REVOKE: "Revoke",
    AccessGrant.PlannedAction.TRANSFER: "Transfer ownership",
    AccessGrant.PlannedAction.KEEP: "Keep (with reason)",
}
DELIVERABLE_WORDS: dict[str, str] = {
    Deliverable.Status.PENDING: "Pending",
    Deliverable.Status.DELIVERED: "Delivered, awaiting acceptance",
    Deliverable.Status.ACCEPTED: "Accepted",
    Deliverable.Status.CONDITIONALLY_ACCEPTED: "Conditionally accepted",
    Deliverable.Status.REJECTED: "Rejected",
    Deliverable.Status.DEEMED_ACCEPTED: "Deemed accepted",
    Deliverable.Status.WAIVED: "Waived",
}
ACCEPTED = (Deliverable.Status.ACCEPTED, Deliverable.Status.DEEMED_ACCEPTED)
HANDED = (HandoverItem.Status.HANDED_OVER, HandoverItem.Status.ACKNOWLEDGED)
SETTLED = (Settlement.Status.PAID, Settlement.Status.WRITTEN_OFF)


def _engine_instance() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine(dirs=[str(TEMPLATE_DIR)], autoescape=True)
    return _engine


# --- words for values -------------------------------------------------------------------------


def words(value: str) -> str:
    """A stored code (`time_and_materials`) as words (`Time and materials`)."""
    text = str(value or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else "—"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def person(user: Any) -> str:
    if user is None:
        return "—"
    return str(user.get_full_name() or user.username)


def short(sha256: str) -> str:
    return f"{sha256[:16]}…"


def _files_of(found: Iterable[Any]) -> list[dict[str, str]]:
    return [
        {"name": breakable(f.original_name), "sha256": f.sha256, "short": short(f.sha256)}
        for f in sorted(found, key=lambda f: (f.original_name, f.sha256))
    ]


def files(item: Any) -> list[dict[str, str]]:
    """An item's evidence files: name, full and short SHA-256."""
    return _files_of(item.evidence.all())


def counted(counts: Counter[str], labels: dict[Any, str]) -> str:
    """`accepted (3), deemed accepted (1)` in the order of `labels`."""
    parts = [
        f"{labels.get(k, words(k)).lower()} ({n})"
        for k, n in sorted(counts.items(), key=lambda kv: list(labels).index(kv[0]))
    ]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " or " + parts[-1]
    return parts[0] if parts else ""


def _scalar(value: Any) -> Any:
    """Event values as words: lists and objects never reach the page as JSON."""
    if isinstance(value, list):
        if all(isinstance(v, str) and len(v) == 64 for v in value):
            return plural(len(value), "file")
        return ", ".join(str(_scalar(v)) for v in value) if value else "none"
    if isinstance(value, dict):
        return plural(len(value), "field")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def _summary_input(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("old", "item") and isinstance(value, dict):
            out[key] = {k: _scalar(v) for k, v in value.items()}
        elif isinstance(value, list | dict):
            continue
        else:
            out[key] = value
    return out


def event_line(entry: LedgerEntry) -> str:
    from offboard.ledger.summary import event_summary

    if entry.redacted:
        return "(content redacted on a lawful erasure request; its hash stays in the log)"
    return event_summary(_summary_input(entry.data), labels.field_value) or "—"


# --- the model of the document ----------------------------------------------------------------


@dataclass
class Question:
    number: int
    anchor: str
    title: str
    answer: str
    settled: bool
    parts: dict[str, Any] = field(default_factory=dict)


TIMELINE_HEAD = 100
TIMELINE_TAIL = 150


def _timeline_events(events: list[LedgerEntry]) -> tuple[list[LedgerEntry], dict[str, Any] | None]:
    """The events the timeline lists: all of them, or for a long case the first 100 and the
    last 150 (opening and closure) with the middle summarized by type — a document of a few
    pages, not hundreds; every event is in the evidence pack and its register chapters."""
    if len(events) <= TIMELINE_HEAD + TIMELINE_TAIL:
        return events, None
    middle = events[TIMELINE_HEAD:-TIMELINE_TAIL]
    by_type = Counter(e.type for e in middle).most_common()
    omitted = {
        "count": len(middle),
        "after": middle[0].index,
        "before": middle[-1].index,
        "types": ", ".join(f"{n:,} × {t}" for t, n in by_type[:8])
        + (f", and {len(by_type) - 8} other types" if len(by_type) > 8 else ""),
    }
    return events[:TIMELINE_HEAD] + events[-TIMELINE_TAIL:], omitted


def covering_checkpoint(
    case: OffboardingCase, first_index: int | None, last_index: int | None
) -> Checkpoint | None:
    """The organization's latest checkpoint: one that includes the case's last event if any
    does, else the latest that includes some of its events (addenda come after closure)."""
    if first_index is None or last_index is None:
        return None
    qs = (
        Checkpoint.objects.filter(org_id=case.org_id, size__gt=first_index)
        .select_related("key", "case")
        .prefetch_related("timestamps")
    )
    found = list(qs.order_by("-size", "-id")[:1])
    return found[0] if found else None


def _users(ids: Iterable[int | None]) -> dict[int, Any]:
    from django.contrib.auth import get_user_model

    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.pk: u for u in get_user_model().objects.filter(pk__in=wanted)}


def _waived_targets(case: OffboardingCase, now: dt.datetime) -> set[tuple[str, int]]:
    return {(w.target_type, w.target_id) for w in case.waivers.all() if w.is_in_force(now)}


def _deliverables(case: OffboardingCase, waived: set[tuple[str, int]]) -> Question:
    items = list(case.deliverables.all())
    rows = [
        {
            "title": d.title,
            "sow": d.sow_reference or "—",
            "status": DELIVERABLE_WORDS.get(d.status, words(d.status)),
            "delivered": when(d.delivered_at),
            "method": d.delivery_method,
            "accepted": when(d.accepted_at),
            "note": d.acceptance_note,
            "fact": row_fact(d),
            "files": files(d),
        }
        for d in items
    ]
    done = [d for d in items if d.status in ACCEPTED]
    excused = [
        d
        for d in items
        if d.status not in ACCEPTED
        and (d.status == Deliverable.Status.WAIVED or ("deliverable", d.pk) in waived)
    ]
    open_ = [d for d in items if d not in done and d not in excused]
    if not items:
        answer, settled = "No contractual deliverables are recorded for this case.", True
    elif not open_:
        how = counted(Counter(d.status for d in done), DELIVERABLE_WORDS)
        answer = (
            f"Yes — the one contractual deliverable was {how}"
            if len(items) == 1
            else f"Yes — all {len(items)} contractual deliverables were {how}"
        )
        if excused:
            answer += f"{' and ' if done else ''}{len(excused)} waived by written agreement"
        answer = answer.replace("were  and", "were").replace("was  and", "was") + "."
        settled = True
    else:
        how = counted(Counter(d.status for d in open_), DELIVERABLE_WORDS)
        verb = "is" if len(open_) == 1 else "are"
        answer = (
            f"No — {plural(len(open_), 'deliverable')} {verb} not yet accepted: {how}; "
            f"{len(done)} of {len(items)} accepted."
        )
        settled = False
    if known := how_known(items):
        answer += " " + known
    return Question(
        1,
        "q1",
        "Were all contractual deliverables completed?",
        answer,
        settled,
        {"deliverables": rows, "sources": sources_line(items, "deliverable")},
    )


def _handover(case: OffboardingCase, waived: set[tuple[str, int]]) -> Question:
    items = list(case.handover_items.all())
    rows = [
        {
            "kind": words(labels.label(h.kind, "kind")),
            "name": h.name,
            "reference": h.reference,
            "new_owner": h.new_owner or "—",
            "method": h.method or "—",
            "date": when(h.handed_over_at),
            "status": words(h.status),
            "ack": when(h.acknowledged_at)
            if h.status == HandoverItem.Status.ACKNOWLEDGED and h.acknowledged_at
            else ("Disputed" if h.status == HandoverItem.Status.DISPUTED else "Not yet"),
            "fact": row_fact(h),
            "files": files(h),
        }
        for h in items
    ]
    handed = [h for h in items if h.status in HANDED]
    open_ = [
        h
        for h in items
        if h.status not in HANDED
        and h.status != HandoverItem.Status.WAIVED
        and ("handover_item", h.pk) not in waived
    ]
    if not items:
        answer = "No handover items are recorded for this case."
    elif not open_:
        every = (
            "The one handover item is"
            if len(items) == 1
            else f"All {len(items)} handover items are"
        )
        answer = f"{every} accounted for: {len(handed)} handed over"
        rest = len(items) - len(handed)
        answer += f"; {rest} waived." if rest else "."
    else:
        answer = (
            f"Not complete — {plural(len(open_), 'handover item')} not yet handed over "
            f"({', '.join(h.name for h in open_[:5])}{', …' if len(open_) > 5 else ''}); "
            f"{len(handed)} of {len(items)} handed over."
        )
    # Who acknowledged what is said by source: staff recording an acknowledgement is not the
    # client acknowledging (decision 0008).
    if known := how_known(items):
        answer += " " + known

    data = list(case.data_dispositions.all())
    data_rows = [
        {
            "dataset": d.dataset,
            "location": d.location,
            "action": words(d.action),
            "method": d.get_method_display() if d.method else "—",
            "legal_hold": "Yes" if d.legal_hold else "No",
            "retention": (
                d.retention_basis + (f" (until {when(d.retain_until)})" if d.retain_until else "")
            )
            or "—",
            "status": words(d.status),
            "completed": when(d.completed_at),
            "fact": row_fact(d),
            "files": files(d),
        }
        for d in data
    ]
    disposed = [
        d
        for d in data
        if d.action != DataDisposition.Action.RETAIN and d.status == DataDisposition.Status.DONE
    ]
    retained = [d for d in data if d.action == DataDisposition.Action.RETAIN]
    pending = [
        d
        for d in data
        if d.action != DataDisposition.Action.RETAIN
        and d.status != DataDisposition.Status.DONE
        and ("data_disposition", d.pk) not in waived
    ]
    if not data:
        data_answer = "No client data sets are recorded for this case."
    else:
        returned = sum(1 for d in disposed if d.action == DataDisposition.Action.RETURN)
        deleted = len(disposed) - returned
        data_answer = (
            f"Of {plural(len(data), 'data set')}: {returned} returned, {deleted} deleted, "
            f"{len(retained)} retained on a stated legal basis"
        )
        data_answer += (
            f"; {len(pending)} still to be returned or deleted." if pending else "; none pending."
        )
        if known := how_known(data):
            data_answer += " " + known
    return Question(
        2,
        "q2",
        "What exactly was handed over to the client?",
        answer,
        not open_,
        {
            "handover": rows,
            "sources": sources_line(items, "handover item"),
            "data": data_rows,
            "data_answer": data_answer,
            "data_settled": not pending,
            "data_sources": sources_line(data, "data set"),
        },
    )


def _access(case: OffboardingCase, waived: set[tuple[str, int]], users: dict[int, Any]) -> Question:
    items = list(case.access_grants.all())
    rows = [
        {
            "system": g.system,
            "principal": g.principal or "—",
            "privilege": g.privilege,
            "direction": g.get_direction_display(),
            "action": ACTION_WORDS.get(g.planned_action, words(g.planned_action)),
            "keep_reason": g.keep_reason,
            "status": words(g.status),
            "actioned_at": when(g.actioned_at),
            "actioned_by": person(users.get(g.actioned_by_id)) if g.actioned_by_id else "—",
            "verification": VERIFICATION_SHORT.get(g.verification_level, "Not verified")
            if g.verification_level
            else "Not verified",
            "verification_note": g.verification_note,
            "verified_at": when(g.verified_at),
            "verified_by": person(users.get(g.verified_by_id)) if g.verified_by_id else "—",
            "waived": ("access_grant", g.pk) in waived,
            "fact": row_fact(g),
            "files": files(g),
        }
        for g in items
    ]
    active = [
        g
        for g in items
        if g.status == AccessGrant.Status.ACTIVE
        and g.planned_action != AccessGrant.PlannedAction.KEEP
        and ("access_grant", g.pk) not in waived
    ]
    revoked = [g for g in items if g.status == AccessGrant.Status.REVOKED]
    transferred = [g for g in items if g.status == AccessGrant.Status.TRANSFERRED]
    kept = [g for g in items if g.planned_action == AccessGrant.PlannedAction.KEEP]
    if not items:
        answer = "No access grants are recorded for this case."
    elif not active:
        levels = Counter(g.verification_level or "unverified" for g in revoked)
        verified = ", ".join(f"{words(k).lower()} {n}" for k, n in sorted(levels.items()))
        outcomes = [
            f"{len(revoked)} revoked" + (f" (verification: {verified})" if revoked else ""),
            f"{len(transferred)} transferred" if transferred else "",
            f"{len(kept)} kept under a waiver" if kept else "",
        ]
        every = (
            "The one access grant was dealt with"
            if len(items) == 1
            else f"All {len(items)} access grants in both directions were dealt with"
        )
        answer = f"{every}: " + ", ".join(o for o in outcomes if o) + "."
        dated = [(g.actioned_at, g.pk, g) for g in revoked if g.actioned_at is not None]
        if dated:
            at, _, last = max(dated, key=lambda d: (d[0], d[1]))
            answer += f" The last revocation happened at {when(at)}"
            fact = row_fact(last)
            answer += f" (recorded at {fact['recorded']})." if fact["recorded"] else "."
    else:
        answer = (
            f"Not complete — {plural(len(active), 'access grant')} still active: "
            f"{', '.join(g.system for g in active[:5])}{', …' if len(active) > 5 else ''}."
        )
    if known := how_known(items):
        answer += " " + known
    return Question(
        3,
        "q3",
        "When was access revoked — and to which systems?",
        answer,
        not active,
        {"grants": rows, "sources": sources_line(items, "access grant")},
    )


def _approvals(case: OffboardingCase, digest: str, now: dt.datetime, closed_by: str) -> Question:
    approvals = list(case.approvals.all())
    rows = [
        {
            "approver": person(a.approver),
            "role": words(a.role),
            "decision": words(a.decision),
            "at": when(a.at),
            "comment": a.comment or "—",
            "digest": a.state_digest,
            "matches": a.state_digest == digest,
            "invalidated": when(a.invalidated_at) if a.invalidated_at else "",
        }
        for a in approvals
    ]
    current = [
        a
        for a in approvals
        if a.invalidated_at is None
        and a.state_digest == digest
        and a.decision == Approval.Decision.APPROVED
    ]
    names = " and ".join(f"{person(a.approver)} ({words(a.role).lower()})" for a in current)
    if case.state == OffboardingCase.State.CLOSED:
        answer = (
            f"Closure was approved by {names or 'nobody'} on the final state of the case; "
            f"{closed_by} closed it at {when(case.closed_at)}."
        )
        settled = bool(current)
    elif current:
        answer = (
            f"Not yet closed. The current state is approved by {names}; the case is "
            f"{words(case.state).lower()}."
        )
        settled = False
    else:
        answer = f"Not yet — the case is {words(case.state).lower()} and no approval of its current state is recorded."
        settled = False

    settlements = list(case.settlements.all())
    settlement_rows = [
        {
            "kind": words(s.kind),
            "description": s.description or "—",
            "reference": s.reference or "—",
            "amount": f"{s.amount:,.2f} {s.currency}".strip() if s.amount is not None else "—",
            "status": words(s.status),
            "settled": when(s.settled_at),
            "zero": "Yes" if s.zero_balance_confirmed else "No",
            "fact": row_fact(s),
            "files": files(s),
        }
        for s in settlements
    ]
    open_settlements = [s for s in settlements if s.status not in SETTLED]
    if not settlements:
        settlement_answer = "No settlement is recorded."
    elif open_settlements:
        settlement_answer = (
            f"{plural(len(open_settlements), 'settlement item')} not settled "
            f"({', '.join(words(s.status).lower() for s in open_settlements)})."
        )
    elif len(settlements) == 1:
        settlement_answer = f"The one settlement item is {words(settlements[0].status).lower()}."
    else:
        settlement_answer = f"All {len(settlements)} settlement items are paid or written off."
    if known := how_known(settlements):
        settlement_answer += " " + known
    waiver_rows = [
        {
            "target": f"{words(w.target_type)}: {w.target_label}",
            "justification": w.justification,
            "approver": person(w.approver),
            "role": words(w.approver_role),
            "granted": when(w.granted_at),
            "expires": when(w.expires_at),
            "state": "Revoked " + when(w.revoked_at)
            if w.revoked_at
            else ("In force" if w.is_in_force(now) else "Expired"),
        }
        for w in case.waivers.all()
    ]
    return Question(
        4,
        "q4",
        "Who approved final closure?",
        answer,
        settled,
        {
            "approvals": rows,
            "settlements": settlement_rows,
            "settlement_answer": settlement_answer,
            "settlement_sources": sources_line(settlements, "settlement item"),
            "waivers": waiver_rows,
        },
    )


CHECKPOINT_REASONS = {
    "periodic": "signed periodically as the log grew",
    "requested": "signed on request",
    "key_rotated": "signed when the signing key was rotated",
}


def checkpoint_reason(checkpoint: Checkpoint, case: OffboardingCase) -> str:
    """Why the checkpoint was signed; "at this case's closure" only if it really was."""
    if checkpoint.reason == "case_closed":
        if checkpoint.case_id == case.pk:
            return "signed at this case's closure"
        other = checkpoint.case.ref if checkpoint.case is not None else "another case"
        return f"signed at the closure of case {other}, which it covers along with this one"
    return CHECKPOINT_REASONS.get(checkpoint.reason, f"signed: {words(checkpoint.reason).lower()}")


def _proof(
    case: OffboardingCase,
    events: list[LedgerEntry],
    checkpoint: Checkpoint | None,
    receipt_to: Sequence[str] = (),
) -> Question:
    """Question 5 reads "Yes" only when something outside the organization fixes the record:
    a trusted timestamp over the checkpoint, or the closure receipt the client receives with
    this very certificate (`receipt_to`: their names). The organization's own signature alone
    is not enough — it could sign a rewritten history today (decision 0010)."""
    parts: dict[str, Any] = {"checkpoint": None, "timestamps": []}
    if checkpoint is not None:
        note_lines = checkpoint.signed_note.split("\n")
        root = bytes(checkpoint.root)
        parts["checkpoint"] = {
            "origin": note_lines[0] if note_lines else "—",
            "size": checkpoint.size,
            "root_hex": root.hex(),
            "root_b64": base64.b64encode(root).decode(),
            "key_id": checkpoint.key.key_id,
            "verifier_key": checkpoint.key.verifier_key,
            "created_at": when(checkpoint.created_at),
            "reason": checkpoint_reason(checkpoint, case),
            "note_lines": [line for line in note_lines if line],
        }
        parts["timestamps"] = [
            {
                "tsa": t.tsa_url,
                "status": "Granted"
                if t.status == t.Status.GRANTED
                else "Requested, not yet granted",
                "time": when(t.gen_time),
            }
            for t in checkpoint.timestamps.all()
        ]
    granted = [t for t in parts["timestamps"] if t["status"] == "Granted"]
    covered = [e for e in events if checkpoint is not None and e.index < checkpoint.size]
    later = len(events) - len(covered)
    parts["later"] = later
    if not events:
        answer, settled = "No events are recorded for this case.", False
    elif checkpoint is None or not covered:
        answer = (
            f"Not yet — the {plural(len(events), 'event')} of this case are in the "
            "organization's tamper-evident log, but no signed checkpoint covers them yet."
        )
        settled = False
    else:
        if later:
            leaves = "is a leaf" if len(covered) == 1 else "are leaves"
            scope = f"{len(covered)} of the {len(events)} events of this case {leaves}"
        elif len(events) == 1:
            scope = "the one event of this case is a leaf"
        else:
            scope = f"all {len(events)} events of this case are leaves"
        fixed = (
            f"{scope} of the organization's append-only Merkle log, "
            f"covered by a checkpoint of size {checkpoint.size} signed with key "
            f"{checkpoint.key.key_id}"
        )
        anchors = []
        if granted:
            times = ", ".join(t["time"] for t in granted)
            anchors.append(
                f"timestamped by {plural(len(granted), 'independent authority', 'independent authorities')}"
                f" ({times})"
            )
        if receipt_to:
            anchors.append(
                f"handed to {', '.join(receipt_to)} in the closure receipt sent with this "
                "certificate, with which they can check any later evidence pack offline"
            )
        if anchors:
            answer = f"Yes — {fixed}, {' and '.join(anchors)}."
            if not granted:
                answer += " No trusted timestamp was granted for it."
            settled = True
        else:
            answer = (
                f"Not independently — {fixed}, the organization's own key: nothing outside "
                "the organization fixes it yet (no trusted timestamp was granted and no "
                "closure receipt was handed to the client). A time-stamping authority "
                "(OFFBOARD_TSA_URLS) or the closure receipt would."
            )
            settled = False
        if later:
            answer += (
                f" The {plural(later, 'event')} recorded after it (such as addenda) will be "
                "covered by the next checkpoint."
            )
    return Question(
        5,
        "q5",
        "Can this be proven later — to someone who does not trust us?",
        answer,
        settled,
        parts,
    )


def _contracts(case: OffboardingCase) -> list[dict[str, Any]]:
    return [
        {
            "reference": c.reference,
            "title": c.title,
            "service_type": c.get_service_type_display(),
            "fee_type": c.get_fee_type_display(),
            "start": when(c.start_date),
            "end": when(c.end_date),
            "notice": plural(c.notice_period_days, "day"),
            "notice_received": when(c.notice_received_at),
            "data_return": plural(c.data_return_window_days, "day"),
            "retention": c.retention_terms,
        }
        for c in sorted(case.contracts.all(), key=lambda c: c.reference)
    ]


def certificate_context(
    case: OffboardingCase,
    *,
    checkpoint: Checkpoint | None = None,
    now: dt.datetime | None = None,
    receipt_to: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything the certificate says, as plain values; the template only lays it out."""
    now = now or clock.now()
    loaded: OffboardingCase = (
        with_everything(OffboardingCase.objects.filter(pk=case.pk)).select_related("org").get()
    )
    events = list(case_events(loaded))
    if checkpoint is None:
        checkpoint = covering_checkpoint(
            loaded, events[0].index if events else None, events[-1].index if events else None
        )
    digest = state_digest(loaded)
    waived = _waived_targets(loaded, now)
    grants = list(loaded.access_grants.all())
    users = _users([g.actioned_by_id for g in grants] + [g.verified_by_id for g in grants])
    closed = loaded.state == OffboardingCase.State.CLOSED
    closing_event = next((e for e in reversed(events) if e.type == "case.closed"), None)
    closed_digest = closing_event.data.get("state_digest") if closing_event else None
    closed_by = str(closing_event.actor.get("name") or "The case owner") if closing_event else ""
    steps = list(loaded.steps.all())
    step_counts = Counter(s.status for s in steps)
    questions = [
        _deliverables(loaded, waived),
        _handover(loaded, waived),
        _access(loaded, waived, users),
        _approvals(loaded, digest, now, closed_by),
        _proof(loaded, events, checkpoint, receipt_to),
    ]
    shown, omitted = _timeline_events(events)
    timeline = [
        {
            "index": e.index,
            "at": when(e.at),
            "type": e.type,
            "actor": str(e.actor.get("name") or e.actor.get("username") or "system"),
            "role": words(str(e.actor.get("role") or "")) if e.actor.get("role") else "",
            "summary": event_line(e),
        }
        for e in shown
    ]
    addenda = [
        {"author": person(a.author), "at": when(a.at), "text": a.text, "files": files(a)}
        for a in loaded.addenda.all()
    ]
    version = loaded.playbook_version
    return {
        "case": loaded,
        "closed": closed,
        "org_name": loaded.org.name,
        "client": loaded.client,
        "state": words(loaded.state),
        "trigger": loaded.get_trigger_display(),
        "scope": words(loaded.scope),
        "fee_type": words(loaded.fee_type),
        "owner": person(loaded.owner),
        "dates": [
            ("Trigger date", when(loaded.trigger_date)),
            ("Notice date", when(loaded.notice_date)),
            ("Effective end date", when(loaded.effective_end_date)),
            ("Data-return deadline", when(loaded.data_return_deadline)),
            ("Case opened", when(loaded.created_at)),
            ("Closed", when(loaded.closed_at) if loaded.closed_at else "Not closed"),
        ],
        "generated_at": when(now),
        "digest": digest,
        "closed_digest": closed_digest,
        "digest_matches_closure": closed_digest is None or closed_digest == digest,
        "contracts": _contracts(loaded),
        "trigger_files": _files_of(loaded.trigger_evidence.all()),
        "playbook": {
            "name": version.playbook.name,
            "version": version.version,
            "sha256": loaded.playbook_sha256,
            "steps": len(steps),
            "done": step_counts.get("done", 0),
            "not_applicable": step_counts.get("not_applicable", 0),
            "open": len(steps) - step_counts.get("done", 0) - step_counts.get("not_applicable", 0),
        },
        "questions": questions,
        "q": {q.number: q for q in questions},
        "timeline": timeline,
        "timeline_total": len(events),
        "timeline_omitted": omitted,
        "timeline_split": TIMELINE_HEAD,
        "addenda": addenda,
        "checkpoint": questions[4].parts["checkpoint"],
        "timestamps": questions[4].parts["timestamps"],
        "event_count": len(events),
        "verification_legend": [
            str(VERIFICATION_WORDS[v]).replace(" — ", " (", 1)
            + (")" if " — " in VERIFICATION_WORDS[v] else "")
            for v in AccessGrant.Verification
        ],
    }


def render_html(case: OffboardingCase, **kwargs: Any) -> str:
    context = certificate_context(case, **kwargs)
    return _engine_instance().get_template(TEMPLATE).render(Context(context))


def render_certificate(
    case: OffboardingCase,
    *,
    checkpoint: Checkpoint | None = None,
    now: dt.datetime | None = None,
    receipt_to: Sequence[str] = (),
) -> bytes:
    """The certificate of `case` as PDF bytes (interim if the case is not closed).
    `receipt_to`: the client's contacts who receive it in the closure receipt."""
    from weasyprint import HTML

    html = render_html(case, checkpoint=checkpoint, now=now, receipt_to=receipt_to)
    document = HTML(string=html, base_url=str(TEMPLATE_DIR))
    pdf: bytes = document.write_pdf(stylesheets=[_stylesheet()])
    return pdf


@functools.cache
def _stylesheet() -> Any:
    """certificate.css, parsed once per process (WeasyPrint's CSS objects are read-only once
    parsed, and may be shared by documents)."""
    from weasyprint import CSS

    return CSS(filename=str(STYLESHEET))
