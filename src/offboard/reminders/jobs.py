"""The reminders as jobs: plain functions that find what is due and do it, for the worker's
round (`offboard worker`, cli/worker.py `reminder_round`) or a job engine's schedule.

- `send_assignments()`: every round — the assignment emails queued by case openings, and any
  notice whose last attempt failed;
- `send_daily_digests(now)`, `send_deadline_reminders(now)`: once a day, from
  OFFBOARD_DIGEST_HOUR (UTC);
- `escalate(now)`: every OFFBOARD_ESCALATION_INTERVAL seconds;
- `portal_due(now)`: every hour — the client portal's reminders and deemed acceptance.

Each is idempotent on its own (the sent-log, the portal's logged reminders), so running one
twice sends nothing twice; `run_due(now)` also runs each at most once per period, recorded
in a `PeriodicRun` row, whichever of several workers gets there first.
"""

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from offboard.accounts.models import Membership, Organization
from offboard.cases import risks
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import OffboardError
from offboard.reminders import outbox, queue, selectors
from offboard.reminders.models import ASSIGNMENT, DEADLINE, DIGEST, ESCALATION, PeriodicRun

log = logging.getLogger("offboard.reminders")
PERIOD_LEASE = dt.timedelta(minutes=30)
RETRY_AFTER_ERROR = dt.timedelta(minutes=5)


def _orgs() -> list[Organization]:
    return list(Organization.objects.order_by("pk"))


def _queue_and_send(kind: str, plan: Callable[[Organization], list[Any]]) -> dict[str, int]:
    counts = {"queued": 0}
    for org in _orgs():
        counts["queued"] += queue.queue(org, plan(org))
    return {**counts, **outbox.send_pending(kinds=(kind,))}


def send_assignments() -> dict[str, int]:
    """Send the queued assignment emails (and retry any notice that failed before)."""
    return outbox.send_pending()


def send_daily_digests(now: dt.datetime | None = None) -> dict[str, int]:
    """Each member's digest of their overdue and due-soon steps, once for the day of `now`;
    nothing to whoever has nothing due. Counts: queued, sent, dropped, failed, skipped."""
    today = (now or clock.now()).date()
    return _queue_and_send(DIGEST, lambda org: selectors.build_digests(org, today))


def send_deadline_reminders(now: dt.datetime | None = None) -> dict[str, int]:
    """Reminders to case owners before the notice date, end date and data-return deadline."""
    today = (now or clock.now()).date()
    return _queue_and_send(DEADLINE, lambda org: selectors.deadlines_due(org, today))


def escalate(now: dt.datetime | None = None) -> dict[str, int]:
    """Escalations of overdue steps, waiting approvals, access live after the end date and
    closure receipts not sent; each item once per person (and per level)."""
    at = now or clock.now()
    return _queue_and_send(ESCALATION, lambda org: selectors.escalations_due(org, at))


def alert_access_back(org: Organization) -> dict[str, int]:
    """At once, not at the next escalation round: tell the case owner and the admins of access
    that an after-closure re-check read present again (connectors/recheck.py). The same
    escalation notices as `escalate` (one sent-log key per return, so never twice), sent now."""
    queued = queue.queue(org, selectors.access_back_due(org))
    return {"queued": queued, **outbox.send_pending(kinds=(ESCALATION,))}


# --- the client portal -------------------------------------------------------------------------


def _acting(user: Any, org: Any) -> Actor | None:
    membership = (
        Membership.objects.filter(org=org, user=user, user__is_active=True)
        .select_related("user", "org")
        .first()
    )
    return Actor.from_membership(membership, auth_method="system") if membership else None


def _reminder_window(link: Any, now: dt.datetime, leads: list[int]) -> dt.datetime | None:
    """The start of the reminder window `now` is in (the smallest of
    OFFBOARD_PORTAL_REMINDER_DAYS before `respond_by` that has begun), or None: before the
    first window, after the deadline, or within a day of the link being issued."""
    if now > link.respond_by or now - link.created_at < dt.timedelta(days=1):
        return None
    started = [
        link.respond_by - dt.timedelta(days=lead)
        for lead in leads
        if link.respond_by - dt.timedelta(days=lead) <= now
    ]
    return max(started) if started else None


