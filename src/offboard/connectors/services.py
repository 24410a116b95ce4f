"""Connections (admins manage them) and running a connector on a case's access grants.

Every change is one transaction and one ledger event; the secret is sealed on the row and is
never in an event, a log line, an evidence file or an error message (the connection's
`public_id` stands for it). Network I/O never runs inside a transaction: `run_revoke` and
`run_verify` talk to the system first, then record what happened in short transactions
(`record_revoke`, `record_verify`), so a slow or dead peer holds no lock.

A grant becomes `revoked` + verification `observed` only from a verify read that says
`absent` (decision 0008): a revoke that reports `revoked` is not enough on its own.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import transaction

from offboard.cases.models import AccessGrant, OffboardingCase, Source
from offboard.cases.registers import REGISTERS, item_state
from offboard.cases.services.common import ensure_open, ensure_started, lock_case, record_change
from offboard.cases.services.linked_steps import (
    complete_settled_steps,
    completing_data,
    note_completing_event,
)
from offboard.connectors import registry
from offboard.connectors.base import (
    Account,
    CheckResult,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    Match,
    Observation,
    ObservationStatus,
    Outcome,
    OutcomeStatus,
    Plan,
)
from offboard.connectors.models import Connection, LinkedAccount
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import ValidationFailed
from offboard.core.permissions import require
from offboard.core.sealing import SealedValueUnavailable, seal, unseal
from offboard.core.validation import Errors
from offboard.evidence.models import EvidenceFile
from offboard.evidence.services import atomic_with_files, store_file
from offboard.ledger.recorder import record_event

MAX_RECHECK_DAYS = 3650
# Grants whose events a run records per transaction: a commit (an fsync) per grant was most
# of a 200-account run's own cost; 20 keep each transaction short (tens of ms, no I/O).
RECORD_BATCH = 20


# --- connections ------------------------------------------------------------------------


def _clean_settings(
    errors: Errors, kind: str, config: Any, recheck_interval_days: Any
) -> tuple[dict[str, Any], int]:
    clean: dict[str, Any] = {}
    try:
        cls = registry.get(kind)
    except ConnectorError as exc:
        errors.add("kind", exc.message)
        cls = None
    if cls is not None:
        try:
            clean = cls.validate_config(config if isinstance(config, Mapping) else {})
        except ConnectorError as exc:
            errors.add("config", exc.message)
    try:
        days = int(recheck_interval_days)
        if not 1 <= days <= MAX_RECHECK_DAYS:
            raise ValueError
    except (TypeError, ValueError):
        errors.add("recheck_interval_days", f"a whole number of days, 1 to {MAX_RECHECK_DAYS}")
        days = 30
    return clean, days


@transaction.atomic
def create_connection(
    *,
    actor: Actor,
    name: str,
    kind: str,
    config: Mapping[str, Any],
    secret: str,
    recheck_interval_days: int = 30,
    requires_approval: bool = False,
) -> Connection:
    require(actor, "connectors.manage")
    errors = Errors()
    name = errors.text("name", name, max_length=100)
    clean, days = _clean_settings(errors, kind, config, recheck_interval_days)
    if not (secret or "").strip():
        errors.add("secret", "the connection's token or password is required")
    if name and Connection.objects.for_org(actor.org).filter(name=name).exists():
        errors.add("name", f"a connection named '{name}' exists already")
    errors.raise_if_any()
    now = clock.now()
    connection = Connection(
        org=actor.org,
        name=name,
        kind=kind,
        config=clean,
        recheck_interval_days=days,
        requires_approval=bool(requires_approval),
        created_by=actor.user,
        created_at=now,
        updated_at=now,
    )
    connection.secret_sealed = seal(secret.strip().encode(), context=connection.seal_context)
    connection.save()
    record_event(actor=actor, type="connection.created", data=connection.as_event_data())
    return connection


def _locked(actor: Actor, connection: Connection) -> Connection:
    require(actor, "connectors.manage")
    locked = Connection.objects.for_org(actor.org).select_for_update().filter(pk=connection.pk)
    found = locked.first()
    if found is None:
        raise ValidationFailed({"connection": ["no such connection in this organization"]})
    return found


@transaction.atomic
def update_connection(
    *,
    actor: Actor,
    connection: Connection,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    secret: str | None = None,
    recheck_interval_days: int | None = None,
    requires_approval: bool | None = None,
) -> Connection:
    """Change any of name, config, secret (replaced, never shown), re-check interval and
    whether runs need a manager's approval."""
    connection = _locked(actor, connection)
    old = connection.as_event_data()
    errors = Errors()
    if name is not None:
        name = errors.text("name", name, max_length=100)
        others = Connection.objects.for_org(actor.org).exclude(pk=connection.pk)
        if name and others.filter(name=name).exists():
            errors.add("name", f"a connection named '{name}' exists already")
    clean, days = _clean_settings(
        errors,
        connection.kind,
        connection.config if config is None else config,
        connection.recheck_interval_days
        if recheck_interval_days is None
        else recheck_interval_days,
    )
    if secret is not None and not secret.strip():
        errors.add("secret", "give the new token or password, or leave it out")
    errors.raise_if_any()
    if name is not None:
        connection.name = name
    connection.config, connection.recheck_interval_days = clean, days
    if requires_approval is not None:
        connection.requires_approval = bool(requires_approval)
    if secret is not None:
        connection.secret_sealed = seal(secret.strip().encode(), context=connection.seal_context)
    connection.updated_at = clock.now()
    connection.save()
    new = connection.as_event_data()
    record_event(
        actor=actor,
        type="connection.updated",
        data={
            **new,
            "old": {k: v for k, v in old.items() if new.get(k) != v},
            "secret_replaced": secret is not None,
        },
    )
    return connection


