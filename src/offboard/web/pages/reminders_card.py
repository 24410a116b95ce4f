"""The Settings card "Reminders by email": which reminder emails the signed-in member
receives, each on or off, with what each is and when it comes (docs/reminders.md)."""

from typing import Any

from django.conf import settings as conf
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.reminders import selectors as reminders
from offboard.reminders.services import update_preferences
from offboard.web.pages.common import actor_of, staff_page


def _channels() -> list[tuple[str, str, str]]:
    leads = " and ".join(str(d) for d in conf.OFFBOARD_DEADLINE_REMINDER_DAYS) or "no"
    return [
        (
            "assignment",
            "When steps are assigned to me",
            "One email per case, when it is opened (or a draft started) with steps for you.",
        ),
        (
            "digest",
            "Daily digest of my steps",
            f"Each morning at {conf.OFFBOARD_DIGEST_HOUR:02d}:00 UTC, one email with your overdue "
            "steps and those due within 7 days; none on a day with nothing due.",
        ),
        (
            "deadline",
            "Before my cases' deadlines",
            f"{leads} days before the notice date, end date and data-return deadline of each "
            "case you own.",
        ),
        (
            "escalation",
            "Escalations",
            f"Steps overdue by {conf.OFFBOARD_ESCALATE_STEP_DAYS} days on your cases (by "
            f"{conf.OFFBOARD_ESCALATE_STEP_MANAGERS_DAYS} days to managers), closures waiting "
            f"{conf.OFFBOARD_ESCALATE_APPROVAL_DAYS} days for your approval, access live after "
            "the end date and closure receipts not sent (to owners and admins).",
        ),
    ]


def reminders_card(membership: Membership, *, saved: bool = False) -> dict[str, Any]:
    pref = reminders.preference(membership.org, membership.user)
    return {
        "channels": [
            {"name": name, "title": title, "help": help, "on": pref.receives(name)}
            for name, title, help in _channels()
        ],
        "email": membership.user.email,
        "saved": saved,
    }


@require_POST
@staff_page
def save_preferences(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Each box ticked is on, each left unticked off (a member's own choice only)."""
    update_preferences(
        actor=actor_of(request, membership),
        membership=membership,
        values={name: name in request.POST for name, _, _ in _channels()},
    )
    return redirect(reverse("web:settings") + "?reminders=saved#reminders")
