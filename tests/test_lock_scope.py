"""A service that locks a row to change it locks that row alone, and only against other
changes: the rows it reads alongside (the run's case, the token's user) and the inserts that
refer to the locked row (an event naming the case, a session naming the user) do not wait for
it. PostgreSQL only: SQLite locks the whole database for a writer."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction

from offboard.accounts.models import ApiToken, Membership, User
from offboard.accounts.services import create_api_token, revoke_api_token
from offboard.calendar.services import create_calendar_feed
from offboard.cases.models import OffboardingCase
from offboard.connectors.models import Connection, ConnectorRun
from offboard.connectors.runs import approve_run
from tests.factories import connector_objects

pytestmark = pytest.mark.one_pass("postgresql")


@contextmanager
def held(action: Callable[[], Any]) -> Iterator[None]:
    """`action` run in another thread's transaction, kept open while the block runs."""
    done, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                action()
                done.set()
                assert release.wait(30)
        except BaseException as exc:  # handed to the test
            failed.append(exc)
            done.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert done.wait(30)
    try:
        assert not failed, failed
        yield
    finally:
        release.set()
        thread.join(30)


def _may(model: type, pk: int, lock: str) -> bool:
    """Whether this connection takes `lock` on the row at once (NOWAIT)."""
    table = connection.ops.quote_name(model._meta.db_table)  # type: ignore[attr-defined]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR {lock} NOWAIT", [pk])
        return True
    except OperationalError:
        return False


def test_revoking_a_token_does_not_lock_its_user(transactional_db: Any, cast: Any) -> None:
    alice = cast["alice"]
    token, _ = create_api_token(actor=alice, name="CI")
    with held(lambda: revoke_api_token(actor=alice, token=token)):
        assert not _may(ApiToken, token.pk, "NO KEY UPDATE")  # the token is locked
        assert _may(ApiToken, token.pk, "KEY SHARE")  # ... against changes only
        assert _may(User, alice.user.pk, "UPDATE")  # its user is not locked at all


def test_a_calendar_feed_locks_the_membership_against_changes_only(
    transactional_db: Any, cast: Any
) -> None:
    alice = cast["alice"]
    membership = Membership.objects.get(user=alice.user, org=alice.org)
    made = lambda: create_calendar_feed(  # noqa: E731
        actor=alice, membership=membership, base_url="https://offboard.example"
    )
    with held(made):
        assert not _may(Membership, membership.pk, "NO KEY UPDATE")
        assert _may(Membership, membership.pk, "KEY SHARE")  # a row referring to it may be added
        assert _may(User, alice.user.pk, "UPDATE")


def test_deciding_a_connector_run_does_not_lock_its_case_or_connection(
    transactional_db: Any, cast: Any, case: OffboardingCase
) -> None:
    assert case.state == "active"
    ids = connector_objects(case, cast["alice"], requires_approval=True)
    run = ConnectorRun.objects.get(public_id=ids["run"])
    assert run.state == "awaiting_approval"
    with held(lambda: approve_run(actor=cast["bob"], run=run)):
        assert not _may(ConnectorRun, run.pk, "NO KEY UPDATE")  # the run is locked
        # Recording the approval's event holds the case against other changes (its event
        # sequence), but not against a row that refers to it (another event, a step).
        assert _may(OffboardingCase, case.pk, "KEY SHARE")
        assert _may(Connection, run.connection_id, "NO KEY UPDATE")


def test_reminder_preferences_lock_the_membership_against_changes_only(
    transactional_db: Any, cast: Any
) -> None:
    from offboard.reminders.services import update_preferences

    alice = cast["alice"]
    membership = Membership.objects.get(user=alice.user, org=alice.org)
    with held(lambda: update_preferences(actor=alice, membership=membership, values={})):
        assert not _may(Membership, membership.pk, "NO KEY UPDATE")
        assert _may(Membership, membership.pk, "KEY SHARE")