@transaction.atomic
def disable_connection(*, actor: Actor, connection: Connection) -> Connection:
    connection = _locked(actor, connection)
    if connection.state != Connection.State.DISABLED:
        connection.state = Connection.State.DISABLED
        connection.updated_at = clock.now()
        connection.save(update_fields=["state", "updated_at"])
        record_event(actor=actor, type="connection.disabled", data=connection.as_event_data())
    return connection


def open_connector(connection: Connection) -> Connector:
    """The connector for a connection, its secret unsealed for the call only."""
    if connection.state != Connection.State.ACTIVE:
        raise ValidationFailed({"connection": [f"the connection '{connection.name}' is disabled"]})
    try:
        secret = unseal(connection.secret_sealed, context=connection.seal_context).decode()
    except SealedValueUnavailable as exc:
        raise ConnectorConfigError(
            f"The secret of connection '{connection.name}' cannot be opened: {exc} "
            "Enter it again (update the connection)."
        ) from None
    try:
        return registry.get(connection.kind)(connection.config, secret)
    except ConnectorError as exc:
        raise ValidationFailed({"config": [exc.message]}) from None


def _fresh(actor: Actor, connection: Connection) -> Connection:
    """The connection as stored now, in the actor's organization."""
    found = Connection.objects.for_org(actor.org).filter(pk=connection.pk).first()
    if found is None:
        raise ValidationFailed({"connection": ["no such connection in this organization"]})
    return found


def _read_only(actor: Actor, connection: Connection) -> Connector:
    require(actor, "cases.work")
    return open_connector(_fresh(actor, connection))


def check_connection(*, actor: Actor, connection: Connection) -> CheckResult:
    """Credentials and reachability; raises ConnectorError / CredentialsRefused. No change."""
    connector = _read_only(actor, connection)
    try:
        return connector.check()
    finally:
        connector.close()


def discover_accounts(*, actor: Actor, connection: Connection, match: Match) -> list[Account]:
    connector = _read_only(actor, connection)
    try:
        return connector.discover(match)
    finally:
        connector.close()


def plan_accounts(*, actor: Actor, connection: Connection, accounts: Sequence[Account]) -> Plan:
    connector = _read_only(actor, connection)
    try:
        return connector.plan(accounts)
    finally:
        connector.close()


# --- running on a case ------------------------------------------------------------------


@dataclasses.dataclass
class GrantRun:
    """What a run did for one grant."""

    grant: AccessGrant
    account: Account | None
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    observation: Observation | None = None
    problem: str = ""  # why nothing was done (account not found, …)
    linked: bool = False  # its `LinkedAccount` is known to exist (no need to look again)

    @property
    def observed_absent(self) -> bool:
        return self.observation is not None and self.observation.status == ObservationStatus.ABSENT


