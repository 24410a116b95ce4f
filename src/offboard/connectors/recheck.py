"""The re-check after closure (issue 13; docs/connectors.md, "After closure: the re-check").

A grant a connector revoked and read back absent may come back: a user re-activated, added to
a group again, a role restored. So, after its case closed, each such grant's account (its
`LinkedAccount`) is read again through the connection, and the read is appended to the closed
case as an addendum event, `connector.rechecked` — the same read data as `connector.verified`
(connection id, never the secret; connector kind and version; status and detail; hashes,
request id, times; the raw read stored, scrubbed, as an evidence file).

When: `connection.recheck_interval_days` (default 30) after the last read of the account — the
last re-check, else the read that made the grant `observed`. A read that was not `absent` is
due again at the next run: `indeterminate` (the system was down, the read failed) is retried
rather than left for a whole interval, and `present` is read again each run until it reads
absent, which clears the alert. The job runs daily (`jobs/schedule.py`,
`OFFBOARD_RECHECK_TICK`); `offboard connector recheck [--now]` runs it by hand.

Closed is final: the re-check changes neither the case nor the grant (the state digest, the
certificate and the pack's case.json stay those of the closure). `record_recheck` is the one
connector write a closed case accepts, and it accepts only closed cases — an open case is
read with `services.run_verify`, whose read may change the grant. What it keeps of its own
(when it last read, what, since when the access is back) lives on the `LinkedAccount` row.

Access that came back raises an alert at once: an entry in the inbox of the case owner and the
admins (`connectors.selectors.access_back`, web/inbox.py) and an escalation email to them
through the reminders' outbox (`reminders.jobs.alert_access_back`), recorded on the case as
`reminder.escalation_sent`. It stands until a later re-check reads the account absent.

Network I/O happens outside any transaction: each connection's accounts are read first, then
each read is recorded in a short transaction of its own. A disabled connection is skipped and
the run says so (its result, the worker's log, the CLI). Scheduled, each read is recorded in
the name of the member who made the read it repeats (else the case owner, else an admin),
auth method `system`, the event naming the job — as a closure receipt is recorded in the name
of whoever closed the case.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from django.db.models import QuerySet
from django_tasks import task

from offboard.accounts.models import Membership, Organization
from offboard.cases.models import AccessGrant, OffboardingCase
from offboard.cases.services.common import lock_case
from offboard.connectors.base import Account, Connector, ConnectorError, Observation
from offboard.connectors.base import ObservationStatus as Seen
from offboard.connectors.models import Connection, LinkedAccount
from offboard.connectors.services import (
    _account_data,
    _connector_data,
    _evidence,
    _grant_data,
    _verify,
    observation_data,
    open_connector,
)
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, OffboardError
from offboard.core.permissions import can, require
from offboard.evidence.services import atomic_with_files
from offboard.ledger.recorder import record_event

log = logging.getLogger("offboard.worker")

JOB = "connector re-check"
EVENT = "connector.rechecked"
# Not absent: read again at the next run rather than after a whole interval.
AGAIN_NEXT_RUN = (Seen.PRESENT, Seen.INDETERMINATE)


# --- what is due --------------------------------------------------------------------------


def eligible(org: Organization | None = None) -> QuerySet[LinkedAccount]:
    """The accounts to re-check: linked to a grant revoked and observed absent by a connector,
    on a closed case (of `org`, or of every organization)."""
    qs = LinkedAccount.objects.filter(
        grant__case__state=OffboardingCase.State.CLOSED,
        grant__status=AccessGrant.Status.REVOKED,
        grant__verification_level=AccessGrant.Verification.OBSERVED,
    )
    if org is not None:
        qs = qs.filter(org=org)
    return qs.select_related("org", "connection", "grant", "grant__case").order_by(
        "connection_id", "id"
    )


def last_read(link: LinkedAccount) -> dt.datetime:
    """The last read of the account: the last re-check, else the read that made the grant
    observed (its `verified_at`)."""
    return link.rechecked_at or link.grant.verified_at or link.created_at


def due_at(link: LinkedAccount) -> dt.datetime:
    """When the account is next to be read: at once after a read that was not absent, else
    the connection's interval after the last read."""
    if link.recheck_status in AGAIN_NEXT_RUN:
        return last_read(link)
    return last_read(link) + dt.timedelta(days=link.connection.recheck_interval_days)


# --- recording one read ---------------------------------------------------------------------


