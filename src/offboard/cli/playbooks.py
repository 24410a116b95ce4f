"""`offboard playbook …`: validate a playbook file (no database), import it, list them."""

import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    out,
    plain,
    playbook_error_lines,
    resolve_actor,
    resolve_org,
    say,
)
from offboard.playbooks.spec import PlaybookInvalid, PlaybookSpec, parse_playbook

app = typer.Typer(no_args_is_help=True, help="Playbooks: validate, import and list them.")

FileArgument = Annotated[
    Path,
    typer.Argument(
        metavar="FILE", exists=True, dir_okay=False, readable=True, help="A playbook in YAML."
    ),
]


def _parse_or_exit(path: Path) -> tuple[bytes, PlaybookSpec]:
    """Parse the file; on problems print each as FILE:LINE: path: message and exit 1."""
    source = path.read_bytes()
    try:
        return source, parse_playbook(source)
    except PlaybookInvalid as exc:
        for line in playbook_error_lines(str(path), exc.errors):
            typer.echo(line, err=True)
        typer.echo(
            f"error: {path} is not a valid playbook ({len(exc.errors)} problem(s))", err=True
        )
        raise typer.Exit(1) from None


@app.command()
def validate(file: FileArgument) -> None:
    """Check a playbook file and report every problem with its line. Needs no database."""
    _, spec = _parse_or_exit(file)
    phases = list(dict.fromkeys(step.phase for step in spec.steps))
    required = sum(1 for step in spec.steps if step.required)
    policy = spec.approval_policy
    seeds = sum(len(items) for items in spec.seeds.values())
    say(
        f"valid: {len(spec.steps)} steps ({required} required) in {len(phases)} phases "
        f"({', '.join(phases)}); {seeds} register seeds; fee types {', '.join(spec.fee_types)}; "
        f"closure needs {policy.min_approvers} approver(s) from {' or '.join(policy.roles)}."
    )
    say(f"playbook '{spec.slug}': {spec.name} ({spec.service_type})")


@app.command("import")
def import_(file: FileArgument, org: OrgOption = None, as_user: AsOption = None) -> None:
    """Import a playbook as a new immutable version (the same text again changes nothing)."""
    text, spec = _parse_or_exit(file)
    ensure_django()
    from offboard.core.errors import NotFound
    from offboard.playbooks.selectors import get_version
    from offboard.playbooks.services import import_playbook

    actor = resolve_actor(org, as_user)
    try:
        latest = get_version(actor.org, spec.slug)
    except NotFound:
        latest = None
    version = import_playbook(actor=actor, source=text)
    if latest is not None and latest.pk == version.pk:
        say(
            f"unchanged: {spec.slug} v{version.version} already has this exact text "
            f"(sha256 {hashlib.sha256(text).hexdigest()[:16]}…)."
        )
    else:
        say(
            f"imported {spec.slug} v{version.version} ({len(spec.steps)} steps, "
            f"sha256 {version.sha256[:16]}…).",
            "bold",
        )


@app.command("list")
def list_playbooks(org: OrgOption = None, as_json: JsonOption = False) -> None:
    """List the organization's playbooks and their latest versions."""
    ensure_django()
    from offboard.playbooks.selectors import playbooks

    rows: list[dict[str, Any]] = []
    for playbook in playbooks(resolve_org(org)):
        versions = list(playbook.versions.all())
        latest = versions[0] if versions else None
        rows.append(
            {
                "slug": playbook.slug,
                "name": playbook.name,
                "service_type": playbook.service_type,
                "builtin": playbook.builtin,
                "versions": len(versions),
                "latest": {
                    "version": latest.version,
                    "sha256": latest.sha256,
                    "created_at": latest.created_at,
                }
                if latest
                else None,
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} playbooks", title_justify="left")
    for column in ("Slug", "Name", "Service type", "Latest", "sha256", "Built-in"):
        table.add_column(column, no_wrap=column in ("Slug", "Latest", "sha256"))
    for r in rows:
        latest = r["latest"]
        table.add_row(
            plain(r["slug"]),
            plain(r["name"]),
            plain(r["service_type"]),
            plain(f"v{latest['version']}" if latest else None),
            plain(latest["sha256"][:12] if latest else None),
            plain("yes" if r["builtin"] else "no"),
        )
    out.print(table)
