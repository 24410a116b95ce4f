"""/api/v1/connections and a case's connector runs (docs/connectors.md).

Admins manage connections (the secret is write-only: never in an answer); members who work
cases check them, discover accounts, see a plan and request runs. A run is `202 Accepted` and
carried out by a worker: poll `GET /cases/{ref}/connector-runs/{id}` for its progress."""

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema

from offboard.cases import selectors as cases
from offboard.cases.models import AccessGrant
from offboard.connectors import runs, selectors, services
from offboard.connectors.base import ConnectorError, CredentialsRefused, Match
from offboard.connectors.models import Connection, ConnectorRun
from offboard.core.api import actor_of
from offboard.core.errors import NotFound, UpstreamFailed
from offboard.core.permissions import require
from offboard.core.schemas import Input, error_responses, paginated
from offboard.core.scopes import scope

router = Router(tags=["connectors"])


class ConnectionOut(Schema):
    id: str = Field(description="The connection's id (a UUID); events name it, never the secret.")
    name: str
    kind: str = Field(description="scim, ldap, postgres, aws_iam, …")
    config: dict[str, Any] = Field(description="The kind's settings; never a secret.")
    recheck_interval_days: int
    requires_approval: bool = Field(description="Each run waits for a manager's approval.")
    state: Literal["active", "disabled"]
    created_at: dt.datetime
    updated_at: dt.datetime


class ConnectionIn(Input):
    name: str = Field(min_length=1, max_length=100)
    kind: str = Field(min_length=1, max_length=40)
    config: dict[str, Any] = Field(description="The kind's settings (docs/connectors.md).")
    secret: str = Field(
        min_length=1, max_length=10_000, description="Token or password; sealed, never returned."
    )
    recheck_interval_days: int = Field(30, ge=1, le=3650)
    requires_approval: bool = False


class ConnectionPatch(Input):
    name: str | None = Field(None, min_length=1, max_length=100)
    config: dict[str, Any] | None = None
    secret: str | None = Field(None, min_length=1, max_length=10_000)
    recheck_interval_days: int | None = Field(None, ge=1, le=3650)
    requires_approval: bool | None = None


class CheckOut(Schema):
    ok: bool
    detail: str
    target: str


class MatchIn(Input):
    email_domains: list[str] = Field([], max_length=50)
    groups: list[str] = Field([], max_length=50)
    role_prefixes: list[str] = Field([], max_length=50)
    ids: list[str] = Field([], max_length=500)


class AccountOut(Schema):
    external_id: str
    login: str
    display_name: str
    kind: str
    details: dict[str, Any]


class GrantsIn(Input):
    connection: str = Field(description="The connection's id or name.")
    grants: list[int] = Field(min_length=1, max_length=1000, description="Access grant ids.")


class OperationOut(Schema):
    order: int
    action: str
    target_id: str
    account_id: str
    description: str


class PlanOut(Schema):
    plan_sha256: str = Field(description="Send it back with the run to record what was shown.")
    operations: list[OperationOut]
    unresolved: dict[str, str] = Field(description="Grant id → why no account matches it.")


class RunIn(GrantsIn):
    action: Literal["revoke", "verify"] = "revoke"
    plan_sha256: str = Field("", max_length=64)


class RunOut(Schema):
    id: str
    case: str
    connection: str
    action: Literal["revoke", "verify"]
    state: Literal["awaiting_approval", "queued", "running", "done", "failed"]
    grants: list[int]
    total: int
    done: int
    attempts: int
    results: list[dict[str, Any]] = Field(
        description="Per grant once recorded: outcome, observation (absent|present|"
        "indeterminate), detail, operations."
    )
    error: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