def grants_for(
    actor: Actor, case: OffboardingCase, grants: Sequence[AccessGrant], connection: Connection
) -> list[AccessGrant]:
    require(actor, "cases.work")
    ensure_open(case)
    ensure_started(case)
    if connection.org_id != actor.org.pk or case.org_id != actor.org.pk:
        raise ValidationFailed({"connection": ["no such connection in this organization"]})
    ids = [g.pk for g in grants]
    found = {g.pk: g for g in AccessGrant.objects.filter(org=actor.org, case=case, pk__in=ids)}
    errors = Errors()
    for pk in ids:
        grant = found.get(pk)
        if grant is None:
            errors.add("grants", f"access grant {pk} is not on case {case.ref}")
        elif grant.planned_action != AccessGrant.PlannedAction.REVOKE:
            errors.add("grants", f"{grant.label()}: its planned action is {grant.planned_action}")
    if not ids:
        errors.add("grants", "name at least one access grant")
    errors.raise_if_any()
    return [found[pk] for pk in ids]


def _resolve(
    connector: Connector,
    connection: Connection,
    grant: AccessGrant,
    links: Mapping[int, LinkedAccount] | None = None,
) -> Account | None:
    """The grant's account: the one linked before (from `links` when the caller read them
    all at once), else the principal looked up by id or login (exactly one must match)."""
    if links is not None:
        link = links.get(grant.pk)
    else:
        link = LinkedAccount.objects.filter(connection=connection, grant=grant).first()
    if link is not None:
        return Account.from_dict(link.account)
    if not grant.principal:
        return None
    found = connector.discover(Match(ids=(grant.principal,)))
    return found[0] if len(found) == 1 else None


def run_revoke(
    *,
    actor: Actor,
    case: OffboardingCase,
    grants: Sequence[AccessGrant],
    connection: Connection,
    idempotency_key: str = "",
    progress: Callable[[int, int], None] | None = None,
    on_grant: Callable[[GrantRun], None] | None = None,
) -> list[GrantRun]:
    """Plan and revoke the grants' accounts, then read each back; record a `connector.revoked`
    and a `connector.verified` event per grant. Callable from a job: the same
    `idempotency_key` repeated does nothing the first run did not (operations read first)."""
    grants = grants_for(actor, case, grants, connection)
    connection = _fresh(actor, connection)
    key = idempotency_key or str(uuid.uuid4())
    connector = open_connector(connection)
    runs: list[GrantRun] = []
    links = {
        link.grant_id: link
        for link in LinkedAccount.objects.filter(connection=connection, grant__in=grants)
    }
    try:
        for grant in grants:
            try:
                account = _resolve(connector, connection, grant, links)
            except ConnectorError as exc:
                runs.append(GrantRun(grant, None, problem=exc.message))
                continue
            problem = "" if account else f"no single account in {connection.name} matches it"
            runs.append(GrantRun(grant, account, problem=problem, linked=grant.pk in links))
        accounts = [r.account for r in runs if r.account is not None]
        plan = Plan.of(connector.kind, ())
        if accounts:
            try:
                plan = connector.plan(accounts)
                outcomes = connector.revoke(plan, key)
            except ConnectorError as exc:
                for run in runs:
                    run.problem = run.problem or exc.message
                outcomes = []
            for run in runs:
                if run.account is None:
                    continue
                run.outcomes = [
                    o for o in outcomes if o.operation.account_id == run.account.external_id
                ]
                if not run.problem:
                    run.observation = _verify(connector, run.account)
    finally:
        connector.close()
    # Steps settled by the run are looked for once, with its last read (not per grant: that
    # reloads the whole case each time).
    last = max((i for i, r in enumerate(runs, 1) if r.observation is not None), default=0)
    settle = any(r.observed_absent for r in runs)
    numbered = list(enumerate(runs, 1))
    for first in range(0, len(numbered), RECORD_BATCH):
        batch = numbered[first : first + RECORD_BATCH]
        with atomic_with_files():  # a batch of grants' events: one transaction, one commit
            for done, run in batch:
                record_revoke(
                    actor=actor,
                    case=case,
                    connection=connection,
                    connector=connector,
                    run=run,
                    key=key,
                    plan=plan,
                )
                if run.observation is not None:
                    record_verify(
                        actor=actor,
                        case=case,
                        connection=connection,
                        connector=connector,
                        run=run,
                        settle_steps=settle and done == last,
                    )
        for done, run in batch:
            if on_grant is not None:
                on_grant(run)
            if progress is not None:
                progress(done, len(runs))
    return runs


