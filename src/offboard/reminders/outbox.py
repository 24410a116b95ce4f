"""The reminders' outbox: send every queued notice once, and record it on its cases.

One round on a notice, with no transaction open while rendering or talking to the mail server
(the closure receipt's pattern, notifications/receipts.py):

1. claim it in a short conditional UPDATE: attempts + 1 and a lease (`claimed_until`), so one
   worker holds it even when several run at once, and a crashed worker's claim runs out;
2. check it is still wanted: the member is active and still receives this kind of email and
   has an address, and its items still stand (a step done since is left out); if nothing
   is left, drop it (no email, no event);
3. send it; on success, in one transaction, mark it sent and record ONE event on each case it
   names (`reminder.<kind>_sent`: to whom, which items, the Message-ID); on failure keep the
   error and retry with backoff (30 s doubling, at most 1 h).

Delivery is at least once: a crash after the mail server accepted the message but before
step 3 commits sends it again when the lease runs out, with the same Message-ID.
"""

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F, Q

from offboard.accounts.models import Membership
from offboard.cases.models import OffboardingCase
from offboard.core import clock
from offboard.core.actor import SystemActor
from offboard.ledger import timestamps
from offboard.ledger.recorder import record_event
from offboard.notifications.receipts import backend_label, describe
from offboard.reminders import emails
from offboard.reminders.models import Notice, Preference
from offboard.reminders.selectors import still_standing

log = logging.getLogger("offboard.reminders")
LEASE = dt.timedelta(minutes=10)
JOBS = {
    "assignment": "assignment emails",
    "digest": "daily digests",
    "deadline": "deadline reminders",
    "escalation": "escalations",
}


