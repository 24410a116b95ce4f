"""The `offboard` command line: set up, run, and work cases from a terminal or a script.

Errors a user can fix are one line on stderr and exit code 1; usage errors exit 2.
"""

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from offboard.cli import (
    backup,
    calendar_feed,
    cases,
    certificate,
    clients,
    connectors,
    ledger,
    org,
    pack,
    playbooks,
    portal,
    receipt,
    system,
    worker,
)
from offboard.cli.common import OffboardGroup

app = typer.Typer(
    name="offboard",
    cls=OffboardGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Offboard: client offboarding for B2B service businesses, with proof a third party "
    "can check offline.",
    epilog="Commands that write act as --as USERNAME (or $OFFBOARD_USER) in --org SLUG "
    "(or $OFFBOARD_ORG). See docs/cli.md.",
)
app.command()(system.init)
app.command()(system.serve)
app.command()(system.demo)
app.command()(worker.worker)
app.add_typer(system.user_app, name="user")
app.add_typer(cases.app, name="case")
app.add_typer(clients.app, name="client")
cases.app.command()(certificate.certificate)
cases.app.command()(receipt.receipt)
cases.app.command("portal-link")(portal.portal_link)
app.add_typer(playbooks.app, name="playbook")
app.add_typer(ledger.app, name="ledger")
app.add_typer(org.app, name="org")
app.add_typer(calendar_feed.app, name="calendar")
app.add_typer(connectors.app, name="connector")
app.command()(pack.export)
app.command()(pack.verify)
app.command()(backup.backup)
app.command()(backup.restore)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"offboard {version('offboard')}")
        except PackageNotFoundError:
            typer.echo("offboard (not installed)")
        raise typer.Exit


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Offboard: client offboarding for B2B service businesses, with proof a third party can
    check offline."""


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "offboard.settings")
    app()


__all__ = ["app", "main"]
