"""`offboard client import FILE.csv`: add clients, contacts and contracts from a CSV file, all
or none (docs/import.md); `--dry-run` checks it and writes nothing."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    resolve_actor,
    say,
)

if TYPE_CHECKING:
    from offboard.clients.csvfile import Problem

app = typer.Typer(no_args_is_help=True, help="Clients: import them from a CSV file.")

FileArgument = Annotated[
    Path,
    typer.Argument(
        metavar="FILE",
        exists=True,
        dir_okay=False,
        readable=True,
        help="A CSV file in the import format (docs/import.md).",
    ),
]


def problem_lines(name: str, problems: "list[Problem]") -> list[str]:
    """`FILE:LINE: column: message`, the form editors and CI logs link to."""
    lines = []
    for p in problems:
        where = f"{name}:{p.line}" if p.line is not None else name
        column = f" {p.column}:" if p.column else ""
        lines.append(f"{where}:{column} {p.message}")
    return lines


@app.command("import")
def import_(
    file: FileArgument,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the file and say what it would add; write nothing."),
    ] = False,
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import clients, contacts and contracts: every problem is printed as FILE:LINE: column:
    message and nothing is written (exit 1) unless the whole file is valid. Admins only."""
    ensure_django()
    from offboard.clients.csvfile import MAX_BYTES
    from offboard.clients.imports import ClientImport, ImportInvalid, preview_clients_csv
    from offboard.clients.services import import_clients_csv

    actor = resolve_actor(org, as_user)
    with file.open("rb") as f:
        source = f.read(MAX_BYTES + 1)  # one byte past the limit says it is too large
    console = Console(stderr=True)
    try:
        if dry_run:
            plan: ClientImport = preview_clients_csv(actor=actor, source=source)
            plan.raise_if_invalid()
        else:
            with Progress(
                TextColumn("Importing {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
                disable=as_json or not console.is_terminal,
            ) as bar:
                task = bar.add_task(file.name, total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                plan = import_clients_csv(
                    actor=actor, source=source, file_name=file.name, progress=progress
                )
    except ImportInvalid as exc:
        if as_json:
            emit_json({"ok": False, "problems": [p.as_dict() for p in exc.problems]})
        for line in problem_lines(str(file), exc.problems):
            typer.echo(line, err=True)
        n = len(exc.problems)
        typer.echo(
            f"error: {file} has {n} problem{'s' if n != 1 else ''}; nothing was imported",
            err=True,
        )
        raise typer.Exit(1) from None
    if as_json:
        emit_json(
            {
                "ok": True,
                "dry_run": dry_run,
                "sha256": plan.sha256,
                "clients": [c.name for c in plan.clients],
                "contacts": [f"{c.name} <{c.email}>" for c in plan.contacts],
                "contracts": [c.reference for c in plan.contracts],
            }
        )
    elif dry_run:
        say(f"valid: importing {file} would add {plan.summary()}; nothing was written.")
    else:
        say(f"Imported {plan.summary()} from {file}.", "bold")