def run_verify(
    *,
    actor: Actor,
    case: OffboardingCase,
    grants: Sequence[AccessGrant],
    connection: Connection,
    progress: Callable[[int, int], None] | None = None,
    on_grant: Callable[[GrantRun], None] | None = None,
) -> list[GrantRun]:
    """Read each grant's account back and record a `connector.verified` event per grant."""
    grants = grants_for(actor, case, grants, connection)
    connection = _fresh(actor, connection)
    connector = open_connector(connection)
    runs: list[GrantRun] = []
    try:
        for grant in grants:
            try:
                account = _resolve(connector, connection, grant)
            except ConnectorError as exc:
                runs.append(GrantRun(grant, None, problem=exc.message))
                continue
            run = GrantRun(grant, account)
            if account is None:
                run.problem = f"no single account in {connection.name} matches it"
            else:
                run.observation = _verify(connector, account)
            runs.append(run)
    finally:
        connector.close()
    settle = any(r.observed_absent for r in runs)
    for done, run in enumerate(runs, 1):
        record_verify(
            actor=actor,
            case=case,
            connection=connection,
            connector=connector,
            run=run,
            settle_steps=settle and done == len(runs),
        )
        if on_grant is not None:
            on_grant(run)
        if progress is not None:
            progress(done, len(runs))
    return runs


def _verify(connector: Connector, account: Account) -> Observation:
    """The connector's read; a read that raised is indeterminate, never absent."""
    started = clock.now()
    try:
        return connector.verify(account)
    except ConnectorError as exc:
        return Observation(
            account=account,
            status=ObservationStatus.INDETERMINATE,
            detail=f"The read failed: {exc.message}",
            request_id=exc.request_id,
            started_at=started,
            ended_at=clock.now(),
        )


def _connector_data(connector: Connector, connection: Connection) -> dict[str, Any]:
    return {
        "connector": {"kind": connector.kind, "version": connector.version},
        "connection_id": str(connection.public_id),
        "connection": connection.name,
        "target": connector.target(),
    }


def _evidence(actor: Actor, data: bytes, name: str) -> EvidenceFile | None:
    if not data:
        return None
    return store_file(actor=actor, stream=io.BytesIO(data), name=name)


def _grant_data(grant: AccessGrant) -> dict[str, Any]:
    return {"id": grant.pk, "label": grant.label(), "system": grant.system}


def outcome_summary(outcomes: Sequence[Outcome], problem: str) -> str:
    if problem or not outcomes:
        return "failed" if problem else "nothing_to_do"
    statuses = {o.status for o in outcomes}
    for status in (
        OutcomeStatus.FAILED,
        OutcomeStatus.NEEDS_MANUAL,
        OutcomeStatus.PENDING,
        OutcomeStatus.REVOKED,
    ):
        if status in statuses:
            return str(status)
    return str(OutcomeStatus.ALREADY_ABSENT)


def _link(connection: Connection, grant: AccessGrant, account: Account) -> bool:
    _, created = LinkedAccount.objects.get_or_create(
        org=connection.org,
        connection=connection,
        grant=grant,
        defaults={
            "external_id": account.external_id,
            "account": account.as_dict(),
            "created_at": clock.now(),
        },
    )
    return created


