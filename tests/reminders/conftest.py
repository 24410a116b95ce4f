"""The reminders' cast: Acme's exit of Northwind, opened on day T (a termination by the client,
so the notice date is T): alice owns the case and two steps due T+2 and T+3, bob a step due
T+5, oscar steps from T+7, dave from T+35. The clock is pinned at chosen times after T (the
ledger's events stay in time order: T is after the real date the fixtures run at)."""

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from offboard.core import clock
from offboard.ledger.models import LedgerEntry
from tests.smtp import Received, smtp

__all__ = ["smtp"]

T = dt.date(2027, 3, 1)


def at(days: int, hour: int = 8) -> dt.datetime:
    """Day T + `days`, at `hour` UTC."""
    return dt.datetime.combine(T + dt.timedelta(days=days), dt.time(hour), tzinfo=dt.UTC)


@contextmanager
def on(days: int, hour: int = 8) -> Iterator[dt.datetime]:
    with clock.pinned(at(days, hour)) as timeline:
        yield timeline.at


def open_exit(
    cast: dict[str, Any], playbooks: dict[str, Any], client_contract: Any, **more: Any
) -> Any:
    from offboard.cases.services import open_case

    client, contract = client_contract
    return open_case(
        actor=cast["alice"],
        client=client,
        contracts=[contract],
        trigger="termination_by_client",
        trigger_date=T,
        owner_id=cast["alice"].user.pk,
        playbook_version=playbooks["marketing_agency"],
        **more,
    )


@pytest.fixture
def exit_case(cast: dict[str, Any], playbooks: dict[str, Any], client_contract: Any) -> Any:
    with clock.pinned(at(0, 9)):
        return open_exit(cast, playbooks, client_contract)


def events(case: Any, type: str) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(case=case, type=type).order_by("index"))


def to(received: list[Received], username: str) -> list[Received]:
    return [m for m in received if m.rcpt_tos == [f"{username}@acme.example"]]


def unsubscribe_path(message: Received) -> str:
    """The path of the one-click link in the List-Unsubscribe header."""
    header = str(message.message["List-Unsubscribe"]).strip()
    found = re.fullmatch(r"<https?://[^/]+(/reminders/unsubscribe/[^>]+/)>", header)
    assert found, header
    return found[1]
