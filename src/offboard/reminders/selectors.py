"""Read queries of the reminders: what each member receives, and what is due — the daily
digests, the deadline reminders and the escalations — as `Planned` messages.

Each list reuses the selectors the dashboard's inbox is built from (`cases.risks`,
`notifications.selectors`), so that an email and the inbox never disagree about what is late.
`build_digests` reads everyone's digest in a fixed number of queries, whatever the number of
people and steps (tests/reminders/test_queries.py; `make bench` times it).
"""

import datetime as dt
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db.models import Q

from offboard.accounts.models import Membership
from offboard.cases import risks
from offboard.cases.models import AccessGrant, OffboardingCase, Step
from offboard.connectors.models import LinkedAccount
from offboard.connectors.selectors import access_back
from offboard.core.permissions import CAPABILITIES
from offboard.notifications.models import ClosureReceipt
from offboard.notifications.selectors import failed_receipts
from offboard.reminders.items import STEP_FIELDS, Planned, step_item
from offboard.reminders.models import (
    CHANNELS,
    DEADLINE,
    DIGEST,
    ESCALATION,
    Preference,
)

DEADLINES = (
    ("notice_date", "Notice date"),
    ("effective_end_date", "Effective end date"),
    ("data_return_deadline", "Data-return deadline"),
)
OPEN_STEP = (Step.Status.PENDING, Step.Status.IN_PROGRESS)


# --- preferences ---------------------------------------------------------------------------


def preference(org: Any, user: Any) -> Preference:
    """The member's preferences; everything on (unsaved) when they never changed them."""
    found = Preference.objects.filter(org=org, user=user).first()
    return found or Preference(org=org, user=user)


def receiving(org: Any, channel: str, user_ids: set[int]) -> set[int]:
    """Of `user_ids`, the active members of `org` who receive `channel`: one query."""
    assert channel in CHANNELS
    off = Preference.objects.filter(org=org, **{channel: False}).values("user_id")
    return set(
        Membership.objects.filter(org=org, user_id__in=user_ids, user__is_active=True)
        .exclude(user_id__in=off)
        .values_list("user_id", flat=True)
    )


# --- the daily digest ------------------------------------------------------------------------


def build_digests(org: Any, today: dt.date) -> list[Planned]:
    """Each member's digest of their open steps, overdue or due within the inbox's horizon
    (`cases.risks.steps_due`), for `today`; nobody with nothing due, nobody who turned the
    digest off or was deactivated. Three queries, whatever the number of people and steps."""
    by_owner: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        risks.steps_due(org, today=today)
        .order_by("due_date", "case__ref", "position")
        .values(*STEP_FIELDS)
    )
    for row in rows:
        by_owner[row["owner_id"]].append(row)
    if not by_owner:
        return []
    wanted = receiving(org, DIGEST, set(by_owner))
    return [
        Planned(
            user_id=owner_id,
            kind=DIGEST,
            keys=[("digest", today)],
            payload={
                "day": today.isoformat(),
                "items": [step_item(r, f"step:{r['pk']}") for r in steps],
            },
        )
        for owner_id, steps in by_owner.items()
        if owner_id in wanted
    ]


# --- deadlines of a case, to its owner ---------------------------------------------------------


def _lead_due(deadline: dt.date, today: dt.date, leads: list[int]) -> int | None:
    """Which reminder before `deadline` is due today: the smallest lead whose day has come
    (so a case opened late gets one reminder, not every one it missed); None after it."""
    if today > deadline:
        return None
    left = (deadline - today).days
    fitting = [lead for lead in leads if lead >= left]
    return min(fitting) if fitting else None


def deadlines_due(org: Any, today: dt.date) -> list[Planned]:
    """Reminders before the notice date, effective end date and data-return deadline of each
    open case, to its owner, at each of OFFBOARD_DEADLINE_REMINDER_DAYS before it. One
    message per case a day, naming every deadline due."""
    leads = sorted(set(settings.OFFBOARD_DEADLINE_REMINDER_DAYS))
    if not leads:
        return []
    horizon = today + dt.timedelta(days=max(leads))
    near = Q()
    for name, _ in DEADLINES:
        near |= Q(**{f"{name}__gte": today, f"{name}__lte": horizon})
    cases = (
        OffboardingCase.objects.filter(org=org, state__in=risks.OPEN_STATES)
        .filter(near)
        .select_related("client")
        .order_by("ref")
    )
    plans: list[Planned] = []
    for case in cases:
        keys, items = [], []
        for name, title in DEADLINES:
            date = getattr(case, name)
            lead = _lead_due(date, today, leads)
            if lead is None:
                continue
            key = f"case:{case.pk}:{name}:{lead}"
            keys.append((key, date))
            items.append(
                {
                    "key": key,
                    "type": "deadline",
                    "id": case.pk,
                    "case_id": case.pk,
                    "ref": case.ref,
                    "client": case.client.name,
                    "title": title,
                    "field": name,
                    "date": date.isoformat(),
                    "anchor": "",
                }
            )
        if keys:
            plans.append(Planned(case.owner_id, DEADLINE, keys, {"items": items}))
    wanted = receiving(org, DEADLINE, {p.user_id for p in plans})
    return [p for p in plans if p.user_id in wanted]


