"""`offboard connector …`: connections to external systems and the revocation connectors
(docs/connectors.md): list, add, check, discover, plan, revoke, verify."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    fail,
    out,
    plain,
    resolve_actor,
    say,
)

app = typer.Typer(
    no_args_is_help=True,
    help="Connectors: revoke access in external systems (SCIM, LDAP, PostgreSQL roles, "
    "AWS IAM, …) and read it back.",
)

NameArg = Annotated[str, typer.Argument(metavar="CONNECTION", help="The connection's name.")]
DomainOpt = Annotated[
    list[str] | None, typer.Option("--domain", help="Match accounts by e-mail domain.")
]
GroupOpt = Annotated[list[str] | None, typer.Option("--group", help="Match a group's members.")]
PrefixOpt = Annotated[
    list[str] | None,
    typer.Option("--role-prefix", help="Match members of groups/roles starting with this."),
]
IdOpt = Annotated[list[str] | None, typer.Option("--id", help="Match an explicit id or login.")]


@contextmanager
def _connector_errors() -> Iterator[None]:
    """A connector's error (never holding the secret) as one line and exit 1."""
    from offboard.connectors.base import ConnectorError

    try:
        yield
    except ConnectorError as exc:
        fail(exc.message)


def _connection(actor: Any, name: str) -> Any:
    from offboard.connectors.selectors import connection_named

    found = connection_named(actor.org, name)
    if found is None:
        fail(f"No connection named '{name}' in '{actor.org.slug}' (see `offboard connector list`).")
    return found


def _match(domain: Any, group: Any, role_prefix: Any, ids: Any) -> Any:
    from offboard.connectors.base import Match

    match = Match(
        email_domains=tuple(domain or ()),
        groups=tuple(group or ()),
        role_prefixes=tuple(role_prefix or ()),
        ids=tuple(ids or ()),
    )
    if match.is_empty():
        fail("Say what to match: --domain, --group, --role-prefix or --id.")
    return match


@app.command("list")
def list_(org: OrgOption = None, as_user: AsOption = None, as_json: JsonOption = False) -> None:
    """The organization's connections (never their secrets)."""
    ensure_django()
    from offboard.connectors.selectors import connections

    actor = resolve_actor(org, as_user)
    rows = list(connections(actor.org))
    if as_json:
        emit_json([{**c.as_event_data(), "created_at": c.created_at} for c in rows])
        return
    if not rows:
        say("No connections yet: `offboard connector add NAME --kind scim --url URL`.")
        return
    table = Table("Name", "Kind", "Target", "State", "Re-check")
    for c in rows:
        target = c.config.get("url") or c.config.get("host") or c.config.get("endpoint_url") or ""
        if not target and c.kind == "aws_iam":
            target = f"AWS IAM ({c.config.get('region') or 'us-east-1'})"
        table.add_row(
            plain(c.name),
            plain(c.kind),
            plain(target),
            plain(c.state),
            plain(f"{c.recheck_interval_days} d"),
        )
    out.print(table)