def _alert(before: dt.datetime | None, status: str) -> str | None:
    if status == Seen.PRESENT:
        return "standing" if before else "raised"
    if status == Seen.ABSENT:
        return "cleared" if before else None
    return "standing" if before else None  # a failed read says nothing new


TITLES = {
    Seen.ABSENT: "still absent",
    Seen.PRESENT: "ACCESS IS BACK — present again after closure",
    Seen.INDETERMINATE: "the read failed; tried again at the next run",
}


@atomic_with_files()
def record_recheck(
    *,
    actor: Actor,
    link: LinkedAccount,
    connector: Connector,
    seen: Observation,
    scheduled: bool,
) -> str | None:
    """Append one `connector.rechecked` event to the link's closed case, the raw read stored
    as an evidence file; keep the read on the link. The case and the grant are not changed.
    Returns the alert's change (`raised`, `standing`, `cleared`, or None), or "superseded"
    (nothing recorded) when another run recorded a read of this account meanwhile."""
    case = lock_case(link.grant.case)
    if case.state != OffboardingCase.State.CLOSED:
        raise Conflict(
            f"Case {case.ref} is {case.state}: the re-check appends to closed cases only; "
            "read an open case's grants with `offboard connector verify`.",
            code="invalid_transition",
        )
    locked = LinkedAccount.objects.select_for_update().get(pk=link.pk)
    if locked.rechecked_at != link.rechecked_at:
        return "superseded"
    connection, grant = link.connection, link.grant
    account = Account.from_dict(link.account)
    ev = _evidence(actor, seen.raw, f"{connector.kind}-recheck-{account.login or grant.pk}.json")
    now = clock.now()
    status = Seen(seen.status)
    alert = _alert(locked.present_since, status)
    if status == Seen.PRESENT:
        present_since = locked.present_since or now
    elif status == Seen.ABSENT:
        present_since = None
    else:
        present_since = locked.present_since
    LinkedAccount.objects.filter(pk=locked.pk).update(
        rechecked_at=now, recheck_status=str(status), present_since=present_since
    )
    interval = connection.recheck_interval_days
    next_due = now + dt.timedelta(days=interval) if status == Seen.ABSENT else None
    record_event(
        actor=actor,
        type=EVENT,
        case=case,
        data={
            "title": f"Re-check after closure: {grant.label()} — {TITLES[status]}",
            **_connector_data(connector, connection),
            "grant": _grant_data(grant),
            "account": _account_data(account),
            "operation": "recheck",
            **observation_data(seen, ev),
            "after_closure": True,
            "closed_at": case.closed_at.isoformat() if case.closed_at else None,
            "previous_read_at": last_read(link).isoformat(),
            "previous_observation": link.recheck_status or str(Seen.ABSENT),
            "interval_days": interval,
            "next_due_at": next_due.isoformat() if next_due else "next run",
            "alert": alert,
            "scheduled": scheduled,
            **({"job": JOB} if scheduled else {}),
        },
        files=[ev] if ev else [],
    )
    link.rechecked_at, link.recheck_status, link.present_since = now, str(status), present_since
    return alert


