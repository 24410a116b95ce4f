"""The dashboard's inbox: what waits for one person, each entry linking to the place on the
case workspace where it is dealt with.

Eight lists, read in a fixed number of queries whatever the number of cases (each list's
rules are in the selectors it calls):

- access back after closure: access a connector revoked on a closed case that its re-check
  read present again, on my cases — every case for an admin (`connectors.selectors.access_back`);
- approvals waiting for me: closing cases my role may approve that still need approvals and
  have none from me on their current state (`cases.risks.approvals_waiting`);
- disputed by the client: deliverables rejected and handover items disputed, standing, on my
  cases or items (`cases.risks.my_disputes`), with the client's latest comment;
- new answers from the client: acknowledgements on my cases since I last acted on the case
  (`portal.selectors.new_answers`);
- my overdue steps, and my steps due soon (`cases.risks.my_steps`);
- closure receipts that failed to send, on cases I own or closed
  (`notifications.selectors.failed_receipts`);
- access still live after the end date, on my grants or cases (`cases.risks.my_live_grants`).

"You're clear" means every list is empty, never only some.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from offboard import labels
from offboard.accounts.models import Membership
from offboard.cases import risks
from offboard.connectors.selectors import access_back
from offboard.core import clock
from offboard.notifications.selectors import failed_receipts
from offboard.portal.selectors import latest_disputes, new_answers
from offboard.web.workspace_page import case_url, item_anchor


@dataclass(frozen=True)
class Entry:
    what: str
    case_ref: str
    client: str
    detail: str
    anchor: str  # the element on the case workspace where it is dealt with
    tone: str = "high"  # high | medium: how it is marked

    @property
    def href(self) -> str:
        return case_url(self.case_ref, self.anchor)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    entries: list[Entry]


@dataclass(frozen=True)
class Inbox:
    sections: list[Section]

    @property
    def total(self) -> int:
        return sum(len(s.entries) for s in self.sections)

    @property
    def clear(self) -> bool:
        return self.total == 0

    @property
    def waiting(self) -> list[Section]:
        """The sections with something in them, in the order they are listed."""
        return [s for s in self.sections if s.entries]

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _approvals(membership: Membership) -> list[Entry]:
    entries = []
    for case in risks.approvals_waiting(membership.org, membership.user, membership.role):
        approvers = {
            a.approver_id
            for a in case.current_approvals  # type: ignore[attr-defined]
            if a.decision == "approved"
        }
        needed = int((case.approval_policy or {}).get("min_approvers", 1))
        since = f" since {case.closing_at:%-d %b %Y}" if case.closing_at else ""
        entries.append(
            Entry(
                what=f"Approve the closure of {case.ref}",
                case_ref=case.ref,
                client=case.client.name,
                detail=f"closing{since}; {len(approvers)} of {needed} approvals in",
                anchor="approvals",
            )
        )
    return entries


def _disputes(membership: Membership) -> list[Entry]:
    items = risks.my_disputes(membership.org, membership.user)
    said = latest_disputes(membership.org, {item.case_id for item in items})
    entries = []
    for item in items:
        register = type(item).register
        noun = "deliverable rejected" if register == "deliverables" else "handover disputed"
        response = said.get((register, item.pk))
        detail = noun
        if response is not None:
            detail = f"{noun} by {response.contact.name} on {response.at:%-d %b %Y}"
            if response.comment:
                detail += f": “{_clip(response.comment)}”"
        entries.append(
            Entry(
                what=labels.item_label(item),
                case_ref=item.case.ref,
                client=item.case.client.name,
                detail=detail,
                anchor=item_anchor(register, item.pk),
            )
        )
    return entries


def _answers(membership: Membership) -> list[Entry]:
    entries = []
    for response in new_answers(membership.org, membership.user):
        labels = [str(i.get("label", "")) for i in response.items]
        shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
        n = len(labels)
        entries.append(
            Entry(
                what=f"{response.contact.name} acknowledged {n} item{'s' if n != 1 else ''}",
                case_ref=response.case.ref,
                client=response.case.client.name,
                detail=f"{response.at:%-d %b %Y %H:%M}: {shown}",
                anchor="portal",
                tone="medium",
            )
        )
    return entries


def _steps(membership: Membership, today: dt.date) -> tuple[list[Entry], list[Entry]]:
    overdue, soon = [], []
    for step in risks.my_steps(membership.org, membership.user, today=today):
        where = {
            "what": step.title,
            "case_ref": step.case.ref,
            "client": step.case.client.name,
            "anchor": item_anchor("step", step.pk),
        }
        due, left = step.due_date, (step.due_date - today).days
        if left < 0:
            overdue.append(Entry(detail=f"due {due:%-d %b}, {_days(-left)} ago", **where))
        else:
            when = "due today" if left == 0 else f"due {due:%-d %b}, in {_days(left)}"
            soon.append(Entry(detail=when, tone="medium", **where))
    return overdue, soon


def _receipts(membership: Membership) -> list[Entry]:
    entries = []
    for receipt in failed_receipts(membership.org, membership.user):
        when = receipt.next_attempt_at
        retry = f"; next attempt {when:%-d %b %H:%M} UTC" if when else ""
        entries.append(
            Entry(
                what=f"Closure receipt to {', '.join(receipt.emails) or 'nobody'} not sent",
                case_ref=receipt.case.ref,
                client=receipt.case.client.name,
                detail=f"{_clip(receipt.last_error or 'the mail server refused it')} "
                f"(attempt {receipt.attempts}){retry}",
                anchor="receipt",
            )
        )
    return entries


def _grants(membership: Membership, today: dt.date) -> list[Entry]:
    return [
        Entry(
            what=labels.item_label(grant),
            case_ref=grant.case.ref,
            client=grant.case.client.name,
            detail=f"planned to {grant.planned_action}; the case ended "
            f"{_days((today - grant.case.effective_end_date).days)} ago",
            anchor=item_anchor("access_grants", grant.pk),
        )
        for grant in risks.my_live_grants(membership.org, membership.user, today=today)
    ]


def _access_back(membership: Membership) -> list[Entry]:
    owner = None if membership.role == "admin" else membership.user
    entries = []
    for link in access_back(membership.org, owner):
        grant, since = link.grant, link.present_since
        assert since is not None
        entries.append(
            Entry(
                what=labels.item_label(grant),
                case_ref=grant.case.ref,
                client=grant.case.client.name,
                detail=f"revoked, but read present again in {link.connection.name} since "
                f"{since:%-d %b %Y %H:%M} UTC; the case is closed",
                anchor=item_anchor("access_grants", grant.pk),
            )
        )
    return entries


def build_inbox(membership: Membership, *, today: dt.date | None = None) -> Inbox:
    """Everything waiting for this member, in their organization only."""
    today = today or clock.now().date()
    overdue, soon = _steps(membership, today)
    sections: list[tuple[str, str, Any]] = [
        ("access_back", "Access back after closure", _access_back(membership)),
        ("approvals", "Approvals waiting for you", _approvals(membership)),
        ("disputes", "Disputed by the client", _disputes(membership)),
        ("answers", "New answers from the client", _answers(membership)),
        ("overdue", "Your overdue steps", overdue),
        ("due_soon", f"Your steps due in the next {risks.MY_STEPS_HORIZON_DAYS} days", soon),
        ("receipts", "Closure receipts not sent", _receipts(membership)),
        ("access", "Access still live after the end date", _grants(membership, today)),
    ]
    return Inbox([Section(key, title, entries) for key, title, entries in sections])
