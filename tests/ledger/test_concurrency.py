"""The ledger under real concurrency and real crashes: separate OS processes, SIGKILL.

Several processes (tests/ledger/ledger_worker.py) append to one organization's log at once;
the log must stay dense, and every stored node must equal a recomputation from the bodies.
Appenders are killed with SIGKILL mid-stream; whatever they acknowledged after a commit must
survive, nothing half-written may remain, and a new process must be able to append again.

The multi-process tests on the test database need PostgreSQL (pytest-django's SQLite test
database is in memory, out of reach of other processes); the SQLite crash path is tested on
a real database file of its own. The append-only triggers are tested on whichever database
the suite runs on.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from offboard.ledger import merkle, store, triggers
from offboard.ledger.models import LedgerEntry, LedgerNode, LogHead
from tests.ledger.ledger_worker import admin_actor, check_log

WORKER = Path(__file__).with_name("ledger_worker.py")
ON_SQLITE = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"

needs_postgres = pytest.mark.skipif(
    ON_SQLITE,
    reason="needs PostgreSQL: the SQLite test database is in memory, so other processes "
    "cannot reach it (`make test` runs this file again on PostgreSQL)",
)

PROCESSES, EVENTS_EACH = 4, 50
TIMEOUT = 60


def _database_url() -> str:
    """The test database (test_… , per xdist worker) as a URL for the subprocesses."""
    s = connection.settings_dict
    user = quote(s.get("USER") or "", safe="")
    password = quote(s.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}{port}/{s['NAME']}"


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "DATABASE_URL": database_url,
        "OFFBOARD_VAR_DIR": str(tmp_path / "var"),
        "OFFBOARD_KEY_DIR": str(tmp_path / "keys"),
        "OFFBOARD_TSA_ON_COMMIT": "off",
        "PYTHONUNBUFFERED": "1",
    }


def _worker(env: dict[str, str], *args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _run_worker(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(WORKER), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"worker {args} failed:\n{done.stderr}"
    return done.stdout


def _acks(lines: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith("ACK ")]


def _kill_after_acks(proc: subprocess.Popen[str], wanted: int, rng: random.Random) -> list[int]:
    """Read ACKs until `wanted`, SIGKILL at a random moment soon after, return every ACK seen."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    while len(_acks(lines)) < wanted:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(
                f"appender exited early: {proc.wait()} {proc.stderr and proc.stderr.read()}"
            )
        lines.append(line)
        assert time.monotonic() < deadline, "appender too slow"
    time.sleep(rng.uniform(0, 0.03))  # the appender keeps going: the kill lands anywhere
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    lines += proc.stdout.readlines()  # printed after a commit, still in the pipe: ACKed too
    return _acks(lines)


def _make_org(slug: str = "conc") -> Any:
    from offboard.accounts.services import create_organization, create_user

    org = create_organization(slug=slug, name="Concurrency Ltd")
    create_user(actor=None, org=org, username=f"{slug}-admin", role="admin")
    return org


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_appenders_keep_the_log_dense_and_the_tree_exact(tmp_path: Path) -> None:
    org = _make_org()
    env = _env(tmp_path, _database_url())
    procs = [
        _worker(
            env,
            "append",
            "--org",
            org.slug,
            "--count",
            str(EVENTS_EACH),
            "--tag",
            f"w{i}",
            "--wait",
            stdin=subprocess.PIPE,
        )
        for i in range(PROCESSES)
    ]
    try:
        for p in procs:  # all connected and ready, then all start at once
            assert p.stdout is not None and p.stdout.readline().strip() == "READY", p.stderr
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    per_worker = [_acks(out.splitlines()) for out, _ in outputs]
    total = PROCESSES * EVENTS_EACH

    acked = sorted(i for acks in per_worker for i in acks)
    assert acked == list(range(total))  # dense and unique across the processes
    assert all(acks == sorted(acks) for acks in per_worker)
    assert len({tuple(a) for a in per_worker}) == PROCESSES
    assert LogHead.objects.get(org=org).size == total
    entries = list(LedgerEntry.objects.filter(org=org).order_by("index"))
    assert [e.index for e in entries] == list(range(total))
    # Each worker's events are where it was told they went, in its own order.
    for tag, acks in enumerate(per_worker):
        seqs = [entries[i].data for i in acks]
        assert seqs == [{"worker": f"w{tag}", "seq": s} for s in range(EVENTS_EACH)]

    tree = merkle.MerkleTree(merkle.leaf_hash(bytes(e.body)) for e in entries)
    nodes = {(n.level, n.index): bytes(n.hash) for n in LedgerNode.objects.filter(org=org)}
    assert len(nodes) == merkle.stored_node_count(total, store.STORED_FROM_LEVEL) > 0
    assert all(h == tree.node(level, index) for (level, index), h in nodes.items())
    root = store.root(org, total)
    assert (
        root
        == tree.root()
        == merkle.root_from_leaf_hashes([merkle.leaf_hash(bytes(e.body)) for e in entries])
    )
    rng = random.Random(7)
    for index in rng.sample(range(total), 40):
        proof = store.inclusion_proof(org, index, total)
        leaf = merkle.leaf_hash(bytes(entries[index].body))
        assert merkle.verify_inclusion(leaf, index, total, proof, root)
    assert check_log(org)["problems"] == []


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_appenders_to_one_case_keep_its_chain_dense_and_linked(
    tmp_path: Path, case: Any
) -> None:
    """Decision 0008: each case event carries its place in the case and the hash of the one
    before; processes appending to the same case at once must never share or skip a place."""
    env = _env(tmp_path, _database_url())
    before = LedgerEntry.objects.filter(case=case).count()
    procs = [
        _worker(env, "append", "--org", case.org.slug, "--count", "25", "--tag", f"w{i}",
                "--case", case.ref, "--wait", stdin=subprocess.PIPE)
        for i in range(PROCESSES)
    ]  # fmt: skip
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "READY", p.stderr
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    events = list(LedgerEntry.objects.filter(case=case).order_by("index"))
    assert len(events) == before + PROCESSES * 25
    assert [e.case_seq for e in events] == list(range(1, len(events) + 1))
    for previous, event in itertools.pairwise(events):
        body = json.loads(bytes(event.body))
        assert (body["seq"], body["prev"]) == (event.case_seq, bytes(previous.leaf_hash).hex())
    assert check_log(case.org)["problems"] == []


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_sigkilled_appenders_lose_nothing_acked_and_leave_nothing_partial(tmp_path: Path) -> None:
    org = _make_org()
    env = _env(tmp_path, _database_url())
    rng = random.Random()
    acked: list[int] = []
    for _ in range(3):
        proc = _worker(env, "append", "--org", org.slug)
        try:
            acked += _kill_after_acks(proc, 30, rng)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        report = check_log(org, acked)
        assert report["problems"] == [], report
        assert report["size"] >= max(acked) + 1
        assert report["nodes"] == merkle.stored_node_count(report["size"], store.STORED_FROM_LEVEL)
    assert len(set(acked)) == len(acked) >= 90
    before = store.size(org)
    out = _run_worker(env, "append", "--org", org.slug, "--count", "5")
    assert _acks(out.splitlines()) == list(range(before, before + 5))
    assert check_log(org, acked)["problems"] == []