def _claim(notice_id: int, now: dt.datetime) -> Notice | None:
    """Take one due notice for this caller alone; None if it is not due or another has it."""
    claimed = (
        Notice.objects.filter(pk=notice_id, state=Notice.QUEUED, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(attempts=F("attempts") + 1, claimed_until=now + LEASE)
    )
    if not claimed:
        return None
    notice = Notice.objects.select_related("org", "user").get(pk=notice_id)
    if not notice.message_id:  # fixed at the first attempt, reused by every retry
        notice.message_id = emails.new_message_id(notice.kind)
        Notice.objects.filter(pk=notice.pk).update(message_id=notice.message_id)
    return notice


def _why_not(notice: Notice) -> str:
    """Why the member should not get it, or "" when they should."""
    user = notice.user
    if not user.is_active or not Membership.objects.filter(org=notice.org, user=user).exists():
        return "the member was deactivated or left the organization"
    pref = Preference.objects.filter(org=notice.org, user=user).first()
    if pref is not None and not pref.receives(notice.kind):
        return f"the member turned off {emails.CHANNEL_WORDS[notice.kind]}"
    if not user.email:
        return "the member has no email address"
    return ""


def _drop(notice: Notice, reason: str) -> None:
    Notice.objects.filter(pk=notice.pk, state=Notice.QUEUED).update(
        state=Notice.DROPPED, dropped_reason=reason[:200], claimed_until=None, next_attempt_at=None
    )


def _failed(notice: Notice, error: str) -> None:
    Notice.objects.filter(pk=notice.pk, state=Notice.QUEUED).update(
        last_error=error[:2000],
        next_attempt_at=clock.now() + timestamps.backoff(notice.attempts),
        claimed_until=None,
    )


def _event_title(kind: str, name: str, items: list[dict[str, Any]]) -> str:
    n = len(items)
    things = f"{n} item{'s' if n != 1 else ''}"
    return {
        "assignment": f"Told {name} of {n} step{'s' if n != 1 else ''} assigned to them",
        "digest": f"Daily digest to {name}: {n} step{'s' if n != 1 else ''} on this case",
        "deadline": f"Deadline reminder to {name}: " + ", ".join(i["title"] for i in items),
        "escalation": f"Escalation to {name}: {things}",
    }[kind]


def _record(notice: Notice, items: list[dict[str, Any]], message: Any, via: str) -> list[int]:
    """Mark it sent and record one event per case it names; in the caller's transaction."""
    user = notice.user
    name = user.get_full_name() or user.username
    by_case: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_case[int(item["case_id"])].append(item)
    cases = OffboardingCase.objects.in_bulk(list(by_case))
    actor = SystemActor(org=notice.org, job=JOBS[notice.kind])
    indices = []
    for case_id in sorted(by_case):
        shown = [
            {k: v for k, v in i.items() if k in ("key", "type", "id", "title", "date", "reason")}
            for i in by_case[case_id]
        ]
        entry = record_event(
            actor=actor,
            type=f"reminder.{notice.kind}_sent",
            case=cases[case_id],
            data={
                "title": _event_title(notice.kind, name, shown),
                "recipients": [f"{name} <{user.email}>"],
                "to": {"user_id": user.pk, "username": user.username, "email": user.email},
                "kind": notice.kind,
                "items": shown,
                # A digest covering several cases records one event on each, all naming the
                # same message.
                "cases_in_message": len(by_case),
                "notice_id": notice.pk,
                "message_id": notice.message_id,
                "subject": str(message.subject),
                "via": via,
            },
        )
        indices.append(entry.index)
    Notice.objects.filter(pk=notice.pk).update(
        state=Notice.SENT,
        sent_at=clock.now(),
        last_error="",
        claimed_until=None,
        next_attempt_at=None,
        event_indices=indices,
        payload={**notice.payload, "items": items},
    )
    return indices


def _work(notice: Notice, connection: Any, today: dt.date) -> str:
    """One claimed notice: "sent", "dropped" or "failed: <why>"."""
    if reason := _why_not(notice):
        _drop(notice, reason)
        return "dropped"
    items = still_standing(notice.org, notice.user_id, notice.kind, notice.payload.get("items", []))
    if not items:
        _drop(notice, "everything it listed was settled before it went out")
        return "dropped"
    owner_email = ""
    if notice.kind != "digest":  # replies about one case reach its owner
        case = OffboardingCase.objects.select_related("owner").get(pk=items[0]["case_id"])
        if case.owner_id != notice.user_id:
            owner_email = case.owner.email
    message = emails.build_message(
        kind=notice.kind,
        items=items,
        today=today,
        org=notice.org,
        user=notice.user,
        message_id=notice.message_id,
        reply_to=owner_email,
    )
    message.connection = connection
    try:
        sent = message.send(fail_silently=False)
    except Exception as exc:  # the mail server's replies are outside input: keep any failure
        failure = describe(exc, connection)
        _failed(notice, str(failure))
        return f"failed{' unreachable' if failure.unreachable else ''}: {failure}"
    if sent != 1:
        _failed(notice, "the mail backend sent nothing")
        return "failed: the mail backend sent nothing"
    with transaction.atomic():
        locked = Notice.objects.select_for_update().get(pk=notice.pk)
        if locked.state != Notice.QUEUED:
            return "sent"  # another worker, whose lease this one outlived, recorded it
        _record(notice, items, message, backend_label(connection))
    return "sent"


def send_pending(
    *, kinds: tuple[str, ...] | None = None, limit: int = 2000, connection: Any = None
) -> dict[str, int]:
    """Send every due notice (of `kinds`, or all); counts `sent`, `dropped`, `failed`,
    `skipped` (left for the next round once the mail server proved unreachable in this one)."""
    counts = {"sent": 0, "dropped": 0, "failed": 0, "skipped": 0}
    now = clock.now()
    qs = Notice.objects.filter(state=Notice.QUEUED, next_attempt_at__lte=now).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    )
    if kinds:
        qs = qs.filter(kind__in=kinds)
    due = list(qs.order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])
    if not due:
        return counts
    connection = connection or get_connection(fail_silently=False)
    unreachable = False
    try:
        connection.open()  # one SMTP session for the round, not one per message
    except Exception as exc:
        log.warning("reminders: %s", describe(exc, connection))
    try:
        for pk in due:
            if unreachable:
                counts["skipped"] += 1  # one timeout per round, not one per notice
                continue
            notice = _claim(pk, now)
            if notice is None:
                continue
            outcome = _work(notice, connection, now.date())
            if outcome.startswith("failed"):
                counts["failed"] += 1
                unreachable = outcome.startswith("failed unreachable")
                log.warning("reminder notice %s: %s", pk, outcome)
            else:
                counts[outcome] += 1
    finally:
        try:
            connection.close()
        except Exception:  # a server that went away while we were sending
            log.debug("closing the SMTP connection", exc_info=True)
    return counts