def connection_out(c: Connection) -> dict[str, Any]:
    return {
        "id": str(c.public_id),
        "name": c.name,
        "kind": c.kind,
        "config": c.config,
        "recheck_interval_days": c.recheck_interval_days,
        "requires_approval": c.requires_approval,
        "state": c.state,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def run_out(r: ConnectorRun) -> dict[str, Any]:
    return {
        "id": str(r.public_id),
        "case": r.case.ref,
        "connection": str(r.connection.public_id),
        "action": r.action,
        "state": r.state,
        "grants": r.grant_ids,
        "total": r.total,
        "done": r.done,
        "attempts": r.attempts,
        "results": r.results,
        "error": r.error,
        "created_at": r.created_at,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
    }


def _connection(org: Any, ref: str) -> Connection:
    found = selectors.connection_named(org, ref)
    if found is None:
        raise NotFound(f"No connection {ref!r} in this organization.")
    return found


def _upstream(connection: Connection, exc: ConnectorError) -> UpstreamFailed:
    what = "refused the credentials" if isinstance(exc, CredentialsRefused) else "failed"
    return UpstreamFailed(
        f"{connection.name} {what}: {exc.message}",
        details={"connection": str(connection.public_id), "retryable": exc.retryable},
    )


@router.get(
    "/connections",
    response={200: list[ConnectionOut], **error_responses(403)},
    summary="The organization's connections",
)
@paginated
def list_connections(request: HttpRequest) -> Any:
    actor = actor_of(request)
    require(actor, "cases.work")
    return [connection_out(c) for c in selectors.connections(actor.org)]


@router.post(
    "/connections",
    response={201: ConnectionOut, **error_responses(403, 422)},
    summary="Add a connection (admins); the secret is sealed and never returned",
)
@scope("admin")
def create_connection(request: HttpRequest, payload: ConnectionIn) -> Any:
    made = services.create_connection(
        actor=actor_of(request),
        name=payload.name,
        kind=payload.kind,
        config=payload.config,
        secret=payload.secret,
        recheck_interval_days=payload.recheck_interval_days,
        requires_approval=payload.requires_approval,
    )
    return 201, connection_out(made)


@router.patch(
    "/connections/{ref}",
    response={200: ConnectionOut, **error_responses(403, 404, 422)},
    summary="Change a connection (admins); a new secret replaces the old",
)
@scope("admin")
def update_connection(request: HttpRequest, ref: str, payload: ConnectionPatch) -> Any:
    actor = actor_of(request)
    changed = services.update_connection(
        actor=actor,
        connection=_connection(actor.org, ref),
        name=payload.name,
        config=payload.config,
        secret=payload.secret,
        recheck_interval_days=payload.recheck_interval_days,
        requires_approval=payload.requires_approval,
    )
    return connection_out(changed)


@router.post(
    "/connections/{ref}/disable",
    response={200: ConnectionOut, **error_responses(403, 404)},
    summary="Disable a connection (admins)",
)
@scope("admin")
def disable_connection(request: HttpRequest, ref: str) -> Any:
    actor = actor_of(request)
    return connection_out(
        services.disable_connection(actor=actor, connection=_connection(actor.org, ref))
    )


@router.post(
    "/connections/{ref}/check",
    response={200: CheckOut, **error_responses(403, 404, 422, 502)},
    summary="Check a connection's credentials and reachability (changes nothing)",
)
@scope("admin")
def check_connection(request: HttpRequest, ref: str) -> Any:
    actor = actor_of(request)
    connection = _connection(actor.org, ref)
    try:
        result = services.check_connection(actor=actor, connection=connection)
    except ConnectorError as exc:
        raise _upstream(connection, exc) from None
    return {"ok": True, "detail": result.detail, "target": result.target}


@router.post(
    "/connections/{ref}/discover",
    response={200: list[AccountOut], **error_responses(403, 404, 422, 502)},
    summary="Accounts in the connection's system matching domains, groups, prefixes or ids",
)
@scope("admin")
def discover(request: HttpRequest, ref: str, payload: MatchIn) -> Any:
    actor = actor_of(request)
    connection = _connection(actor.org, ref)
    match = Match(
        email_domains=tuple(payload.email_domains),
        groups=tuple(payload.groups),
        role_prefixes=tuple(payload.role_prefixes),
        ids=tuple(payload.ids),
    )
    if match.is_empty():
        from offboard.core.errors import invalid

        raise invalid("email_domains", "give at least one domain, group, prefix or id")
    try:
        found = services.discover_accounts(actor=actor, connection=connection, match=match)
    except ConnectorError as exc:
        raise _upstream(connection, exc) from None
    return [
        {
            "external_id": a.external_id,
            "login": a.login,
            "display_name": a.display_name,
            "kind": str(a.kind),
            "details": dict(a.details),
        }
        for a in found
    ]


def _grants(case: Any, ids: list[int]) -> list[AccessGrant]:
    found = {g.pk: g for g in AccessGrant.objects.filter(org=case.org_id, case=case, pk__in=ids)}
    # Unknown ids are left to the service, which names each one.
    return [found.get(pk) or AccessGrant(pk=pk) for pk in ids]


@router.post(
    "/cases/{ref}/connector-plan",
    response={200: PlanOut, **error_responses(403, 404, 409, 422, 502)},
    summary="The operations a revoke of these grants would carry out, in order (a dry run)",
)
@scope("cases:write")
def plan(request: HttpRequest, ref: str, payload: GrantsIn) -> Any:
    actor = actor_of(request)
    case = cases.get_case(actor.org, ref)
    connection = _connection(actor.org, payload.connection)
    try:
        dry = services.plan_grants(
            actor=actor, case=case, grants=_grants(case, payload.grants), connection=connection
        )
    except ConnectorError as exc:
        raise _upstream(connection, exc) from None
    return {
        "plan_sha256": dry.plan.sha256(),
        "operations": [
            {
                "order": int(op.order),
                "action": op.action,
                "target_id": op.target_id,
                "account_id": op.account_id,
                "description": op.description,
            }
            for op in dry.plan.operations
        ],
        "unresolved": {str(k): v for k, v in dry.unresolved.items()},
    }


@router.post(
    "/cases/{ref}/connector-runs",
    response={202: RunOut, **error_responses(403, 404, 409, 422)},
    summary="Revoke (or read back) grants with a connector, in the background",
)
@scope("cases:write")
def request_run(request: HttpRequest, ref: str, payload: RunIn) -> Any:
    actor = actor_of(request)
    case = cases.get_case(actor.org, ref)
    run = runs.request_run(
        actor=actor,
        case=case,
        connection=_connection(actor.org, payload.connection),
        grants=_grants(case, payload.grants),
        action=payload.action,
        plan_sha256=payload.plan_sha256,
    )
    return 202, run_out(run)


@router.get(
    "/cases/{ref}/connector-runs",
    response={200: list[RunOut], **error_responses(404)},
    summary="The case's connector runs, newest first",
)
@paginated
def list_runs(request: HttpRequest, ref: str) -> Any:
    actor = actor_of(request)
    case = cases.get_case(actor.org, ref)
    found = ConnectorRun.objects.filter(org=actor.org, case=case).select_related(
        "connection", "case"
    )
    return [run_out(r) for r in found.order_by("-id")]


class DeclineIn(Input):
    reason: str = Field(min_length=1, max_length=1000)


@router.post(
    "/cases/{ref}/connector-runs/{run_id}/approve",
    response={200: RunOut, **error_responses(403, 404, 409)},
    summary="Approve a run its connection holds for a manager's approval (not your own)",
)
@scope("cases:write")
def approve_run(request: HttpRequest, ref: str, run_id: str) -> Any:
    actor = actor_of(request)
    found = _find_run(actor.org, ref, run_id)
    return run_out(runs.approve_run(actor=actor, run=found))


@router.post(
    "/cases/{ref}/connector-runs/{run_id}/decline",
    response={200: RunOut, **error_responses(403, 404, 409, 422)},
    summary="Decline a run held for approval, saying why",
)
@scope("cases:write")
def decline_run(request: HttpRequest, ref: str, run_id: str, payload: DeclineIn) -> Any:
    actor = actor_of(request)
    found = _find_run(actor.org, ref, run_id)
    return run_out(runs.decline_run(actor=actor, run=found, reason=payload.reason))


def _find_run(org: Any, ref: str, run_id: str) -> ConnectorRun:
    import uuid

    case = cases.get_case(org, ref)
    try:
        key = uuid.UUID(run_id)
    except ValueError:
        raise NotFound(f"No connector run {run_id!r} on case {case.ref}.") from None
    found = (
        ConnectorRun.objects.filter(org=org, case=case, public_id=key)
        .select_related("connection", "case")
        .first()
    )
    if found is None:
        raise NotFound(f"No connector run {run_id!r} on case {case.ref}.")
    return found


@router.get(
    "/cases/{ref}/connector-runs/{run_id}",
    response={200: RunOut, **error_responses(404)},
    summary="A connector run: its state, progress and each grant's result",
)
def get_run(request: HttpRequest, ref: str, run_id: str) -> Any:
    return run_out(_find_run(actor_of(request).org, ref, run_id))
