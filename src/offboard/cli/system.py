"""Setting Offboard up and running it: `init`, `serve`, `demo`, `user create`."""

import os
import sys
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from offboard.cli.common import (
    AsOption,
    OrgOption,
    development_mode,
    ensure_django,
    err,
    fail,
    fields_as_options,
    membership,
    out,
    plain,
    resolve_actor,
    say,
)


def serve_hint(host: str = "127.0.0.1", port: int = 8000) -> str:
    """What to run next and where to sign in, for the address the app will be served on."""
    options = f" --host {host}" if host != "127.0.0.1" else ""
    options += f" --port {port}" if port != 8000 else ""
    return f"Next: offboard serve{options}   (then sign in at http://{host}:{port}/)"


def _migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def init(
    org: Annotated[
        str | None,
        typer.Option(metavar="SLUG", help="Slug of the first organization (asked if missing)."),
    ] = None,
    org_name: Annotated[
        str | None, typer.Option(metavar="NAME", help="Its display name. Default: from the slug.")
    ] = None,
    admin: Annotated[
        str, typer.Option(metavar="USERNAME", help="Username of its first admin.")
    ] = "admin",
    password: Annotated[
        str | None,
        typer.Option(
            envvar="OFFBOARD_ADMIN_PASSWORD",
            help="The admin's password (asked, hidden, if missing; or $OFFBOARD_ADMIN_PASSWORD).",
        ),
    ] = None,
    email: Annotated[str, typer.Option(help="The admin's email address.")] = "",
) -> None:
    """Set up the database: migrate, then create the first organization, admin and playbooks.

    Idempotent: on an initialized database it only migrates, and says so.
    """
    ensure_django()
    from django.db import transaction

    from offboard.accounts.models import Organization
    from offboard.accounts.services import create_organization, create_user
    from offboard.core.actor import Actor
    from offboard.playbooks.services import install_builtin_playbooks

    _migrate()
    existing = list(Organization.objects.order_by("slug").values_list("slug", flat=True))
    if (org and org in existing) or (not org and existing):
        say(
            f"Database migrated. Already initialized (organizations: {', '.join(existing)}); "
            "nothing else to do."
        )
        return
    slug = org or typer.prompt("Organization slug (lowercase letters, digits, hyphens)")
    name = org_name or slug.replace("-", " ").title()
    if password is None:
        password = typer.prompt(f"Password for {admin}", hide_input=True, confirmation_prompt=True)
    fields = {
        "slug": "--org",
        "name": "--org-name",
        "username": "--admin",
        "password": "--password",
        "email": "--email",
    }
    with transaction.atomic(), fields_as_options(fields):
        organization = create_organization(slug=slug, name=name)
        admin_membership = create_user(
            actor=None,
            org=organization,
            username=admin,
            role="admin",
            password=password,
            email=email,
        )
        installed = install_builtin_playbooks(
            actor=Actor.from_membership(admin_membership, auth_method="cli")
        )
    say(
        f"Database migrated. Created organization '{organization.slug}' ({organization.name}) "
        f"with admin '{admin}' and {len(installed)} built-in playbooks.",
        "bold",
    )
    say(serve_hint())


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run the background jobs (reminders, webhooks, checkpoints…) in this process "
            "too, as `offboard worker` does. Default: on, but off with --prod (run "
            "`offboard worker` beside it).",
        ),
    ] = None,
    prod: Annotated[
        bool,
        typer.Option(
            "--prod",
            help="Production: gunicorn with several worker processes, static files collected "
            "and served under hashed names; debug stays off unless OFFBOARD_DEBUG says so.",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            envvar="OFFBOARD_WEB_WORKERS",
            min=1,
            max=64,
            help="With --prod: web processes ($OFFBOARD_WEB_WORKERS).",
        ),
    ] = 2 * (os.cpu_count() or 1) + 1,
    timeout: Annotated[
        int,
        typer.Option(
            envvar="OFFBOARD_WEB_TIMEOUT",
            min=5,
            max=3600,
            help="With --prod: seconds before a stuck request's process is restarted "
            "($OFFBOARD_WEB_TIMEOUT).",
        ),
    ] = 60,
) -> None:
    """Run the web app: Django's development server, or with --prod gunicorn.

    Without --prod: fine on a laptop, with debug on unless OFFBOARD_DEBUG says otherwise; the
    background jobs run in the same process unless --no-worker. With --prod: static files are
    collected, then gunicorn serves `offboard.wsgi` with --workers processes behind your
    reverse proxy; run `offboard worker` beside it (docs/deploy.md).
    """
    if prod:
        if worker:
            fail(
                "--worker runs jobs in the web process, for a laptop: with --prod run "
                "`offboard worker` beside the server instead."
            )
        _serve_production(host, port, workers, timeout)
        return
    development_mode()
    ensure_django()
    from django.core.management import call_command

    if worker is None or worker:
        from offboard.cli.worker import in_background

        in_background()
    call_command("runserver", f"{host}:{port}", use_reloader=False)