@atomic_with_files()
def record_revoke(
    *,
    actor: Actor,
    case: OffboardingCase,
    connection: Connection,
    connector: Connector,
    run: GrantRun,
    key: str,
    plan: Plan,
) -> None:
    """One `connector.revoked` event: each operation's outcome, with its response stored as
    an evidence file. The grant itself is not changed here (only a verify read does that)."""
    case = lock_case(case)
    ensure_open(case)
    files: list[EvidenceFile] = []
    operations = []
    for o in run.outcomes:
        op = o.operation
        ev = _evidence(actor, o.response, f"{connector.kind}-{op.action}-{op.target_id}.json")
        if ev is not None and ev not in files:
            files.append(ev)
        operations.append({**o.as_dict(), "evidence_sha256": ev.sha256 if ev else None})
    linked = (
        run.account is not None and not run.linked and _link(connection, run.grant, run.account)
    )
    run.linked = run.linked or run.account is not None
    started = min((o.started_at for o in run.outcomes), default=None)
    ended = max((o.ended_at for o in run.outcomes), default=None)
    record_event(
        actor=actor,
        type="connector.revoked",
        case=case,
        data={
            **_connector_data(connector, connection),
            "grant": _grant_data(run.grant),
            "account": _account_data(run.account),
            "account_linked": linked,
            "operation": "revoke",
            "idempotency_key": key,
            "plan_sha256": plan.sha256(),
            "operations": operations,
            "outcome": outcome_summary(run.outcomes, run.problem),
            "problem": run.problem,
            "started_at": started.isoformat() if started else None,
            "ended_at": ended.isoformat() if ended else None,
        },
        files=files,
    )


def _account_data(account: Account | None) -> dict[str, Any] | None:
    if account is None:
        return None
    return {
        "external_id": account.external_id,
        "login": account.login,
        "kind": str(account.kind),
    }


def observation_data(seen: Observation, ev: EvidenceFile | None) -> dict[str, Any]:
    """A read in an event (`connector.verified`, and `connector.rechecked` after closure)."""
    return {
        "observation": str(seen.status),
        "detail": seen.detail,
        "request_id": seen.request_id,
        "request_sha256": seen.request_sha256,
        "response_sha256": seen.response_sha256,
        "started_at": seen.started_at.isoformat(),
        "ended_at": seen.ended_at.isoformat(),
        "evidence_sha256": ev.sha256 if ev else None,
    }


@atomic_with_files()
def record_verify(
    *,
    actor: Actor,
    case: OffboardingCase,
    connection: Connection,
    connector: Connector,
    run: GrantRun,
    settle_steps: bool | None = None,
) -> None:
    """One `connector.verified` event; a read that says absent makes an active or revoked
    grant `revoked` with verification `observed` (source `observed`), the read attached.
    `settle_steps`: complete the steps the case's settled items now complete — by default
    when this grant changed; a run says False for its grants but the last, True for that
    one when any of its reads said absent (looking reloads the whole case)."""
    case = lock_case(case)
    ensure_open(case)
    grant = AccessGrant.objects.select_for_update().get(pk=run.grant.pk)
    grant.case = case
    seen = run.observation
    linked = run.account is not None and not run.linked and _link(connection, grant, run.account)
    run.linked = run.linked or run.account is not None
    ev = None
    if seen is not None:
        login = run.account.login if run.account else grant.pk
        ev = _evidence(actor, seen.raw, f"{connector.kind}-verify-{login}.json")
    changed: dict[str, Any] = {}
    completed: list[Any] = []
    effects: dict[str, Any] = {}
    if seen is not None and seen.status == ObservationStatus.ABSENT:
        changed = _observe(actor, grant, connector, connection, run, seen, ev)
    if bool(changed) if settle_steps is None else settle_steps:
        completed = complete_settled_steps(actor=actor, case=case)
    if changed:
        effects = record_change(case)
    event = record_event(
        actor=actor,
        type="connector.verified",
        case=case,
        data={
            **_connector_data(connector, connection),
            "grant": _grant_data(grant),
            "account": _account_data(run.account),
            "account_linked": linked,
            "operation": "verify",
            **(
                observation_data(seen, ev)
                if seen is not None
                else {"observation": str(ObservationStatus.INDETERMINATE), "detail": run.problem}
            ),
            "item": item_state(REGISTERS["access_grants"], grant) if changed else None,
            "old": changed,
            **effects,
            **completing_data(completed),
        },
        files=[ev] if ev else [],
    )
    note_completing_event(case, completed, event)


