"""What every case action shares: locking, the closed-is-final rule, and "a change reopens"."""

from typing import Any

from offboard.accounts.models import Membership
from offboard.cases.models import OffboardingCase
from offboard.core import clock
from offboard.core.errors import CaseClosed, Conflict, ValidationFailed


def lock_case(case: OffboardingCase) -> OffboardingCase:
    """Re-read the case under a row lock so concurrent actions on it serialize.

    Only the case's row (`of=self`), and FOR NO KEY UPDATE: a transaction that holds the log
    head checks its foreign keys at commit (KEY SHARE), which FOR UPDATE of the case, or of the
    joined owner and client rows, would block while this one waits for the head — a deadlock
    the fleet test found."""
    return (
        OffboardingCase.objects.select_for_update(of=("self",), no_key=True)
        .select_related("owner", "client")
        .get(pk=case.pk)
    )


def ensure_open(case: OffboardingCase) -> None:
    if case.state == OffboardingCase.State.CLOSED:
        raise CaseClosed(
            f"Case {case.ref} is closed and cannot be changed; append an addendum instead.",
            details={"case": case.ref, "state": case.state},
        )
    if case.state == OffboardingCase.State.CANCELLED:
        raise CaseClosed(
            f"Case {case.ref} was cancelled and cannot be changed; append an addendum instead.",
            details={"case": case.ref, "state": case.state},
        )


def ensure_started(case: OffboardingCase) -> None:
    if case.state == OffboardingCase.State.DRAFT:
        raise Conflict(f"Case {case.ref} is a draft; activate it before working on it.")


def record_change(case: OffboardingCase) -> dict[str, Any]:
    """A change to a case in `closing` returns it to `active` and invalidates its approvals.

    Returns what happened, for the action's event data.
    """
    now = clock.now()
    effects: dict[str, Any] = {}
    if case.state == OffboardingCase.State.CLOSING:
        invalidated = case.approvals.filter(invalidated_at__isnull=True).update(invalidated_at=now)
        case.state = OffboardingCase.State.ACTIVE
        case.closing_at = None
        effects = {"returned_to_active": True, "approvals_invalidated": invalidated}
    case.updated_at = now
    case.save(update_fields=["state", "closing_at", "updated_at"])
    return effects


def member_user(org: Any, user_id: Any, field: str) -> Any:
    """A user of this organization who can own work (`Membership.can_own_work`), or a field
    error saying why not."""
    membership = Membership.objects.select_related("user").filter(org=org, user_id=user_id).first()
    if membership is None:
        raise ValidationFailed({field: [f"user {user_id} is not a member of this organization"]})
    if membership.role == "auditor":
        raise ValidationFailed(
            {field: [f"{membership.user.username} is an auditor and cannot own work"]}
        )
    if not membership.user.is_active:
        raise ValidationFailed(
            {field: [f"{membership.user.username} is deactivated and cannot own work"]}
        )
    return membership.user