def portal_due(now: dt.datetime | None = None) -> dict[str, int]:
    """The client portal on a schedule: remind each contact whose link's deadline is near and
    who still has items to answer (once per window of OFFBOARD_PORTAL_REMINDER_DAYS, a manual
    reminder counting), and — with OFFBOARD_PORTAL_AUTO_DEEM — mark deemed accepted the
    delivered deliverables of a contact silent past the deadline after enough logged
    reminders. Both through the portal's own services, in the name of the member who issued
    the link (else the case owner), auth method `system`: the same checks and events as by
    hand."""
    from offboard.cases.models import Deliverable
    from offboard.portal.models import PortalLink, PortalReminder
    from offboard.portal.services import (
        REMINDERS_FOR_DEEMED_ACCEPTANCE,
        mark_deemed_accepted,
        may_manage_links,
        send_reminder,
    )

    at = now or clock.now()
    leads = sorted(set(settings.OFFBOARD_PORTAL_REMINDER_DAYS))
    counts = {"reminders": 0, "deemed": 0, "failed": 0}
    links = (
        PortalLink.objects.filter(
            revoked_at__isnull=True, case__state__in=risks.WORKING_STATES, expires_at__gt=at
        )
        .filter(respond_by__lte=at + dt.timedelta(days=max(leads or [0])))
        .select_related("case", "case__org", "case__client", "contact", "created_by")
        .order_by("pk")
    )
    for link in links:
        case = link.case
        actors = [
            a for a in (_acting(link.created_by, case.org), _acting(case.owner, case.org)) if a
        ]
        try:
            if at <= link.respond_by:
                start = _reminder_window(link, at, leads)
                if start is None:
                    continue
                if PortalReminder.objects.filter(link=link, sent_at__gte=start).exists():
                    continue
                actor = next((a for a in actors if may_manage_links(a, case)), None)
                if actor is None:
                    continue
                try:
                    send_reminder(actor=actor, link=link)
                except OffboardError as exc:
                    if getattr(exc, "code", "") != "nothing_awaited":
                        raise
                    continue
                counts["reminders"] += 1
            elif settings.OFFBOARD_PORTAL_AUTO_DEEM:
                reminded: dict[int, int] = {}
                for items in PortalReminder.objects.filter(
                    case=case, contact=link.contact
                ).values_list("items", flat=True):
                    for item in items:
                        if item.get("register") == "deliverables":
                            reminded[item["id"]] = reminded.get(item["id"], 0) + 1
                ready = [
                    pk
                    for pk in Deliverable.objects.filter(
                        case=case, status=Deliverable.Status.DELIVERED
                    ).values_list("pk", flat=True)
                    if reminded.get(pk, 0) >= REMINDERS_FOR_DEEMED_ACCEPTANCE
                ]
                actor = next((a for a in actors if a.role in ("admin", "manager")), None)
                if not ready or actor is None:
                    continue
                counts["deemed"] += len(
                    mark_deemed_accepted(actor=actor, link=link, deliverable_ids=ready)
                )
        except OffboardError as exc:  # one link's trouble stops no other
            counts["failed"] += 1
            log.warning("portal link %s of %s: %s", link.pk, case.ref, exc)
    return counts


# --- once per period -------------------------------------------------------------------------


def _claim_period(name: str, period: str, now: dt.datetime) -> bool:
    try:
        with transaction.atomic():
            PeriodicRun.objects.get_or_create(name=name)
    except IntegrityError:
        pass  # another worker created it first
    return bool(
        PeriodicRun.objects.filter(name=name)
        .exclude(period=period)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(claimed_until=now + PERIOD_LEASE, started_at=now)
    )


def _finish(name: str, period: str, counts: dict[str, int], error: str = "") -> None:
    now = clock.now()
    if error:  # the period stays due; a failing job is tried again a little later
        PeriodicRun.objects.filter(name=name).update(
            claimed_until=now + RETRY_AFTER_ERROR, last_error=error[:2000]
        )
    else:
        PeriodicRun.objects.filter(name=name).update(
            period=period, finished_at=now, claimed_until=None, counts=counts, last_error=""
        )


def periods(now: dt.datetime) -> dict[str, str | None]:
    """The current period of each job; None while a daily job's hour has not come."""
    daily = now.date().isoformat() if now.hour >= settings.OFFBOARD_DIGEST_HOUR else None
    interval = max(int(settings.OFFBOARD_ESCALATION_INTERVAL), 60)
    return {
        DIGEST: daily,
        DEADLINE: daily,
        ESCALATION: str(int(now.timestamp()) // interval),
        "portal": now.strftime("%Y-%m-%dT%H"),
    }


JOB_FUNCTIONS: dict[str, Callable[[dt.datetime], dict[str, int]]] = {
    DIGEST: send_daily_digests,
    DEADLINE: send_deadline_reminders,
    ESCALATION: escalate,
    "portal": portal_due,
}


def run_due(now: dt.datetime | None = None) -> dict[str, dict[str, int] | str]:
    """Every job whose period has come and that no worker ran for it yet; then the outbox.
    What each did (its counts), or its error."""
    at = now or clock.now()
    done: dict[str, dict[str, int] | str] = {}
    for name, period in periods(at).items():
        if period is None or not _claim_period(name, period, at):
            continue
        try:
            counts = JOB_FUNCTIONS[name](at)
        except Exception as exc:  # one job's trouble stops no other
            log.exception("reminders: job %s", name)
            _finish(name, period, {}, error=f"{type(exc).__name__}: {exc}")
            done[name] = f"error: {exc}"
            continue
        _finish(name, period, counts)
        done[name] = counts
    done[ASSIGNMENT] = send_assignments()
    return done
