"""`offboard ledger …`: verify an organization's log end to end, sign a checkpoint now,
rotate the signing key, redact an event for a lawful erasure request."""

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    resolve_actor,
    resolve_org,
    say,
)

app = typer.Typer(
    no_args_is_help=True,
    help="The tamper-evident ledger: verify it, sign checkpoints, rotate keys, redact events.",
)


def _orgs(slug: str | None) -> list[Any]:
    from offboard.accounts.models import Organization

    if slug:
        return [resolve_org(slug)]
    return list(Organization.objects.order_by("slug"))


def _progress_on(bar: Progress) -> Any:
    """A verify_log progress callback drawing one bar per phase (entries, nodes)."""
    tasks: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    return progress


@app.command()
def verify(
    org: Annotated[
        str | None,
        typer.Option("--org", metavar="SLUG", help="Only this organization (default: every one)."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Recompute every leaf and node from the stored events and check checkpoints (signatures,
    consistency), timestamp tokens and evidence files. Exit 1 naming the first problem."""
    ensure_django()
    from offboard.ledger.verify import verify_log

    reports = []
    console = Console(stderr=True)
    for organization in _orgs(org):
        with Progress(
            TextColumn(f"[bold]{organization.slug}[/] {{task.description}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=json_out or not console.is_terminal,
        ) as bar:
            reports.append(verify_log(organization, progress=_progress_on(bar)))
    if json_out:
        emit_json(
            {"ok": all(r.ok for r in reports), "organizations": [r.as_dict() for r in reports]}
        )
    else:
        for r in reports:
            state = "OK" if r.ok else f"FAILED ({len(r.problems)} problem(s))"
            say(
                f"{r.org}: {state} — {r.entries} events ({r.redacted} redacted), {r.nodes} nodes, "
                f"{r.checkpoints} checkpoints, {r.timestamps} timestamps, {r.files} evidence files; "
                f"root {r.root.hex()[:16]}…",
                style="green" if r.ok else "red",
            )
    bad = next((r for r in reports if not r.ok), None)
    if bad is not None:
        typer.echo(f"error: {bad.org}: {bad.problems[0]}", err=True)
        for problem in bad.problems[1:10]:
            typer.echo(f"  also: {problem}", err=True)
        raise typer.Exit(1)


@app.command()
def checkpoint(
    org: OrgOption = None, as_user: AsOption = None, json_out: JsonOption = False
) -> None:
    """Sign a checkpoint of the log as it stands now and print it (a signed note)."""
    ensure_django()
    from offboard.ledger import services

    cp = services.issue_checkpoint(actor=resolve_actor(org, as_user))
    if json_out:
        emit_json({"size": cp.size, "root": bytes(cp.root).hex(), "signed_note": cp.signed_note})
    else:
        typer.echo(cp.signed_note, nl=False)


@app.command("rotate-key")
def rotate_key(org: OrgOption = None, as_user: AsOption = None) -> None:
    """Create a new signing key (on the PKCS#11 token when OFFBOARD_PKCS11_MODULE is set); the
    old one stays published for the checkpoints it signed."""
    ensure_django()
    from offboard.ledger import services

    key = services.rotate_signing_key(actor=resolve_actor(org, as_user))
    say(f"New signing key {key.key_id}: {key.verifier_key}")


@app.command()
def redact(
    index: Annotated[int, typer.Argument(metavar="EVENT", help="The event's index in the ledger.")],
    reason: Annotated[str, typer.Option("--reason", help="The lawful basis of the erasure.")],
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Erase an event's body (admin only). Its leaf hash stays, so every proof still verifies;
    the redaction is itself an event."""
    ensure_django()
    from offboard.ledger import services

    entry = services.redact_event(actor=resolve_actor(org, as_user), index=index, reason=reason)
    say(
        f"Event #{entry.index} ({entry.type}) redacted; leaf hash {bytes(entry.leaf_hash).hex()} kept."
    )