@app.command("add")
def add(
    name: NameArg,
    kind: Annotated[str, typer.Option("--kind", help="scim, ldap, postgres, aws_iam, …")],
    config: Annotated[
        list[str] | None,
        typer.Option("--config", metavar="KEY=VALUE", help="A config field (repeatable)."),
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Shorthand for --config url=URL.")
    ] = None,
    access_key_id: Annotated[
        str | None,
        typer.Option(
            "--access-key-id",
            metavar="ID",
            help="aws_iam: shorthand for --config access_key_id=ID (the secret access key is "
            "the secret).",
        ),
    ] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(
            "--secret-env",
            metavar="VAR",
            help="Read the token, password or AWS secret access key from this environment "
            "variable (else a prompt).",
        ),
    ] = None,
    recheck_days: Annotated[int, typer.Option("--recheck-days")] = 30,
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a connection (admins). The secret is sealed and never shown again."""
    ensure_django()
    from offboard.connectors import services

    actor = resolve_actor(org, as_user)
    values: dict[str, Any] = {}
    for item in config or ():
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--config {item!r}: write KEY=VALUE.")
        values[key.strip()] = value
    if url:
        values["url"] = url
    if access_key_id:
        values["access_key_id"] = access_key_id
    if secret_env:
        secret = os.environ.get(secret_env, "")
        if not secret:
            fail(f"${secret_env} is empty or not set.")
    else:
        secret = typer.prompt("Token, password or secret access key", hide_input=True)
    connection = services.create_connection(
        actor=actor,
        name=name,
        kind=kind,
        config=values,
        secret=secret,
        recheck_interval_days=recheck_days,
    )
    if as_json:
        emit_json(connection.as_event_data())
    else:
        say(f"Added connection '{connection.name}' ({connection.kind}).", "bold")


@app.command("check")
def check(
    name: NameArg, org: OrgOption = None, as_user: AsOption = None, as_json: JsonOption = False
) -> None:
    """Check a connection's credentials and reachability (changes nothing)."""
    ensure_django()
    from offboard.connectors import services

    actor = resolve_actor(org, as_user)
    with _connector_errors():
        result = services.check_connection(actor=actor, connection=_connection(actor, name))
    if as_json:
        emit_json({"ok": True, "detail": result.detail, "target": result.target})
    else:
        say(f"OK: {result.detail}", "bold green")


