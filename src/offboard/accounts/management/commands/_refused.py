"""Django's own user commands, replaced: they would change credentials with no event."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

WAY_OUT = (
    "Offboard changes users only through its services, each recorded in the organization's "
    "ledger (decision 0011). Use `offboard user create USERNAME --role ROLE`, "
    "`offboard user set-password USERNAME`, `offboard user deactivate USERNAME` or "
    "`offboard user reactivate USERNAME`, as an admin of the organization (--org SLUG --as ADMIN)."
)


class RefusedCommand(BaseCommand):
    """Accepts any arguments, changes nothing, and names the commands that do it properly."""

    refusal = ""

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs="*")
        parser.add_argument("--username")
        parser.add_argument("--email")
        parser.add_argument("--database")
        parser.add_argument("--noinput", "--no-input", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        raise CommandError(f"{self.refusal} {WAY_OUT}")