def _collect_static(collect: Any) -> None:
    """Run `collect` (collectstatic) unless STATIC_ROOT already holds this code's static files.

    Collecting compresses every file again (Brotli and gzip), a minute of CPU at each start, so
    a restarted or added process would wait for it; several processes starting on one host at
    once would also write the same files together. A lock serializes them: the first collects
    and stamps the digest of the source files, the others find the stamp and skip."""
    import fcntl
    import hashlib
    from pathlib import Path

    from django.conf import settings
    from django.contrib.staticfiles.finders import get_finders

    root = Path(settings.STATIC_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    sources = hashlib.sha256()
    found = {path: storage for finder in get_finders() for path, storage in finder.list([])}
    for path in sorted(found):
        sources.update(path.encode() + b"\0")
        with found[path].open(path) as source:
            sources.update(hashlib.sha256(source.read()).digest())
    digest = sources.hexdigest()
    stamp = root / ".offboard-collected"
    with open(root / ".offboard-collect.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        current = stamp.read_text().strip() if stamp.is_file() else ""
        if current == digest and (root / "staticfiles.json").is_file():
            return
        collect()
        stamp.write_text(digest + "\n")


def _serve_production(host: str, port: int, workers: int, timeout: int) -> None:
    """Collect the static files (hashed names, compressed), then replace this process with
    gunicorn, so that signals from a process manager reach it directly."""
    os.environ["OFFBOARD_STATIC_MANIFEST"] = "on"  # hashed names (settings.py STORAGES)
    ensure_django()
    from django.conf import settings
    from django.core.management import call_command

    from offboard.core.proxies import parse_networks

    trusted = ",".join(str(net) for net in parse_networks(settings.OFFBOARD_TRUSTED_PROXIES))
    _collect_static(lambda: call_command("collectstatic", interactive=False, verbosity=0))
    typer.echo(
        f"Serving on http://{host}:{port}/ with {workers} gunicorn workers "
        f"(debug {'on' if settings.DEBUG else 'off'}); run `offboard worker` beside it."
    )
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "offboard.wsgi:application",
        f"--bind={host}:{port}",
        f"--workers={workers}",
        f"--timeout={timeout}",
        "--graceful-timeout=30",  # no gunicorn access log: Offboard logs each request, with its id
        # X-Forwarded-Proto is believed from the same proxies as X-Forwarded-For
        # (offboard.core.proxies): from them, https makes the request secure.
        f"--forwarded-allow-ips={trusted}",
        # No runtime control socket: its path is one per user, so several servers on one host
        # would take it from each other, and nothing here uses it (process managers signal).
        "--no-control-socket",
    ]
    os.execv(sys.executable, args)  # noqa: S606 - our own interpreter, fixed arguments


def demo(
    reset: Annotated[
        bool,
        typer.Option("--reset", help="Erase the whole database first, then load the demo again."),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask before erasing other organizations.")
    ] = False,
    host: Annotated[
        str, typer.Option(help="Interface it will be served on, for the sign-in address shown.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port it will be served on, for the sign-in address shown.")
    ] = 8000,
) -> None:
    """Load the demo organization 'Brightline Digital' with clients and cases in every state
    (debug on, unless OFFBOARD_DEBUG says otherwise)."""
    development_mode()
    ensure_django()
    from offboard import demo as demo_data
    from offboard.accounts.models import Organization

    _migrate()
    if reset and not yes:
        others = list(
            Organization.objects.exclude(slug=demo_data.ORG_SLUG).values_list("slug", flat=True)
        )
        if others:
            typer.confirm(
                f"--reset erases every organization, including {', '.join(others)}. Continue?",
                abort=True,
            )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("Loading the demo", total=len(demo_data.STAGES))

        def advance(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=stage)

        result = demo_data.load_demo(reset=reset, progress=advance)
    _print_demo(result, host=host, port=port)


def _print_demo(result: dict[str, Any], *, host: str = "127.0.0.1", port: int = 8000) -> None:
    org = result["org"]
    if result["created"]:
        say(f"Loaded the demo organization '{org['slug']}' ({org['name']}).", "bold")
    else:
        say(f"The demo organization '{org['slug']}' is already loaded (use --reset to reload it).")
    table = Table(title=f"Demo logins — password: {result['password']}", title_justify="left")
    for column in ("Username", "Name", "Role"):
        table.add_column(column)
    for user in result["users"]:
        table.add_row(plain(user["username"]), plain(user["name"]), plain(user["role"]))
    out.print(table)
    cases = Table(title="Demo cases", title_justify="left")
    for column in ("Ref", "Client", "State"):
        cases.add_column(column)
    for case in result["cases"]:
        cases.add_row(plain(case["ref"]), plain(case["client"]), plain(case["state"]))
    out.print(cases)
    say(serve_hint(host, port))


user_app = typer.Typer(no_args_is_help=True, help="Users and their roles.")


@user_app.command("create")
def create_user_command(
    username: Annotated[str, typer.Argument(metavar="USERNAME", help="Login name.")],
    role: Annotated[
        str, typer.Option(metavar="ROLE", help="admin, manager, operator, finance or auditor.")
    ],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Password (asked, hidden, if missing).",
        ),
    ],
    email: Annotated[str, typer.Option(help="Email address.")] = "",
    first_name: Annotated[str, typer.Option(help="First name.")] = "",
    last_name: Annotated[str, typer.Option(help="Last name.")] = "",
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Create a user with a role in the organization (done by an admin, recorded as an event)."""
    ensure_django()
    from offboard.accounts.services import create_user

    actor = resolve_actor(org, as_user)
    fields = {
        "username": "USERNAME",
        "role": "--role",
        "password": "--password",
        "email": "--email",
    }
    with fields_as_options(fields):
        created = create_user(
            actor=actor,
            org=actor.org,
            username=username,
            role=role,
            password=password,
            email=email,
            first_name=first_name,
            last_name=last_name,
        )
    say(f"Created user '{created.user.username}' as {created.role} in '{actor.org.slug}'.", "bold")


@user_app.command("deactivate")
def deactivate_user_command(
    username: Annotated[str, typer.Argument(metavar="USERNAME", help="Who left.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the record.")] = "",
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Deactivate a member who left: no login, open sessions and API tokens stop at once (admin)."""
    ensure_django()
    from offboard.accounts.services import deactivate_member

    actor = resolve_actor(org, as_user)
    member = deactivate_member(
        actor=actor,
        membership=membership(actor.org, username),
        reason=reason,
    )
    say(f"Deactivated '{member.user.username}' in '{actor.org.slug}'.", "bold")


