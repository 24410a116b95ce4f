"""Read queries for the dashboard: what waits for one person (approvals, disputes, steps,
access still live on their cases), and the risk list across open cases.

Every list is one query (approvals: two), whatever the number of cases. The risk rules:

- **Access still active after the end date**: a grant we plan to revoke or transfer is still
  `active` while its case's effective end date has passed.
- **Deliverable past due**: a deliverable still `pending` or `rejected` after its due date.
- **Data-return deadline near**: a data set to return or delete is still `planned` and the
  case's data-return deadline is within `DATA_RETURN_WARNING_DAYS` (or passed).
- **Case stalled**: an `active` or `closing` case that nobody has changed for
  `STALLED_AFTER_DAYS`. Every action on a case updates its `updated_at`, so a case unchanged
  that long is still blocked on the same unmet gates (open steps, or approvals in `closing`).

Items covered by a waiver in force are not risks. Each list is capped at `LIMIT` rows.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from offboard.cases.models import (
    AccessGrant,
    Approval,
    DataDisposition,
    Deliverable,
    HandoverItem,
    OffboardingCase,
    Step,
    Waiver,
)
from offboard.core import clock
from offboard.core.permissions import CAPABILITIES

OPEN_STATES = (
    OffboardingCase.State.DRAFT,
    OffboardingCase.State.ACTIVE,
    OffboardingCase.State.CLOSING,
)
WORKING_STATES = (OffboardingCase.State.ACTIVE, OffboardingCase.State.CLOSING)
DATA_RETURN_WARNING_DAYS = 7
STALLED_AFTER_DAYS = 7
MY_STEPS_HORIZON_DAYS = 7
LIMIT = 50


@dataclass(frozen=True)
class Risk:
    kind: str  # access_after_end | deliverable_overdue | data_return_due | case_stalled
    case_ref: str
    client: str
    what: str
    detail: str
    date: dt.date | None
    anchor: str  # the element on the case page where it is fixed
    severity: str = "high"  # high | medium


def _waived(target_type: str, now: dt.datetime) -> Exists:
    return Exists(
        Waiver.objects.filter(
            case=OuterRef("case"),
            target_type=target_type,
            target_id=OuterRef("pk"),
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
    )


def steps_due(org: Any, *, today: dt.date | None = None) -> QuerySet[Step]:
    """Open steps in working cases, overdue or due within the horizon, whoever owns them (the
    daily digests read them for everyone at once: offboard.reminders)."""
    today = today or clock.now().date()
    return Step.objects.filter(
        org=org,
        case__state__in=WORKING_STATES,
        status__in=(Step.Status.PENDING, Step.Status.IN_PROGRESS),
        due_date__lte=today + dt.timedelta(days=MY_STEPS_HORIZON_DAYS),
    )


def my_steps(org: Any, user: Any, *, today: dt.date | None = None) -> QuerySet[Step]:
    """Open steps the user owns in working cases, overdue or due within the horizon."""
    return (
        steps_due(org, today=today)
        .filter(owner=user)
        .select_related("case", "case__client")
        .order_by("due_date", "case__ref", "position")[:LIMIT]
    )


def _grants_after_end(org: Any, today: dt.date, now: dt.datetime) -> QuerySet[AccessGrant]:
    """Grants we plan to revoke or transfer, still active after their open case's end date and
    not under a waiver in force."""
    return (
        AccessGrant.objects.filter(
            org=org,
            case__state__in=OPEN_STATES,
            case__effective_end_date__lt=today,
            status=AccessGrant.Status.ACTIVE,
            planned_action__in=(
                AccessGrant.PlannedAction.REVOKE,
                AccessGrant.PlannedAction.TRANSFER,
            ),
        )
        .exclude(_waived(Waiver.Target.ACCESS_GRANT, now))
        .select_related("case", "case__client")
        .order_by("case__effective_end_date", "case__ref", "id")
    )


def grants_after_end(org: Any, *, today: dt.date | None = None) -> QuerySet[AccessGrant]:
    """Access still live after the end date, on every case of the organization (the
    escalations to owners and admins: offboard.reminders)."""
    now = clock.now()
    return _grants_after_end(org, today or now.date(), now)


def my_live_grants(org: Any, user: Any, *, today: dt.date | None = None) -> list[AccessGrant]:
    """Access still live after the end date on a grant the user owns or on a case they own."""
    now = clock.now()
    today = today or now.date()
    mine = Q(owner=user) | Q(case__owner=user)
    return list(_grants_after_end(org, today, now).filter(mine)[:LIMIT])


def approvals_waiting(org: Any, user: Any, role: str) -> list[OffboardingCase]:
    """Cases in `closing` that still need an approval the user may give and has not given on
    the current state: their role approves, under the case's policy too, and the approvals in
    are not yet enough. A rejected state waits for changes, not for more approvals. Two queries.

    In `closing` every change returns the case to `active` and invalidates the approvals, so
    the approvals not invalidated are those on the current state."""
    if role not in CAPABILITIES["cases.approve"]:
        return []
    current = Approval.objects.filter(invalidated_at__isnull=True)
    closing = (
        OffboardingCase.objects.filter(org=org, state=OffboardingCase.State.CLOSING)
        .select_related("client")
        .prefetch_related(Prefetch("approvals", queryset=current, to_attr="current_approvals"))
        .order_by("closing_at", "id")
    )
    waiting: list[OffboardingCase] = []
    for case in closing:
        policy = case.approval_policy or {}
        roles = set(policy.get("roles", ["manager", "admin"]))
        approvals = case.current_approvals
        if role not in roles or any(a.approver_id == user.pk for a in approvals):
            continue
        if any(a.decision == Approval.Decision.REJECTED for a in approvals):
            continue
        approvers = {
            a.approver_id
            for a in approvals
            if a.decision == Approval.Decision.APPROVED and a.role in roles
        }
        enough = len(approvers) >= int(policy.get("min_approvers", 1))
        if enough and approvers != {case.owner_id}:
            continue
        waiting.append(case)
        if len(waiting) == LIMIT:
            break
    return waiting


def my_disputes(org: Any, user: Any) -> list[Deliverable | HandoverItem]:
    """Deliverables rejected and handover items disputed — the client's objections, standing
    until resolved — on open cases the user owns or on items they own. Two queries."""
    mine = Q(owner=user) | Q(case__owner=user)
    disputed: list[Deliverable | HandoverItem] = []
    for model, status in (
        (Deliverable, Deliverable.Status.REJECTED),
        (HandoverItem, HandoverItem.Status.DISPUTED),
    ):
        disputed += (
            model.objects.filter(org=org, case__state__in=OPEN_STATES, status=status)
            .filter(mine)
            .select_related("case", "case__client")
            .order_by("case__ref", "id")[:LIMIT]
        )
    return disputed


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def risks(org: Any, *, today: dt.date | None = None) -> list[Risk]:
    """The risk list, most urgent kinds first; four queries."""
    now = clock.now()
    today = today or now.date()
    found: list[Risk] = []

    for g in _grants_after_end(org, today, now)[:LIMIT]:
        late = (today - g.case.effective_end_date).days
        found.append(
            Risk(
                kind="access_after_end",
                case_ref=g.case.ref,
                client=g.case.client.name,
                what=g.label(),
                detail=f"{g.get_direction_display()}; planned to {g.planned_action}; "
                f"the case ended {_days(late)} ago",
                date=g.case.effective_end_date,
                anchor=f"access_grants-{g.pk}",
            )
        )

    deliverables = (
        Deliverable.objects.filter(
            org=org,
            case__state__in=OPEN_STATES,
            due_date__lt=today,
            status__in=(Deliverable.Status.PENDING, Deliverable.Status.REJECTED),
        )
        .exclude(_waived(Waiver.Target.DELIVERABLE, now))
        .select_related("case", "case__client")
        .order_by("due_date", "case__ref", "id")[:LIMIT]
    )
    for d in deliverables:
        assert d.due_date is not None
        late = (today - d.due_date).days
        found.append(
            Risk(
                kind="deliverable_overdue",
                case_ref=d.case.ref,
                client=d.case.client.name,
                what=d.title,
                detail=f"{d.status}; due {_days(late)} ago",
                date=d.due_date,
                anchor=f"deliverables-{d.pk}",
            )
        )

    horizon = today + dt.timedelta(days=DATA_RETURN_WARNING_DAYS)
    data_sets = (
        DataDisposition.objects.filter(
            org=org,
            case__state__in=OPEN_STATES,
            case__data_return_deadline__lte=horizon,
            status=DataDisposition.Status.PLANNED,
            action__in=(DataDisposition.Action.RETURN, DataDisposition.Action.DELETE),
        )
        .exclude(_waived(Waiver.Target.DATA_DISPOSITION, now))
        .select_related("case", "case__client")
        .order_by("case__data_return_deadline", "case__ref", "id")[:LIMIT]
    )
    for ds in data_sets:
        left = (ds.case.data_return_deadline - today).days
        when = (
            f"{_days(-left)} overdue"
            if left < 0
            else "due today"
            if left == 0
            else f"in {_days(left)}"
        )
        found.append(
            Risk(
                kind="data_return_due",
                case_ref=ds.case.ref,
                client=ds.case.client.name,
                what=f"{ds.label()} ({ds.action})",
                detail=f"data-return deadline {when}",
                date=ds.case.data_return_deadline,
                anchor=f"data_dispositions-{ds.pk}",
                severity="high" if left <= 2 else "medium",
            )
        )

    stalled = (
        OffboardingCase.objects.filter(
            org=org,
            state__in=WORKING_STATES,
            updated_at__lt=now - dt.timedelta(days=STALLED_AFTER_DAYS),
        )
        .annotate(
            open_steps=Count(
                "steps",
                filter=Q(
                    steps__required=True,
                    steps__status__in=(Step.Status.PENDING, Step.Status.IN_PROGRESS),
                ),
            )
        )
        .select_related("client")
        .order_by("updated_at", "id")[:LIMIT]
    )
    for c in stalled:
        idle = (now - c.updated_at).days
        if c.state == OffboardingCase.State.CLOSING:
            blocked_on = "waiting for closure approvals"
        elif c.open_steps:
            blocked_on = f"{c.open_steps} required step{'s' if c.open_steps != 1 else ''} open"
        else:
            blocked_on = "steps settled; see the closure panel"
        found.append(
            Risk(
                kind="case_stalled",
                case_ref=c.ref,
                client=c.client.name,
                what=f"No progress for {_days(idle)}",
                detail=f"{c.state}; {blocked_on}",
                date=c.updated_at.date(),
                anchor="closure",
                severity="medium",
            )
        )
    return found
