"""What every command shares: Django on demand, who acts, and how errors reach the user.

Nothing here imports Django at module level, so commands that need no database (like
`offboard playbook validate`) start fast and work without one.
"""

import datetime as dt
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from offboard.core.canonical import to_jsonable
from offboard.core.errors import GatesUnmet, OffboardError, ValidationFailed
from offboard.playbooks.spec import PlaybookError, PlaybookInvalid

if TYPE_CHECKING:
    from offboard.accounts.models import Membership, Organization
    from offboard.core.actor import Actor

ORG_ENV = "OFFBOARD_ORG"
USER_ENV = "OFFBOARD_USER"

# Resolved at write time, so a test runner that swaps sys.stdout/sys.stderr sees the output.
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        envvar=ORG_ENV,
        metavar="SLUG",
        help="Organization slug. Default: $OFFBOARD_ORG, else the only organization.",
    ),
]
AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar=USER_ENV,
        metavar="USERNAME",
        help="Who performs the action. Default: $OFFBOARD_USER, else the organization's only admin.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of tables.")
]


def ensure_django() -> None:
    """Configure Django once, for the commands that touch the database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "offboard.settings")
    from django.apps import apps

    if apps.ready:
        return
    import django
    from django.conf import settings

    try:
        var_dir = settings.VAR_DIR
    except RuntimeError as exc:  # a setting is missing or contradicts another: say which
        fail(str(exc))
    # The default SQLite file lives under var/; SQLite cannot create its directory itself.
    Path(var_dir).mkdir(parents=True, exist_ok=True)
    django.setup()


def development_mode() -> None:
    """Debug on, unless the environment says otherwise: for the commands that only make sense
    on a developer's machine (the demo, Django's development server). Must run before Django
    reads its settings."""
    os.environ.setdefault("OFFBOARD_DEBUG", "true")


# --- errors ----------------------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    """Stop with one line on stderr and exit code 1."""
    typer.echo(f"error: {_one_line(message)}", err=True)
    raise typer.Exit(1)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def report_gates(gates: list[dict[str, Any]]) -> None:
    for gate in gates:
        typer.echo(f"  - {gate['code']}: {_one_line(gate['message'])}", err=True)
        typer.echo(f"    resolve: {_one_line(gate['resolve'])}", err=True)


def playbook_error_lines(name: str, errors: list[PlaybookError]) -> list[str]:
    """`FILE:LINE: path: message`, the form editors and CI logs link to."""
    lines = []
    for e in errors:
        where = f"{name}:{e.line}" if e.line is not None else name
        path = f" {e.path}:" if e.path else ""
        lines.append(f"{where}:{path} {e.message}")
    return lines


class OffboardGroup(typer.core.TyperGroup):
    """The root command: turns expected errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except GatesUnmet as exc:
            # The service's message repeats every gate; the list below says it better.
            headline = re.match(r"(.*?unmet gates?)\.", exc.message)
            typer.echo(f"error: {_one_line(headline[1] if headline else exc.message)}:", err=True)
            report_gates(exc.details.get("gates", []))
            raise typer.Exit(1) from None
        except OffboardError as exc:
            fail(exc.message)
        except PlaybookInvalid as exc:
            typer.echo(f"error: the playbook has {len(exc.errors)} problem(s)", err=True)
            for line in playbook_error_lines("playbook", exc.errors):
                typer.echo(line, err=True)
            raise typer.Exit(1) from None


@contextmanager
def fields_as_options(mapping: Mapping[str, str]) -> Iterator[None]:
    """Name the command-line option instead of the service's field in validation errors."""
    try:
        yield
    except ValidationFailed as exc:
        if not any(name in mapping for name in exc.errors):
            raise
        raise ValidationFailed({mapping.get(k, k): v for k, v in exc.errors.items()}) from None


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed({option: [f"'{value}' is not a date (YYYY-MM-DD)"]}) from None


# --- who acts --------------------------------------------------------------------------------


def resolve_org(slug: str | None) -> "Organization":
    from offboard.accounts.models import Organization
    from offboard.accounts.selectors import get_org

    if slug:
        return get_org(slug)
    orgs = list(Organization.objects.order_by("slug")[:6])
    if not orgs:
        raise OffboardError("There is no organization yet; run `offboard init` or `offboard demo`.")
    if len(orgs) > 1:
        names = ", ".join(o.slug for o in orgs[:5]) + (", …" if len(orgs) > 5 else "")
        raise OffboardError(
            f"There are several organizations ({names}); choose one with --org or ${ORG_ENV}."
        )
    return orgs[0]


def membership(org: "Organization", username: str) -> "Membership":
    from offboard.accounts.selectors import members
    from offboard.core.errors import NotFound

    found = members(org).select_related("org").filter(user__username=username).first()
    if found is None:
        raise NotFound(f"No user '{username}' in organization '{org.slug}'.")
    return found


def resolve_actor(org_slug: str | None, username: str | None) -> "Actor":
    """The user who acts: --as, else $OFFBOARD_USER, else the organization's single active admin."""
    from offboard.accounts.selectors import members
    from offboard.core.actor import Actor
    from offboard.core.errors import PermissionDenied

    org = resolve_org(org_slug)
    if username:
        m = membership(org, username)
    else:
        active = members(org).select_related("org").filter(user__is_active=True)
        admins = list(active.filter(role="admin")[:2])
        if len(admins) != 1:
            raise OffboardError(
                f"Say who acts with --as USERNAME or ${USER_ENV}: organization '{org.slug}' has "
                f"{'no admin' if not admins else 'several admins'} to default to."
            )
        m = admins[0]
    if not m.user.is_active:
        raise PermissionDenied(f"User '{m.user.username}' is deactivated.")
    return Actor.from_membership(m, auth_method="cli")


# --- output ----------------------------------------------------------------------------------


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def plain(value: Any) -> Text:
    """A table cell shown exactly as given: user data may contain [brackets] Rich would eat."""
    if value is None or value == "":
        return Text("—", style="dim")
    if isinstance(value, Text):
        return value
    return Text(str(value))


def say(message: str, style: str | None = None) -> None:
    out.print(Text(message, style=style or ""), soft_wrap=True)


def byte_bar(console: Console, label: str, disable: bool) -> Progress:
    """A transient bar of bytes (size, speed, time left) on `console`, only on a terminal."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=disable or not console.is_terminal,
    )