@user_app.command("reactivate")
def reactivate_user_command(
    username: Annotated[str, typer.Argument(metavar="USERNAME", help="Who comes back.")],
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Let a deactivated member log in again; their old API tokens stay revoked (admin)."""
    ensure_django()
    from offboard.accounts.services import reactivate_member

    actor = resolve_actor(org, as_user)
    member = reactivate_member(
        actor=actor,
        membership=membership(actor.org, username),
    )
    say(f"Reactivated '{member.user.username}' in '{actor.org.slug}'.", "bold")


@user_app.command("reset-factors")
def reset_factors_command(
    username: Annotated[str, typer.Argument(metavar="USERNAME", help="Who lost their factors.")],
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Remove a member's authenticator app, passkeys and recovery codes (admin), when they
    lost them all: they sign in with their password and set up new ones. Recorded."""
    ensure_django()
    from offboard.mfa.services import reset_member_factors

    actor = resolve_actor(org, as_user)
    removed = reset_member_factors(actor=actor, membership=membership(actor.org, username))
    say(
        f"Removed the second factors of '{username}' in '{actor.org.slug}': "
        f"{removed['totp']} authenticator app, {removed['passkeys']} passkey(s), "
        f"{removed['recovery_codes']} recovery code(s).",
        "bold",
    )


@user_app.command("set-password")
def set_password_command(
    username: Annotated[str, typer.Argument(metavar="USERNAME", help="Whose password.")],
    password: Annotated[
        str,
        typer.Option(
            prompt="New password",
            hide_input=True,
            confirmation_prompt=True,
            help="The new password (asked, hidden, if missing).",
        ),
    ],
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Set a member's password (an admin, or the member themselves), recorded as an event."""
    ensure_django()
    from offboard.accounts.services import change_password

    actor = resolve_actor(org, as_user)
    with fields_as_options({"password": "--password"}):
        member = change_password(
            actor=actor, membership=membership(actor.org, username), password=password
        )
    say(f"Set the password of '{member.user.username}' in '{actor.org.slug}'.", "bold")