@pytest.mark.offline  # its own SQLite file, whatever DATABASE_URL says: the same in both passes
def test_sigkilled_appenders_on_a_sqlite_file(tmp_path: Path) -> None:
    """SQLite's crash path is its own (WAL recovery, IMMEDIATE transactions): a real file."""
    env = _env(tmp_path, f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    _run_worker(env, "setup", "--org", "crash", "--user", "crash-admin")
    rng = random.Random()
    acked: list[int] = []
    for _ in range(3):
        proc = _worker(env, "append", "--org", "crash")
        try:
            acked += _kill_after_acks(proc, 30, rng)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        report = json.loads(
            _run_worker(env, "check", "--org", "crash", "--acked", ",".join(map(str, acked)))
        )
        assert report["problems"] == [], report
        assert report["size"] == report["head"] >= max(acked) + 1
    assert len(set(acked)) == len(acked) >= 90
    size = report["size"]
    out = _run_worker(env, "append", "--org", "crash", "--count", "5")
    assert _acks(out.splitlines()) == list(range(size, size + 5))
    report = json.loads(_run_worker(env, "check", "--org", "crash"))
    assert report["problems"] == [] and report["size"] == size + 5


# The append-only triggers, on whichever database the suite runs on.


@pytest.fixture
def logged_org(db: Any) -> Any:
    org = _make_org("trig")
    actor = admin_actor(org.slug)
    from offboard.ledger.recorder import record_event

    for i in range(EVENTS):  # enough for stored nodes (one per 16 leaves)
        with transaction.atomic():
            record_event(actor=actor, type="test.appended", data={"seq": i})
    return org


EVENTS = 33


def _refused(sql: str, params: list[Any]) -> None:
    with (
        pytest.raises(DatabaseError, match=triggers.MESSAGE),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def test_raw_sql_update_and_delete_hit_the_append_only_triggers(logged_org: Any) -> None:
    pk = logged_org.pk
    _refused("UPDATE ledger_entry SET type='x' WHERE org_id = %s", [pk])
    _refused("UPDATE ledger_entry SET body = %s WHERE org_id = %s", [b"forged", pk])
    _refused("DELETE FROM ledger_entry WHERE org_id = %s", [pk])
    _refused('UPDATE ledger_node SET "index" = "index" + 100 WHERE org_id = %s', [pk])
    _refused("DELETE FROM ledger_node WHERE org_id = %s", [pk])
    # The redaction shape with anything else changed is refused too.
    _refused(
        "UPDATE ledger_entry SET body='', redacted=true, type='x' WHERE org_id = %s AND \"index\" = 1",
        [pk],
    )
    assert LedgerEntry.objects.filter(org=logged_org).count() == EVENTS
    assert LedgerNode.objects.filter(org=logged_org).count() == 3  # (4, 0), (4, 1), (5, 0)
    assert set(LedgerEntry.objects.filter(org=logged_org).values_list("type", flat=True)) == {
        "test.appended"
    }


def test_raw_sql_redaction_is_the_one_update_allowed(logged_org: Any) -> None:
    where = 'WHERE org_id = %s AND "index" = 1'
    leaf = bytes(LedgerEntry.objects.get(org=logged_org, index=1).leaf_hash)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE ledger_entry SET body='', redacted=true {where}", [logged_org.pk])
        assert cursor.rowcount == 1
        cursor.execute(
            f"SELECT length(body), redacted, leaf_hash FROM ledger_entry {where}", [logged_org.pk]
        )
        length, redacted, stored_leaf = cursor.fetchone()
    assert (length, bool(redacted), bytes(stored_leaf)) == (0, True, leaf)
    # Once redacted, a row is final: not even a second redaction.
    _refused(f"UPDATE ledger_entry SET body='', redacted=true {where}", [logged_org.pk])
    assert check_log(logged_org)["problems"] == []