@app.command("discover")
def discover(
    name: NameArg,
    domain: DomainOpt = None,
    group: GroupOpt = None,
    role_prefix: PrefixOpt = None,
    ids: IdOpt = None,
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the accounts, memberships, roles and keys that match (changes nothing)."""
    ensure_django()
    from offboard.connectors import services

    actor = resolve_actor(org, as_user)
    match = _match(domain, group, role_prefix, ids)
    with _connector_errors():
        accounts = services.discover_accounts(
            actor=actor, connection=_connection(actor, name), match=match
        )
    if as_json:
        emit_json([a.as_dict() for a in accounts])
        return
    if not accounts:
        say("No matching accounts.")
        return
    table = Table("Id", "Login", "Name", "Kind", "Details")
    for a in accounts:
        groups = ", ".join(g.get("display") or g.get("id", "") for g in a.details.get("groups", ()))
        table.add_row(
            plain(a.external_id),
            plain(a.login),
            plain(a.display_name),
            plain(str(a.kind)),
            plain(f"groups: {groups}" if groups else ""),
        )
    out.print(table)


@app.command("plan")
def plan(
    name: NameArg,
    domain: DomainOpt = None,
    group: GroupOpt = None,
    role_prefix: PrefixOpt = None,
    ids: IdOpt = None,
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """The exact operations a revoke of the matching accounts would make, in order (a dry
    run: changes nothing)."""
    ensure_django()
    from offboard.connectors import services

    actor = resolve_actor(org, as_user)
    match = _match(domain, group, role_prefix, ids)
    connection = _connection(actor, name)
    with _connector_errors():
        accounts = services.discover_accounts(actor=actor, connection=connection, match=match)
        result = services.plan_accounts(actor=actor, connection=connection, accounts=accounts)
    if as_json:
        emit_json({**result.as_dict(), "sha256": result.sha256()})
        return
    if not result.operations:
        say("Nothing to do.")
        return
    table = Table("#", "Action", "Target", "Description")
    for i, op in enumerate(result.operations, 1):
        table.add_row(plain(i), plain(op.action), plain(op.target_id), plain(op.description))
    out.print(table)


def _run(
    kind: str,
    ref: str,
    name: str,
    grant_ids: list[int],
    key: str,
    as_json: bool,
    org: Any,
    as_user: Any,
) -> None:
    ensure_django()
    from offboard.cases.models import AccessGrant
    from offboard.cases.selectors import get_case
    from offboard.connectors import services

    actor = resolve_actor(org, as_user)
    case = get_case(actor.org, ref)
    connection = _connection(actor, name)
    grants = list(AccessGrant.objects.filter(org=actor.org, case=case, pk__in=grant_ids))
    if len(grants) != len(set(grant_ids)):
        fail(f"Not every --grant is an access grant of case {case.ref}.")
    console = Console(stderr=True)
    with Progress(
        TextColumn(f"{kind.capitalize()} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    ) as bar:
        task = bar.add_task(connection.name, total=len(grants))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        with _connector_errors():
            if kind == "revoke":
                runs = services.run_revoke(
                    actor=actor,
                    case=case,
                    grants=grants,
                    connection=connection,
                    idempotency_key=key,
                    progress=progress,
                )
            else:
                runs = services.run_verify(
                    actor=actor,
                    case=case,
                    grants=grants,
                    connection=connection,
                    progress=progress,
                )
    rows = [
        {
            "grant": r.grant.pk,
            "label": r.grant.label(),
            "outcomes": [o.as_dict() for o in r.outcomes],
            "observation": r.observation.as_dict() if r.observation else None,
            "problem": r.problem,
        }
        for r in runs
    ]
    if as_json:
        emit_json(rows)
    else:
        for r in runs:
            seen = r.observation.status if r.observation else "indeterminate"
            done = ", ".join(f"{o.operation.action}: {o.status}" for o in r.outcomes)
            say(f"{r.grant.label()}: {done or r.problem or 'no operation'} — read back: {seen}")
    if any(not r.observed_absent for r in runs):
        raise typer.Exit(1)


GrantOpt = Annotated[list[int], typer.Option("--grant", help="An access grant's id (repeatable).")]


@app.command("revoke")
def revoke(
    ref: Annotated[str, typer.Argument(metavar="CASE")],
    name: NameArg,
    grant: GrantOpt,
    key: Annotated[str, typer.Option("--key", help="Idempotency key (default: a new one).")] = "",
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke the grants' accounts through the connection, then read each back. Exit 1 unless
    every one reads back absent."""
    _run("revoke", ref, name, grant, key, as_json, org, as_user)


@app.command("verify")
def verify(
    ref: Annotated[str, typer.Argument(metavar="CASE")],
    name: NameArg,
    grant: GrantOpt,
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read the grants' accounts back. Exit 1 unless every one reads back absent."""
    _run("verify", ref, name, grant, "", as_json, org, as_user)


@app.command("recheck")
def recheck(
    now: Annotated[
        bool,
        typer.Option("--now", help="Read every revoked account of closed cases now, due or not."),
    ] = False,
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """The re-check after closure: read again the access connectors revoked on closed cases
    whose connection's re-check interval has passed (what the daily job does), and record each
    read on its case. Exit 1 if any access came back."""
    ensure_django()
    from offboard.connectors.recheck import recheck as run_recheck

    actor = resolve_actor(org, as_user)
    summary = run_recheck(actor=actor, everything=now)
    if as_json:
        emit_json(summary.as_dict())
    else:
        say(
            f"Re-checked {summary.read} account(s): {summary.absent} absent, "
            f"{summary.present} present, {summary.indeterminate} indeterminate "
            f"(tried again at the next run); {summary.not_due} not due yet."
        )
        for skipped in summary.skipped:
            say(
                f"Skipped {skipped['accounts']} account(s) of {skipped['connection']}: "
                f"{skipped['reason'].rstrip('.')}.",
                "yellow",
            )
        for back in summary.back:
            say(
                f"ACCESS BACK on {back['case']}: {back['label']} in {back['connection']} — "
                f"{back['detail']}",
                "bold red",
            )
        for cleared in summary.cleared:
            say(f"Cleared on {cleared['case']}: {cleared['label']} reads absent again.", "green")
    if summary.back:
        raise typer.Exit(1)