# --- a run -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    """What a run did: counts, each connection skipped and why, each account read present."""

    read: int = 0
    absent: int = 0
    present: int = 0
    indeterminate: int = 0
    not_due: int = 0
    superseded: int = 0
    errors: int = 0
    skipped: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    back: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    cleared: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    alerts: dict[str, Any] = dataclasses.field(default_factory=dict)

    def skip(self, connection: Connection, links: list[LinkedAccount], reason: str) -> None:
        self.skipped.append(
            {
                "org": connection.org.slug,
                "connection": connection.name,
                "connection_id": str(connection.public_id),
                "accounts": len(links),
                "cases": sorted({link.grant.case.ref for link in links}),
                "reason": reason,
            }
        )
        log.warning(
            "connector re-check: %d account(s) of %s not read: %s",
            len(links),
            connection.name,
            reason,
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _members(org: Organization) -> tuple[dict[int, Membership], list[int]]:
    rows = (
        Membership.objects.filter(org=org, user__is_active=True)
        .select_related("user", "org")
        .order_by("user_id")
    )
    members = {m.user_id: m for m in rows}
    return members, [uid for uid, m in members.items() if m.role == "admin"]


def acting_for(
    link: LinkedAccount, members: dict[int, Membership], admins: list[int]
) -> Actor | None:
    """Whose name a scheduled read is recorded in: the member who made the read it repeats
    (the grant's `verified_by`), else the case owner, else an admin — the first still an
    active member whose role may read a case's access (`cases.work`)."""
    for user_id in (link.grant.verified_by_id, link.grant.case.owner_id, *admins):
        member = members.get(user_id) if user_id is not None else None
        if member is not None:
            actor = Actor.from_membership(member, auth_method="system")
            if can(actor, "cases.work"):
                return actor
    return None


def _read(
    connector: Connector, links: list[LinkedAccount]
) -> list[tuple[LinkedAccount, Observation]]:
    return [(link, _verify(connector, Account.from_dict(link.account))) for link in links]


def recheck(
    *,
    now: dt.datetime | None = None,
    org: Organization | None = None,
    actor: Actor | None = None,
    everything: bool = False,
) -> Summary:
    """Read again every eligible account that is due (`everything`: every one, now), record
    each read on its closed case, and raise the alert for access that came back. Scheduled
    (no `actor`): every organization, each read in the name `acting_for` gives. By hand: the
    actor's organization and name (`cases.work`)."""
    if actor is not None:
        require(actor, "cases.work")
        org = actor.org
    now = now or clock.now()
    summary = Summary()
    by_connection: dict[int, list[LinkedAccount]] = defaultdict(list)
    for link in eligible(org):
        if everything or due_at(link) <= now:
            by_connection[link.connection_id].append(link)
        else:
            summary.not_due += 1
    members: dict[int, tuple[dict[int, Membership], list[int]]] = {}
    alerted: dict[int, Organization] = {}
    for links in by_connection.values():
        connection = links[0].connection
        if connection.state != Connection.State.ACTIVE:
            summary.skip(connection, links, f"the connection '{connection.name}' is disabled")
            continue
        try:
            connector = open_connector(connection)
        except (ConnectorError, OffboardError) as exc:
            summary.skip(connection, links, exc.message)
            continue
        try:
            reads = _read(connector, links)  # the network, outside any transaction
        finally:
            connector.close()
        for link, seen in reads:
            who = actor
            if who is None:
                if link.org_id not in members:
                    members[link.org_id] = _members(link.org)
                who = acting_for(link, *members[link.org_id])
            if who is None:
                summary.skip(
                    connection, [link], "no active member may read a case's access in its name"
                )
                continue
            try:
                alert = record_recheck(
                    actor=who, link=link, connector=connector, seen=seen, scheduled=actor is None
                )
            except OffboardError as exc:  # one account's trouble stops no other
                summary.errors += 1
                log.error("connector re-check of %s: %s", link.grant.case.ref, exc.message)
                continue
            if alert == "superseded":
                summary.superseded += 1
                continue
            summary.read += 1
            status = str(seen.status)
            setattr(summary, status, getattr(summary, status) + 1)
            where = {
                "case": link.grant.case.ref,
                "grant": link.grant.pk,
                "label": link.grant.label(),
                "connection": connection.name,
                "detail": seen.detail,
            }
            if seen.status == Seen.PRESENT:
                summary.back.append(where)
                alerted[link.org_id] = link.org
                log.warning(
                    "connector re-check: access back on closed case %s: %s (%s)",
                    where["case"],
                    where["label"],
                    seen.detail,
                )
            elif alert == "cleared":
                summary.cleared.append(where)
    for found in alerted.values():
        summary.alerts[found.slug] = _alert_now(found)
    log.info(
        "connector re-check: %d read (%d absent, %d present, %d indeterminate), %d not due, "
        "%d skipped",
        summary.read,
        summary.absent,
        summary.present,
        summary.indeterminate,
        summary.not_due,
        sum(s["accounts"] for s in summary.skipped),
    )
    return summary


def _alert_now(org: Organization) -> dict[str, Any]:
    """The escalation emails, now; a mail server that is down leaves them queued (the outbox
    retries them, and the escalation round lists the alert again until it is cleared)."""
    from offboard.reminders.jobs import alert_access_back

    try:
        return dict(alert_access_back(org))
    except Exception as exc:  # the reads are recorded; the emails are the outbox's to retry
        log.exception("connector re-check: the alert emails of %s", org.slug)
        return {"error": f"{type(exc).__name__}: {exc}"}


@task()
def recheck_connectors() -> dict[str, Any]:
    """The daily job (`jobs/schedule.py`): every re-check that is due, in every organization."""
    return recheck().as_dict()
