"""Closure gates: everything that must hold before a case may enter `closing` and close.

`unmet_gates(case)` lists every unmet gate with a stable code, a message naming the objects
and what would resolve it. Readiness gates guard entering `closing`; approval gates are
met while in `closing`; closing needs both (see docs/decisions/0002-closing-and-approvals.md).
"""

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from offboard.cases.models import (
    AccessGrant,
    Approval,
    DataDisposition,
    Deliverable,
    HandoverItem,
    OffboardingCase,
    Settlement,
    Step,
    Waiver,
)
from offboard.cases.state import state_digest
from offboard.core import clock

READINESS, APPROVAL = "readiness", "approval"


@dataclass(frozen=True)
class Gate:
    code: str
    message: str
    resolve: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    kind: str = READINESS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _obj(kind: str, item: Any, label: str) -> dict[str, Any]:
    return {"type": kind, "id": item.pk, "label": label}


def _names(labels: Iterable[str], limit: int = 6) -> str:
    labels = list(labels)
    shown = ", ".join(labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


class _Waivers:
    def __init__(self, waivers: Iterable[Waiver]) -> None:
        self.now = clock.now()
        self.by_target: dict[tuple[str, int], list[Waiver]] = {}
        for w in waivers:
            self.by_target.setdefault((w.target_type, w.target_id), []).append(w)

    def in_force(self, target_type: str, item: Any) -> bool:
        return any(w.is_in_force(self.now) for w in self.by_target.get((target_type, item.pk), []))

    def expired(self, target_type: str, item: Any) -> bool:
        ws = self.by_target.get((target_type, item.pk), [])
        return bool(ws) and not any(w.is_in_force(self.now) for w in ws)


def _gate(
    code: str, items: list[tuple[str, Any, str]], what: str, resolve: str, kind: str = READINESS
) -> Gate:
    labels = [label for _, _, label in items]
    return Gate(
        code=code,
        message=f"{what} ({_names(labels)}).",
        resolve=resolve,
        objects=[_obj(k, item, label) for k, item, label in items],
        kind=kind,
    )


def _waiver_note(waivers: _Waivers, target: str, item: Any) -> str:
    return " — waiver expired" if waivers.expired(target, item) else ""


def readiness_gates(case: OffboardingCase) -> list[Gate]:
    waivers = _Waivers(case.waivers.all())
    gates: list[Gate] = []

    open_steps = [
        ("step", s, f"{s.key}{_waiver_note(waivers, 'step', s)}")
        for s in case.steps.all()
        if s.required
        and s.status not in (Step.Status.DONE, Step.Status.NOT_APPLICABLE)
        and not waivers.in_force("step", s)
    ]
    if open_steps:
        gates.append(
            _gate(
                "steps.incomplete",
                open_steps,
                f"{_plural(len(open_steps), 'required step')} not done",
                "Complete each step, mark it not applicable with a reason, or have a manager waive it.",
            )
        )

    settled_deliverable = {Deliverable.Status.ACCEPTED, Deliverable.Status.DEEMED_ACCEPTED}
    not_accepted = [
        ("deliverable", d, f"{d.title} [{d.status}]{_waiver_note(waivers, 'deliverable', d)}")
        for d in case.deliverables.all()
        if d.status not in settled_deliverable and not waivers.in_force("deliverable", d)
    ]
    if not_accepted:
        gates.append(
            _gate(
                "deliverables.not_accepted",
                not_accepted,
                f"{_plural(len(not_accepted), 'deliverable')} not accepted",
                "Record the client's acceptance (or deemed acceptance after logged reminders), "
                "or waive the deliverable with the written agreement.",
            )
        )

    handed = {HandoverItem.Status.HANDED_OVER, HandoverItem.Status.ACKNOWLEDGED}
    pending_handover = [
        ("handover_item", h, f"{h.name} [{h.status}]{_waiver_note(waivers, 'handover_item', h)}")
        for h in case.handover_items.all()
        if h.status not in handed and not waivers.in_force("handover_item", h)
    ]
    if pending_handover:
        gates.append(
            _gate(
                "handover.incomplete",
                pending_handover,
                f"{_plural(len(pending_handover), 'handover item')} not handed over",
                "Hand each item over and record method and date, resolve disputes, or waive it.",
            )
        )

    not_actioned, unverified, kept = [], [], []
    for g in case.access_grants.all():
        waived = waivers.in_force("access_grant", g)
        note = _waiver_note(waivers, "access_grant", g)
        label = f"{g.system}: {g.principal or g.get_direction_display()}{note}"
        if g.planned_action == AccessGrant.PlannedAction.KEEP:
            if not waived:
                kept.append(("access_grant", g, label))
        elif g.status == AccessGrant.Status.ACTIVE and not waived:
            not_actioned.append(("access_grant", g, f"{label} [{g.planned_action} planned]"))
        elif g.status == AccessGrant.Status.REVOKED and (
            not g.verification_level
            or (g.verification_level == AccessGrant.Verification.WAIVED and not waived)
        ):
            unverified.append(("access_grant", g, label))
    if not_actioned:
        gates.append(
            _gate(
                "access.not_revoked",
                not_actioned,
                f"{_plural(len(not_actioned), 'access grant')} still active",
                "Revoke or transfer each grant (transfer ownership first, revoke our own access "
                "last), or waive it.",
            )
        )
    if unverified:
        gates.append(
            _gate(
                "access.unverified",
                unverified,
                f"{_plural(len(unverified), 'access grant')} revoked but not verified",
                "Verify each revocation (observed, vendor-confirmed or attested with evidence) or "
                "waive the verification.",
            )
        )
    if kept:
        gates.append(
            _gate(
                "access.kept_without_waiver",
                kept,
                f"{_plural(len(kept), 'access grant')} kept without a waiver in force",
                "Access that stays after the exit needs a manager's waiver with a justification "
                "and an expiry.",
            )
        )

    undisposed, held, no_basis = [], [], []
    for d in case.data_dispositions.all():
        label = f"{d.dataset} @ {d.location} [{d.action}]"
        waived = waivers.in_force("data_disposition", d)
        if d.action == DataDisposition.Action.DELETE and d.legal_hold and not waived:
            held.append(("data_disposition", d, label))
        elif d.action == DataDisposition.Action.RETAIN and not d.retention_basis.strip():
            no_basis.append(("data_disposition", d, label))
        elif (
            d.action != DataDisposition.Action.RETAIN
            and d.status != DataDisposition.Status.DONE
            and not waived
        ):
            undisposed.append(
                ("data_disposition", d, label + _waiver_note(waivers, "data_disposition", d))
            )
    if undisposed:
        gates.append(
            _gate(
                "data.not_disposed",
                undisposed,
                f"{_plural(len(undisposed), 'data set')} not yet returned or deleted",
                "Return or delete each data set (including backups and sub-processors) and record "
                "the method and certificate. Never hold this back for payment.",
            )
        )
    if held:
        gates.append(
            _gate(
                "data.legal_hold",
                held,
                f"{_plural(len(held), 'data set')} planned for deletion but under legal hold",
                "A legal hold blocks deletion: change the disposition to retain with the hold as "
                "its basis, or lift the hold.",
            )
        )
    if no_basis:
        gates.append(
            _gate(
                "data.retained_without_basis",
                no_basis,
                f"{_plural(len(no_basis), 'data set')} retained without a stated basis",
                "State the legal basis and the retention period for each retained data set.",
            )
        )

    settlements = list(case.settlements.all())
    settled = {Settlement.Status.PAID, Settlement.Status.WRITTEN_OFF}
    open_settlements = [
        ("settlement", s, f"{s.label()} [{s.status}]{_waiver_note(waivers, 'settlement', s)}")
        for s in settlements
        if s.status not in settled and not waivers.in_force("settlement", s)
    ]
    if open_settlements:
        gates.append(
            _gate(
                "settlement.open",
                open_settlements,
                f"{_plural(len(open_settlements), 'settlement item')} not settled",
                "Record payment, write-off or credit, or waive the item.",
            )
        )
    if not settlements:
        gates.append(
            Gate(
                code="settlement.missing",
                message="No settlement is recorded for this case.",
                resolve="Add the final invoice (or a zero-balance confirmation) to the settlement register.",
            )
        )
    return gates


def _display(user: Any) -> str:
    return str(user.get_full_name() or user.username)


def approval_gates(case: OffboardingCase, digest: str | None = None) -> list[Gate]:
    policy = case.approval_policy or {}
    needed = int(policy.get("min_approvers", 1))
    roles = set(policy.get("roles", ["manager", "admin"]))
    digest = digest or state_digest(case)
    current = [
        a for a in case.approvals.all() if a.invalidated_at is None and a.state_digest == digest
    ]
    rejections = [a for a in current if a.decision == Approval.Decision.REJECTED]
    counting = {
        a.approver_id: a
        for a in current
        if a.decision == Approval.Decision.APPROVED and a.role in roles
    }
    gates: list[Gate] = []
    if rejections:
        gates.append(
            Gate(
                code="approvals.rejected",
                message="Closure was rejected on the current state: "
                + "; ".join(
                    f"{_display(a.approver)}: {a.comment or 'no comment'}" for a in rejections
                )
                + ".",
                resolve="Address the objection; any change returns the case to active for new approvals.",
                objects=[_obj("approval", a, _display(a.approver)) for a in rejections],
                kind=APPROVAL,
            )
        )
    if len(counting) < needed:
        have = ", ".join(_display(a.approver) for a in counting.values()) or "none yet"
        gates.append(
            Gate(
                code="approvals.missing",
                message=f"{_plural(needed, 'distinct approver')} with role {' or '.join(sorted(roles))} "
                f"must approve the current state (digest {digest[:12]}…); approved so far: {have}.",
                resolve="Ask approvers with a qualifying role to review and approve the case.",
                objects=[_obj("approval", a, _display(a.approver)) for a in counting.values()],
                kind=APPROVAL,
            )
        )
    elif counting and set(counting) == {case.owner_id}:
        gates.append(
            Gate(
                code="approvals.owner_only",
                message=f"Only the case owner ({_display(case.owner)}) has approved; the owner never "
                "approves alone.",
                resolve="Ask another approver with a qualifying role to approve.",
                kind=APPROVAL,
            )
        )
    return gates


def unmet_gates(case: OffboardingCase, digest: str | None = None) -> list[Gate]:
    """Every unmet gate. Expects a case loaded with `state.with_everything`; `digest`, its
    state digest when the caller has it already (computing it is most of the cost)."""
    return readiness_gates(case) + approval_gates(case, digest)