# --- escalations ---------------------------------------------------------------------------


def _members(org: Any, roles: set[str]) -> list[int]:
    return list(
        Membership.objects.filter(org=org, role__in=roles, user__is_active=True)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def escalations_due(org: Any, now: dt.datetime) -> list[Planned]:
    """What is late enough to tell someone above, one message per member:

    - a step overdue by its playbook step's `escalate.owner_after_days` (default
      OFFBOARD_ESCALATE_STEP_DAYS), to the case owner; by `escalate.managers_after_days`
      (default OFFBOARD_ESCALATE_STEP_MANAGERS_DAYS), to the managers too (the admins when
      there are none);
    - a case in `closing` for OFFBOARD_ESCALATE_APPROVAL_DAYS, to each member whose approval
      it waits for (`cases.risks.approvals_waiting`);
    - access still live after the end date (`cases.risks.grants_after_end`), a closure
      receipt that failed to send (`notifications.selectors.failed_receipts`) and access that
      came back after closure (`connectors.selectors.access_back`), to the case owner and the
      admins, at once.
    """
    today = now.date()
    items_for: dict[int, list[dict[str, Any]]] = defaultdict(list)
    keys_for: dict[int, list[tuple[str, dt.date]]] = defaultdict(list)

    def add(user_id: int, item: dict[str, Any], day: dt.date, reason: str) -> None:
        if any(i["key"] == item["key"] for i in items_for[user_id]):
            return
        items_for[user_id].append({**item, "reason": reason})
        keys_for[user_id].append((item["key"], day))

    default_owner_days = settings.OFFBOARD_ESCALATE_STEP_DAYS
    default_manager_days = settings.OFFBOARD_ESCALATE_STEP_MANAGERS_DAYS
    admins = _members(org, {"admin"})
    managers = _members(org, {"manager"}) or admins
    overdue = (
        risks.steps_due(org, today=today)
        .filter(due_date__lt=today)  # each step's own threshold is applied below
        .order_by("due_date", "case__ref", "position")
        .values(
            *STEP_FIELDS,
            "case__owner_id",
            "owner__username",
            "escalate_owner_days",
            "escalate_managers_days",
        )
    )
    for row in overdue:
        late = (today - row["due_date"]).days
        owner_days = row["escalate_owner_days"]
        if owner_days is None:
            owner_days = default_owner_days
        manager_days = row["escalate_managers_days"]
        if manager_days is None:
            manager_days = default_manager_days
        manager_days = max(manager_days, owner_days)
        if late < owner_days:
            continue
        base = step_item(row, "")
        base["step_owner"] = row["owner__username"]
        owner = row["case__owner_id"]
        add(owner, {**base, "key": f"step:{row['pk']}:owner"}, row["due_date"], "step_overdue")
        if late >= manager_days:
            for user_id in managers:
                if user_id != owner:
                    key = f"step:{row['pk']}:managers"
                    add(user_id, {**base, "key": key}, row["due_date"], "step_overdue_managers")

    waited = now - dt.timedelta(days=settings.OFFBOARD_ESCALATE_APPROVAL_DAYS)
    approvers = Membership.objects.filter(
        org=org, role__in=CAPABILITIES["cases.approve"], user__is_active=True
    ).select_related("user")
    if OffboardingCase.objects.filter(org=org, state="closing", closing_at__lte=waited).exists():
        for member in approvers:
            for case in risks.approvals_waiting(org, member.user, member.role):
                if case.closing_at is None or case.closing_at > waited:
                    continue
                item = {
                    "key": f"approval:{case.pk}",
                    "type": "approval",
                    "id": case.pk,
                    "case_id": case.pk,
                    "ref": case.ref,
                    "client": case.client.name,
                    "title": f"Approve the closure of {case.ref}",
                    "date": case.closing_at.date().isoformat(),
                    "anchor": "approvals",
                }
                add(member.user_id, item, case.closing_at.date(), "approval_waiting")

    by_case: dict[int, list[AccessGrant]] = defaultdict(list)
    for grant in risks.grants_after_end(org, today=today).select_related("case__owner"):
        by_case[grant.case_id].append(grant)
    for grants in by_case.values():
        case = grants[0].case
        for grant in grants:
            item = {
                "key": f"access:{grant.pk}",
                "type": "grant",
                "id": grant.pk,
                "case_id": case.pk,
                "ref": case.ref,
                "client": case.client.name,
                "title": grant.label(),
                "date": case.effective_end_date.isoformat(),
                "anchor": f"access_grants-{grant.pk}",
            }
            for user_id in dict.fromkeys([case.owner_id, *admins]):
                add(user_id, item, case.effective_end_date, "access_after_end")

    for receipt in failed_receipts(org, None):
        case = receipt.case
        item = {
            "key": f"receipt:{receipt.pk}",
            "type": "receipt",
            "id": receipt.pk,
            "case_id": case.pk,
            "ref": case.ref,
            "client": case.client.name,
            "title": f"Closure receipt to {', '.join(receipt.emails) or 'nobody'}",
            "detail": (receipt.last_error or "")[:300],
            "date": receipt.created_at.date().isoformat(),
            "anchor": "receipt",
        }
        for user_id in dict.fromkeys([case.owner_id, *admins]):
            add(user_id, item, receipt.created_at.date(), "receipt_failed")

    for user_ids, item, day in access_back_items(org, admins):
        for user_id in user_ids:
            add(user_id, item, day, "access_back")

    wanted = receiving(org, ESCALATION, set(items_for))
    return [
        Planned(user_id, ESCALATION, keys_for[user_id], {"items": items_for[user_id]})
        for user_id in items_for
        if user_id in wanted
    ]


def access_back_items(
    org: Any, admins: list[int] | None = None
) -> list[tuple[list[int], dict[str, Any], dt.date]]:
    """Access read present again after its case closed: (to whom — the case owner and the
    admins —, the item, its day). The day is that of the first present read of this return,
    so each return is told once, and a later one again."""
    admins = _members(org, {"admin"}) if admins is None else admins
    found = []
    for link in access_back(org):
        grant, case = link.grant, link.grant.case
        assert link.present_since is not None
        since = link.present_since
        item = {
            "key": f"access_back:{link.pk}",
            "type": "access_back",
            "id": link.pk,
            "case_id": case.pk,
            "ref": case.ref,
            "client": case.client.name,
            "title": grant.label(),
            "detail": f"read present in {link.connection.name} on "
            f"{since:%-d %b %Y %H:%M} UTC, after the case closed",
            "date": since.date().isoformat(),
            "anchor": f"access_grants-{grant.pk}",
        }
        found.append((list(dict.fromkeys([case.owner_id, *admins])), item, since.date()))
    return found


def access_back_due(org: Any) -> list[Planned]:
    """The escalations of access that came back after closure alone, for the re-check to
    send at once (`reminders.jobs.alert_access_back`); `escalations_due` lists them too."""
    items_for: dict[int, list[dict[str, Any]]] = defaultdict(list)
    keys_for: dict[int, list[tuple[str, dt.date]]] = defaultdict(list)
    for user_ids, item, day in access_back_items(org):
        for user_id in user_ids:
            items_for[user_id].append({**item, "reason": "access_back"})
            keys_for[user_id].append((item["key"], day))
    wanted = receiving(org, ESCALATION, set(items_for))
    return [
        Planned(user_id, ESCALATION, keys_for[user_id], {"items": items_for[user_id]})
        for user_id in items_for
        if user_id in wanted
    ]


# --- just before sending: what still stands --------------------------------------------------


def still_standing(org: Any, user_id: int, kind: str, items: list[dict[str, Any]]) -> list[Any]:
    """Of a queued message's items, those still true now (a step done since, access revoked
    since, a receipt sent since, access read absent again since is left out). One query per
    type of item."""
    ids: dict[str, set[int]] = defaultdict(set)
    for item in items:
        ids[item["type"]].add(int(item["id"]))
    live: dict[str, set[int]] = {}
    if ids["step"]:
        steps = Step.objects.filter(
            org=org,
            pk__in=ids["step"],
            status__in=OPEN_STEP,
            case__state__in=risks.OPEN_STATES if kind == "assignment" else risks.WORKING_STATES,
        )
        live["step"] = set(steps.values_list("pk", flat=True))
    if ids["grant"]:
        live["grant"] = set(
            AccessGrant.objects.filter(
                org=org, pk__in=ids["grant"], status=AccessGrant.Status.ACTIVE
            ).values_list("pk", flat=True)
        )
    if ids["receipt"]:
        live["receipt"] = set(
            ClosureReceipt.objects.filter(
                org=org, pk__in=ids["receipt"], state=ClosureReceipt.State.FAILED
            ).values_list("pk", flat=True)
        )
    if ids["access_back"]:
        live["access_back"] = set(
            LinkedAccount.objects.filter(
                org=org, pk__in=ids["access_back"], present_since__isnull=False
            ).values_list("pk", flat=True)
        )
    if ids["approval"]:
        live["approval"] = set(
            OffboardingCase.objects.filter(
                org=org, pk__in=ids["approval"], state=OffboardingCase.State.CLOSING
            ).values_list("pk", flat=True)
        )
    if ids["deadline"]:
        live["deadline"] = set(
            OffboardingCase.objects.filter(
                org=org, pk__in=ids["deadline"], state__in=risks.OPEN_STATES
            ).values_list("pk", flat=True)
        )
    return [i for i in items if int(i["id"]) in live.get(i["type"], set())]
