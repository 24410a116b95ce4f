"""Two requests adding the same client name (or contract reference) at once: the one that
loses gets the field error the check before the write gives, never a 500 (an import and a
hand-made client, two imports, two browser tabs)."""

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from offboard.clients.models import Client, Contract
from offboard.clients.services import create_client, create_contract
from offboard.core.errors import ValidationFailed
from offboard.ledger.models import LedgerEntry

pytestmark = pytest.mark.one_pass("postgresql")  # SQLite serializes writers: no race to lose


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return bool(cursor.fetchone()[0])


def _race(first: Callable[[], Any], second: Callable[[], Any]) -> BaseException | None:
    """`first` writes and holds its transaction open until `second` is blocked on the row it
    wrote (past its own check, at its INSERT); then `first` commits. What `second` raised."""
    written, release = threading.Event(), threading.Event()
    outcome: dict[str, BaseException | None] = {"second": None}

    def hold() -> None:
        try:
            with transaction.atomic():
                first()
                written.set()
                assert release.wait(30)
        finally:
            connection.close()

    def race() -> None:
        try:
            second()
        except BaseException as exc:  # handed to the test to assert on
            outcome["second"] = exc
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert written.wait(30)
    racer = threading.Thread(target=race)
    racer.start()
    deadline = time.monotonic() + 30
    while not _waiting_on_a_lock():
        assert time.monotonic() < deadline, "the second request never reached its INSERT"
        time.sleep(0.02)
    release.set()
    holder.join(30)
    racer.join(30)
    return outcome["second"]


def test_a_client_name_taken_meanwhile_is_a_field_error(transactional_db, alice):
    events = LedgerEntry.objects.filter(type="client.created")
    before = events.count()

    refused = _race(
        lambda: create_client(actor=alice, name="Racing Ltd"),
        lambda: create_client(actor=alice, name="Racing Ltd"),
    )

    assert isinstance(refused, ValidationFailed), refused
    assert refused.errors == {"name": ["a client named 'Racing Ltd' already exists"]}
    assert Client.objects.filter(name="Racing Ltd").count() == 1
    assert events.count() == before + 1


def test_a_contract_reference_taken_meanwhile_is_a_field_error(transactional_db, alice):
    client = create_client(actor=alice, name="Racing Ltd")

    def contract() -> Any:
        return create_contract(
            actor=alice,
            client=client,
            reference="RACE-1",
            service_type="marketing_agency",
            fee_type="retainer",
            start_date=dt.date(2026, 1, 1),
        )

    refused = _race(contract, contract)

    assert isinstance(refused, ValidationFailed), refused
    assert refused.errors == {"reference": ["a contract 'RACE-1' already exists"]}
    assert Contract.objects.filter(reference="RACE-1").count() == 1
