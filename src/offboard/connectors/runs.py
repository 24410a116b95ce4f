"""Revoke and verify runs in the background (docs/connectors.md, decision 0025).

`request_run` is the action — one transaction, one `connector.run_requested` event on the case,
and the job enqueued in the same transaction, so a committed request cannot lose its job. The
`ConnectorRun` row is the outbox: the job carries only its id, and `execute` may run any number
of times, in any number of workers at once:

1. `claim` — a short transaction that locks the connection row, so claims for the same
   connection serialize: a run starts only when no other run of that connection holds a live
   lease (one connector call at a time per target system). A run that finds another running
   is put back on the queue a few seconds later. The claim sets a lease; a worker killed
   mid-run leaves it `running` until the lease runs out, and the sweep starts it again.
2. the run itself — `services.run_revoke` / `run_verify` with the run's idempotency key, so a
   second attempt does nothing the first already did (each operation reads first), and only
   a verify read can make a grant revoked. Each grant's result is written to the row as it is
   recorded (live progress for the workspace and the API).
3. `done` or `failed`, with the error in words; what was recorded per grant stays recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from offboard.accounts.models import Membership
from offboard.cases.models import AccessGrant, OffboardingCase
from offboard.cases.services.common import lock_case
from offboard.connectors.base import ConnectorError
from offboard.connectors.models import Connection, ConnectorRun
from offboard.connectors.services import (
    GrantRun,
    grants_for,
    outcome_summary,
    run_revoke,
    run_verify,
)
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import (
    Conflict,
    NotFound,
    OffboardError,
    PermissionDenied,
    ValidationFailed,
)
from offboard.core.permissions import require
from offboard.jobs.engine import enqueue
from offboard.ledger.recorder import record_event

log = logging.getLogger("offboard.worker")

TASK = "offboard.connectors.tasks.run_connector"
LEASE = dt.timedelta(minutes=15)  # a run longer than this renews its lease as it goes
BUSY_RETRY = dt.timedelta(seconds=5)  # another run of the same connection holds it
LOST_AFTER = dt.timedelta(minutes=2)  # a queued run whose job never came


def run_data(run: ConnectorRun) -> dict[str, Any]:
    return {
        "run_id": str(run.public_id),
        "action": run.action,
        "connection_id": str(run.connection.public_id),
        "connection": run.connection.name,
        "connector": run.connection.kind,
        "grants": run.grant_ids,
        "idempotency_key": run.idempotency_key,
        "plan_sha256": run.plan_sha256,
    }


@transaction.atomic
def request_run(
    *,
    actor: Actor,
    case: OffboardingCase,
    connection: Connection,
    grants: Sequence[AccessGrant],
    action: str = ConnectorRun.Action.REVOKE,
    plan_sha256: str = "",
) -> ConnectorRun:
    """Ask for a revoke (or verify) of `grants` with `connection`, run by a worker. Refuses at
    once what the run would refuse (role, closed case, grants not on the case or not to be
    revoked, a disabled connection, a run of these grants already waiting)."""
    if action not in ConnectorRun.Action.values:
        raise ValidationFailed({"action": [f"one of {', '.join(ConnectorRun.Action.values)}"]})
    case = lock_case(case)
    found = grants_for(actor, case, grants, connection)
    live = Connection.objects.for_org(actor.org).filter(pk=connection.pk).first()
    if live is None:
        raise ValidationFailed({"connection": ["no such connection in this organization"]})
    if live.state != Connection.State.ACTIVE:
        raise ValidationFailed({"connection": [f"the connection '{live.name}' is disabled"]})
    if plan_sha256 and (
        len(plan_sha256) != 64 or not all(c in "0123456789abcdef" for c in plan_sha256)
    ):
        raise ValidationFailed({"plan_sha256": ["the SHA-256 of the plan shown, 64 hex digits"]})
    ids = [g.pk for g in found]
    waiting = ConnectorRun.objects.filter(
        org=actor.org,
        case=case,
        connection=live,
        state__in=[
            ConnectorRun.State.AWAITING_APPROVAL,
            ConnectorRun.State.QUEUED,
            ConnectorRun.State.RUNNING,
        ],
    )
    for other in waiting:
        shared = sorted(set(other.grant_ids) & set(ids))
        if shared:
            raise ValidationFailed(
                {
                    "grants": [
                        f"a {other.action} run with {live.name} for grant(s) "
                        f"{', '.join(map(str, shared))} is {other.state}; wait for it to finish"
                    ]
                }
            )
    membership = Membership.objects.get(org=actor.org, user=actor.user)
    run = ConnectorRun.objects.create(
        org=actor.org,
        case=case,
        connection=live,
        action=action,
        grant_ids=ids,
        plan_sha256=plan_sha256,
        idempotency_key=str(uuid.uuid4()),
        requested_by=membership,
        auth_method=actor.auth_method,
        total=len(ids),
        created_at=clock.now(),
        state=ConnectorRun.State.AWAITING_APPROVAL
        if live.requires_approval
        else ConnectorRun.State.QUEUED,
    )
    record_event(
        actor=actor,
        type="connector.run_requested",
        case=case,
        data={
            **run_data(run),
            "grant_labels": [g.label() for g in found],
            "awaiting_approval": live.requires_approval,
        },
    )
    if not live.requires_approval:
        enqueue(TASK, run.pk)
    return run


def _decide(actor: Actor, run: ConnectorRun) -> tuple[ConnectorRun, Membership]:
    require(actor, "connectors.approve")
    locked = (
        # Only the run's row: locking the joined case and connection FOR UPDATE would stop
        # every insert that refers to them (an event, a step) until this commits.
        ConnectorRun.objects.select_for_update(of=("self",), no_key=True)
        .select_related("connection", "case")
        .filter(org=actor.org, pk=run.pk)
        .first()
    )
    if locked is None:
        raise NotFound("No such connector run in this organization.")
    if locked.state != ConnectorRun.State.AWAITING_APPROVAL:
        raise Conflict(f"This run is {locked.state}; only a run awaiting approval can be decided.")
    membership = Membership.objects.get(org=actor.org, user=actor.user)
    if membership.pk == locked.requested_by_id:
        raise PermissionDenied(
            "You asked for this run; another manager or an admin must approve or decline it.",
            details={"capability": "connectors.approve"},
        )
    lock_case(locked.case)
    return locked, membership


@transaction.atomic
def approve_run(*, actor: Actor, run: ConnectorRun) -> ConnectorRun:
    """A manager (not the requester) lets a run held by its connection's policy go ahead:
    one event, and its job enqueued in the same transaction."""
    run, membership = _decide(actor, run)
    run.state = ConnectorRun.State.QUEUED
    run.decided_by, run.decided_at = membership, clock.now()
    run.save(update_fields=["state", "decided_by", "decided_at"])
    record_event(actor=actor, type="connector.run_approved", case=run.case, data=run_data(run))
    enqueue(TASK, run.pk)
    return run


@transaction.atomic
def decline_run(*, actor: Actor, run: ConnectorRun, reason: str) -> ConnectorRun:
    """A manager (not the requester) refuses a held run, saying why; nothing is changed in
    the connected system."""
    run, membership = _decide(actor, run)
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed({"reason": ["say why the run is declined"]})
    if len(reason) > 1000:
        raise ValidationFailed({"reason": ["at most 1,000 characters"]})
    now = clock.now()
    run.state = ConnectorRun.State.FAILED
    run.decided_by, run.decided_at, run.finished_at = membership, now, now
    run.error = f"Declined by {actor.display_name}: {reason}"
    run.save(update_fields=["state", "decided_by", "decided_at", "finished_at", "error"])
    record_event(
        actor=actor,
        type="connector.run_declined",
        case=run.case,
        data={**run_data(run), "reason": reason},
    )
    return run


def claim(run_id: int) -> ConnectorRun | None:
    """Take the run for this worker, or None: finished, another worker's, or its connection
    busy (then it is queued again shortly)."""
    now = clock.now()
    with transaction.atomic():
        run = ConnectorRun.objects.select_related("connection").filter(pk=run_id).first()
        if run is None or run.finished:
            return None
        # Lock the connection: claims for one target serialize here.
        Connection.objects.select_for_update().filter(pk=run.connection_id).first()
        run = (
            ConnectorRun.objects.select_for_update(of=("self",), no_key=True)
            .select_related("connection")
            .get(pk=run_id)
        )
        if run.finished or run.state == ConnectorRun.State.AWAITING_APPROVAL:
            return None
        if run.state == ConnectorRun.State.RUNNING and run.lease_until and run.lease_until > now:
            return None  # another worker has it
        busy = (
            ConnectorRun.objects.filter(
                connection_id=run.connection_id,
                state=ConnectorRun.State.RUNNING,
                lease_until__gt=now,
            )
            .exclude(pk=run.pk)
            .exists()
        )
        if busy:
            enqueue(TASK, run.pk, run_after=now + BUSY_RETRY)
            return None
        run.state = ConnectorRun.State.RUNNING
        run.attempts += 1
        run.lease_until = now + LEASE
        run.started_at = run.started_at or now
        run.done = 0
        run.results = []
        run.save(
            update_fields=["state", "attempts", "lease_until", "started_at", "done", "results"]
        )
    return run


def grant_result(run: GrantRun) -> dict[str, Any]:
    seen = run.observation
    return {
        "grant": run.grant.pk,
        "label": run.grant.label(),
        "account": run.account.login or run.account.external_id if run.account else None,
        "outcome": outcome_summary(run.outcomes, run.problem)
        if run.outcomes or run.problem
        else None,
        "observation": str(seen.status) if seen is not None else None,
        "detail": (seen.detail if seen is not None else "") or run.problem,
        "operations": [
            {"action": o.operation.action, "status": str(o.status), "detail": o.detail}
            for o in run.outcomes
        ],
    }


def _actor(run: ConnectorRun) -> Actor:
    membership = Membership.objects.select_related("user", "org").get(pk=run.requested_by_id)
    if not membership.user.is_active:
        raise ValidationFailed(
            {"requested_by": [f"{membership.user.username} is no longer an active member"]}
        )
    return Actor.from_membership(membership, auth_method=run.auth_method)


def _finish(run: ConnectorRun, state: str, error: str = "") -> None:
    ConnectorRun.objects.filter(pk=run.pk).update(
        state=state, error=error[:2000], finished_at=clock.now(), lease_until=None
    )


def execute(run_id: int) -> ConnectorRun | None:
    """Claim the run and carry it out; None when there was nothing for this worker to do."""
    run = claim(run_id)
    if run is None:
        return None
    results: list[dict[str, Any]] = []

    def on_grant(grant_run: GrantRun) -> None:
        results.append(grant_result(grant_run))
        ConnectorRun.objects.filter(pk=run.pk).update(
            results=list(results), done=len(results), lease_until=clock.now() + LEASE
        )

    try:
        actor = _actor(run)
        grants = list(AccessGrant.objects.filter(org=run.org_id, pk__in=run.grant_ids))
        go = run_revoke if run.action == ConnectorRun.Action.REVOKE else run_verify
        kwargs: dict[str, Any] = {"idempotency_key": run.idempotency_key}
        if run.action != ConnectorRun.Action.REVOKE:
            kwargs = {}
        go(
            actor=actor,
            case=run.case,
            grants=grants,
            connection=run.connection,
            on_grant=on_grant,
            **kwargs,
        )
    except (OffboardError, ConnectorError) as exc:
        message = exc.message if isinstance(exc, ConnectorError) else _words(exc)
        _finish(run, ConnectorRun.State.FAILED, message)
        log.error("connector run %s failed: %s", run.public_id, message)
    except Exception as exc:  # a bug: the run says so, the worker logs it
        _finish(run, ConnectorRun.State.FAILED, f"internal error ({type(exc).__name__})")
        log.exception("connector run %s: internal error", run.public_id)
    else:
        _finish(run, ConnectorRun.State.DONE)
    run.refresh_from_db()
    return run


def _words(exc: OffboardError) -> str:
    return exc.message


def redrive(now: dt.datetime | None = None) -> int:
    """The sweep: runs whose job was lost (queued a while) or whose worker died (lease out)."""
    now = now or clock.now()
    lost = ConnectorRun.objects.filter(
        state=ConnectorRun.State.QUEUED, created_at__lt=now - LOST_AFTER
    ) | ConnectorRun.objects.filter(state=ConnectorRun.State.RUNNING, lease_until__lt=now)
    ids = list(lost.values_list("pk", flat=True)[:200])
    for pk in ids:
        enqueue(TASK, pk)
    return len(ids)


def case_runs(case: OffboardingCase, limit: int = 5) -> list[ConnectorRun]:
    return list(
        ConnectorRun.objects.filter(org=case.org_id, case=case)
        .select_related("connection", "requested_by__user")
        .order_by("-id")[:limit]
    )
