"""Big logs are verified by forked processes; they must find exactly what the serial pass finds."""

import pytest
from django.db import connection, transaction

from offboard.ledger import triggers, verify
from offboard.ledger.models import LedgerEntry
from offboard.ledger.verify import verify_log
from tests.factories import settle_everything

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def committed_case(case, cast):
    if connection.vendor == "sqlite":
        pytest.skip(
            "needs PostgreSQL: the SQLite test database is in memory, so forked readers cannot "
            "reach it (`make test` runs this file again on PostgreSQL)"
        )
    return settle_everything(case, cast)


@pytest.mark.parametrize("part", [4096, 16, 8])
def test_the_parallel_pass_agrees_with_the_serial_one(committed_case, part, monkeypatch):
    monkeypatch.setattr(verify, "MIN_PART", part)  # small parts: several joined subtrees
    org = committed_case.org
    serial = verify_log(org, workers=1)
    parallel = verify_log(org, workers=2, parallel_min=1)
    assert serial.ok and parallel.ok, (serial.problems, parallel.problems)
    assert (parallel.entries, parallel.nodes, parallel.root, parallel.files) == (
        serial.entries,
        serial.nodes,
        serial.root,
        serial.files,
    )


@pytest.mark.parametrize("part", [4096, 16])
def test_the_parallel_pass_names_a_tampered_entry_and_node(committed_case, part, monkeypatch):
    monkeypatch.setattr(verify, "MIN_PART", part)
    org = committed_case.org
    entries = list(LedgerEntry.objects.filter(org=org).order_by("index"))
    late = entries[-3]  # in the second worker's half
    triggers.remove(connection)
    try:
        with transaction.atomic(), connection.cursor() as c:
            c.execute(
                "UPDATE ledger_entry SET body = %s WHERE id = %s",
                [bytes(late.body).replace(b'"alice"', b'"mallory"'), late.pk],
            )
            c.execute(
                'UPDATE ledger_node SET hash = %s WHERE org_id = %s AND level = 4 AND "index" = 0',
                [bytes(32), org.pk],
            )
    finally:
        triggers.install(connection)
    report = verify_log(org, workers=2, parallel_min=1)
    assert f"entry #{late.index}: body does not match its stored leaf hash" in report.problems
    assert any(p.startswith("node (4, 0) covering entries #0..#15") for p in report.problems)


def test_the_parallel_pass_names_a_missing_entry_in_a_middle_part(committed_case, monkeypatch):
    monkeypatch.setattr(verify, "MIN_PART", 16)
    org = committed_case.org
    gone = LedgerEntry.objects.filter(org=org).order_by("index")[20]
    triggers.remove(connection)
    try:
        with transaction.atomic(), connection.cursor() as c:
            c.execute("DELETE FROM ledger_entry WHERE id = %s", [gone.pk])
    finally:
        triggers.install(connection)
    report = verify_log(org, workers=2, parallel_min=1)
    assert (
        report.problems[0]
        == f"entry #{gone.index}: missing (next stored index is {gone.index + 1})"
    )
    assert report.entries == gone.index


def test_readers_never_use_a_connection_the_parent_left_open(committed_case, monkeypatch):
    """`close_all` sees only the current thread's (or, under a running event loop, the current
    context's) connections: when it misses the open one, the forked readers must still not
    talk over the parent's socket — two processes on one socket wait for each other forever
    (this hung a CI run). Simulated by a `close_all` that closes nothing."""
    from django.db import connections

    monkeypatch.setattr(verify, "MIN_PART", 16)
    monkeypatch.setattr(connections, "close_all", lambda: None)
    org = committed_case.org
    connection.ensure_connection()
    backend_pid = connection.connection.info.backend_pid
    report = verify_log(org, workers=2, parallel_min=1)
    assert report.ok, report.problems
    # The parent's session survived its children and still answers on the same socket.
    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        assert c.fetchone()[0] == backend_pid
