"""`flush` that works on the append-only ledger: lift the triggers, empty, put them back.

Used by `offboard demo --reset` and by the test runner between transactional tests. It
erases the whole database, which is what flush means; it is not a way to edit history.
"""

from typing import Any

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections

from offboard.ledger import triggers


class Command(FlushCommand):
    def handle(self, **options: Any) -> None:
        connection = connections[options["database"]]
        triggers.remove(connection)
        try:
            super().handle(**options)
        finally:
            triggers.install(connection)