def _observe(
    actor: Actor,
    grant: AccessGrant,
    connector: Connector,
    connection: Connection,
    run: GrantRun,
    seen: Observation,
    ev: EvidenceFile | None,
) -> dict[str, Any]:
    """Set the grant revoked + observed from an absent read; returns the old values changed."""
    old = {
        "status": grant.status,
        "verification_level": grant.verification_level,
        "source": grant.source,
    }
    revoked_at = max(
        (o.ended_at for o in run.outcomes if o.status == OutcomeStatus.REVOKED),
        default=None,
    )
    now = clock.now()
    if grant.status != AccessGrant.Status.REVOKED:
        grant.status = AccessGrant.Status.REVOKED
        grant.actioned_at = revoked_at or seen.ended_at
        grant.actioned_by = actor.user
    grant.verification_level = AccessGrant.Verification.OBSERVED
    grant.verification_note = (
        f"Read back from {connection.name} ({connector.kind} {connector.version}): {seen.detail}"
    )[:2000]
    grant.verified_at = seen.ended_at
    grant.verified_by = actor.user
    grant.source = Source.OBSERVED
    grant.source_detail = {
        "connection_id": str(connection.public_id),
        "connection": connection.name,
        "revoked_at": revoked_at.isoformat() if revoked_at else None,
        "connector": connector.kind,
        "version": connector.version,
        "read_at": seen.ended_at.isoformat(),
        "response_sha256": seen.response_sha256,
        **({"evidence_sha256": ev.sha256} if ev else {}),
    }
    grant.recorded_at, grant.recorded_by = now, actor.user
    grant.updated_at = now
    grant.save()
    if ev is not None:
        grant.evidence.add(ev)
    return {k: v for k, v in old.items() if getattr(grant, k) != v}


# --- the workspace's dry run and discovery ---------------------------------------------------


@dataclasses.dataclass
class GrantPlan:
    """A dry run for a case's grants: the plan for the accounts found, the grants without one."""

    plan: Plan
    accounts: dict[int, Account]  # grant id → its account
    unresolved: dict[int, str]  # grant id → why there is no account


def plan_grants(
    *, actor: Actor, case: OffboardingCase, grants: Sequence[AccessGrant], connection: Connection
) -> GrantPlan:
    """What a revoke of `grants` would do, in order — reads only, nothing recorded."""
    grants = grants_for(actor, case, grants, connection)
    connection = _fresh(actor, connection)
    connector = open_connector(connection)
    accounts: dict[int, Account] = {}
    unresolved: dict[int, str] = {}
    try:
        for grant in grants:
            try:
                account = _resolve(connector, connection, grant)
            except ConnectorError as exc:
                unresolved[grant.pk] = exc.message
                continue
            if account is None:
                unresolved[grant.pk] = f"no single account in {connection.name} matches it"
            else:
                accounts[grant.pk] = account
        plan = connector.plan(list(accounts.values())) if accounts else Plan.of(connector.kind, ())
    finally:
        connector.close()
    return GrantPlan(plan=plan, accounts=accounts, unresolved=unresolved)


@atomic_with_files()
def add_discovered_grants(
    *,
    actor: Actor,
    case: OffboardingCase,
    connection: Connection,
    accounts: Sequence[Account],
    direction: str,
) -> list[AccessGrant]:
    """Put discovered accounts on the case's access register, to be revoked, each linked to
    its account in the connection's system (so a later run reads that very account back).
    One transaction; one `access_grant.added` event per account, as when typed in."""
    from offboard.cases.services import add_register_item

    require(actor, "cases.work")
    connection = _fresh(actor, connection)
    if not accounts:
        raise ValidationFailed({"accounts": ["choose at least one account"]})
    added = []
    for account in accounts:
        groups = account.details.get("groups") if isinstance(account.details, dict) else None
        privilege = str(account.kind)
        if groups:
            names = (g.get("display") or g.get("id") if isinstance(g, dict) else g for g in groups)
            privilege += ": " + ", ".join(str(n) for n in names)
        item = add_register_item(
            actor=actor,
            case=case,
            register="access_grants",
            values={
                "direction": direction,
                "system": connection.name,
                "principal": account.login or account.external_id,
                "privilege": privilege[:200],
                "planned_action": "revoke",
                "notes": f"Discovered with {connection.name} ({connection.kind}), "
                f"id {account.external_id}",
            },
        )
        assert isinstance(item, AccessGrant)
        _link(connection, item, account)
        added.append(item)
    return added
