"""A fleet on one machine (issue 16, part 3): 4 web processes (`offboard serve --prod`, each its
own gunicorn) and 2 `offboard worker`s on a scratch PostgreSQL database, jobs on Redis, files
in storage every process shares, receipts to a real SMTP server. Client threads run client
exits end to end over every web process for a fixed time (tests/fleet/load.py); mid-run one
web process (its whole process group: a lost machine) and the worker holding a closure
receipt are killed with SIGKILL. Then every acknowledged write is there, the log is dense and
verifies, each checkpoint extends the one before, and each receipt went out exactly once.

Not part of `make test` (marker `fleet`): `make test-fleet`, which `.ci/run` also runs.
"""

import asyncio
import base64
import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests
from aiosmtpd.controller import Controller
from tests.fleet.load import Setup, Tally, drive, read_workspaces, sign_in
from tests.smtp import LocalSMTP, _Handler, free_port

from offboard.ledger import merkle
from offboard.ledger.note import Verifier, open_checkpoint

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[2]
OFFBOARD = [sys.executable, "-m", "offboard"]
WEB, WORKERS, CLIENTS = 4, 2, 4
LOAD_SECONDS = float(os.environ.get("OFFBOARD_FLEET_SECONDS", "35"))
REDIS_URL = "redis://127.0.0.1:6379/12"  # a database of its own, emptied here
PASSWORD = "a long enough passphrase 1"
ADMIN_URL = os.environ.get(
    "OFFBOARD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/offboard"
).rsplit("/", 1)[0]


def _unavailable(reason: str) -> None:
    if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


class _HoldingHandler(_Handler):
    """Holds the first session to a client's address after `hold` is set, at RCPT (before the
    message is handed over), until the test gives its verdict: `killed` (its sender was
    SIGKILLed) or `pass`."""

    server: "HoldingSMTP"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        smtp = self.server
        if smtp.hold.is_set() and address.endswith("@client.example"):
            smtp.hold.clear()
            decision: dict[str, str] = {}
            smtp.held = (session.peer[1], address, decision)
            while "verdict" not in decision:
                await asyncio.sleep(0.05)
            if decision["verdict"] == "killed":
                return "421 4.3.0 Closing the connection"
        return await super().handle_RCPT(server, session, envelope, address, options)


class HoldingSMTP(LocalSMTP):
    """The web processes mail the client too (the portal's confirmation): a held session the
    test finds is not a worker's gets the verdict `pass` and goes through."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = threading.Event()
        self.held: tuple[int, str, dict[str, str]] | None = None

    def up(self) -> None:
        self.controller = Controller(
            _HoldingHandler(self), hostname=self.host, port=self.port, ready_timeout=10
        )
        self.controller.start()


def _holder(peer_port: int, pids: list[int]) -> int | None:
    """Which of `pids` owns the TCP socket whose local port is `peer_port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == peer_port:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.1)
    return found


STORAGE = os.environ.get("OFFBOARD_FLEET_STORAGE", "s3")  # or "local"


def storage_env(kind: str, tmp_path: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    """Where every process keeps evidence files: an S3 server on loopback (moto), or `local`, a
    directory they all share (OFFBOARD_VAR_DIR)."""
    if kind == "local":
        return {}
    from tests.s3server import moto_server, new_bucket, s3_env

    url = stack.enter_context(moto_server(tmp_path))
    return s3_env(url, new_bucket(url))


class Fleet:
    """The scratch database, the SMTP server and the processes; `close()` ends them all."""

    def __init__(self, tmp_path: Path, storage: str) -> None:
        self.tmp = tmp_path
        self.stack = contextlib.ExitStack()
        self.db_name = f"offboard_fleet_{uuid.uuid4().hex[:8]}"
        self.smtp = HoldingSMTP()
        self.web: dict[int, subprocess.Popen[bytes]] = {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "offboard.settings",
            "OFFBOARD_DEBUG": "false",
            "OFFBOARD_SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"{ADMIN_URL}/{self.db_name}",
            "OFFBOARD_DB_CONN_MAX_AGE": "60",
            "OFFBOARD_VAR_DIR": str(tmp_path / "var"),
            "OFFBOARD_KEY_DIR": str(tmp_path / "keys"),
            "OFFBOARD_ADMIN_PASSWORD": PASSWORD,
            "OFFBOARD_WEB_WORKERS": "1",
            "OFFBOARD_JOBS_BACKEND": "redis",
            "OFFBOARD_REDIS_URL": REDIS_URL,
            "OFFBOARD_EMAIL_BACKEND": "smtp",
            "OFFBOARD_SMTP_HOST": self.smtp.host,
            "OFFBOARD_SMTP_PORT": str(self.smtp.port),
            "OFFBOARD_SMTP_TIMEOUT": "3",
            # Receipts are the workers' alone (no after-commit thread in the web process), so
            # killing the worker that holds one is killing a job in hand.
            "OFFBOARD_RECEIPT_ON_COMMIT": "off",
            "OFFBOARD_TSA_ON_COMMIT": "off",
            "OFFBOARD_TSA_URLS": "",
            "OFFBOARD_CHECKPOINT_INTERVAL": "3",
            "OFFBOARD_SWEEP_INTERVAL": "1",
            "OFFBOARD_LEASE_MARGIN": "1",  # a receipt's claim: 2 × 3 s + 5 × 1 s
            # Every client is 127.0.0.1: the per-address portal limit would count them as one.
            "OFFBOARD_PORTAL_RATE_PER_IP": "0",
            **storage_env(storage, tmp_path, self.stack),
        }
        self.ports = [free_port() for _ in range(WEB)]
        self.bases = [f"http://127.0.0.1:{port}" for port in self.ports]

    # --- set up --------------------------------------------------------------------------

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(f"{ADMIN_URL}/postgres", autocommit=True, connect_timeout=3)

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            return conn.execute(query, args).fetchall()

    def start(self) -> Setup:
        try:
            self.admin().close()
        except psycopg.OperationalError as exc:
            _unavailable(f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}")
        try:
            redis.Redis.from_url(REDIS_URL).flushdb()
        except redis.ConnectionError as exc:
            _unavailable(f"Redis is not running at {REDIS_URL}: {exc}")
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.smtp.up()
        # The first web process collects the static files while the database is migrated.
        self.start_web(0)
        self.run("init", "--org", "acme", "--org-name", "Acme", "--email", "admin@acme.example")
        seeded = self.run_python("-m", "tests.fleet.seed", str(CLIENTS))
        setup = json.loads(seeded)
        self.wait_ready(0)
        for n in range(1, WEB):  # their static files are there: they skip collecting
            self.start_web(n)
        for n in range(1, WEB):
            self.wait_ready(n)
        for _ in range(WORKERS):
            self.workers.append(self.spawn([*OFFBOARD, "worker", "--interval", "0.2"], "worker"))
        return Setup(setup["alice"], setup["bob"], setup["clients"])

    def spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}-{len(list(self.tmp.glob(name + '-*')))}.log", "wb")  # noqa: SIM115
        return subprocess.Popen(
            args,
            env=self.env,
            cwd=self.tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn's master and workers
        )

    def start_web(self, n: int) -> None:
        self.web[n] = self.spawn(
            [*OFFBOARD, "serve", "--prod", "--port", str(self.ports[n])], "web"
        )

    def wait_ready(self, n: int) -> None:
        def ready() -> bool:
            assert self.web[n].poll() is None, f"web process {n} exited: see {self.tmp}"
            try:
                return requests.get(f"{self.bases[n]}/health/ready", timeout=10).status_code == 200
            except requests.RequestException:
                return False

        _wait(ready, 150, f"web process {n} to be ready")

    def run(self, *args: str) -> str:
        return self.run_python("-m", "offboard", *args)

    def run_python(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # --- faults --------------------------------------------------------------------------

    def lose_web(self, n: int) -> None:
        """SIGKILL gunicorn's master and its workers at once, as a machine that is lost."""
        os.killpg(self.web[n].pid, signal.SIGKILL)
        self.web[n].wait(timeout=10)

    def kill_worker_in_a_receipt(self) -> tuple[int, str]:
        """Hold the next receipt at the SMTP server, SIGKILL the worker sending it, let go."""
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            self.smtp.held = None
            self.smtp.hold.set()
            port, address, decision = _wait(lambda: self.smtp.held, 40, "a closure receipt")
            pid = _holder(port, [w.pid for w in self.workers])
            if pid is None:  # a web process's portal confirmation: let it through
                decision["verdict"] = "pass"
                continue
            os.kill(pid, signal.SIGKILL)
            next(w for w in self.workers if w.pid == pid).wait(timeout=10)
            decision["verdict"] = "killed"
            return pid, address
        raise AssertionError("no worker sent a closure receipt within 40 s")

    # --- tear down -----------------------------------------------------------------------

    def close(self) -> None:
        for process in [*self.web.values(), *self.workers]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.web.values(), *self.workers]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.smtp.down()
        # The processes' logs, kept for a reader of a failure (test-artifacts/ is not in git).
        kept = ROOT / "test-artifacts" / "fleet"
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        for log in self.tmp.glob("*.log"):
            shutil.copy(log, kept / log.name)
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        redis.Redis.from_url(REDIS_URL).flushdb()
        self.stack.close()


@pytest.fixture(params=[STORAGE])
def fleet(request: Any, tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(tmp_path, request.param)
    try:
        yield running
    finally:
        running.close()


def test_a_fleet_keeps_every_acknowledged_write_through_a_lost_web_process_and_worker(
    fleet: Fleet,
) -> None:
    t0 = time.monotonic()
    setup = fleet.start()
    print(f"fleet up in {time.monotonic() - t0:.1f} s")
    tally, stop, reads = Tally(), threading.Event(), []
    cookie = sign_in(fleet.bases[0], "admin", PASSWORD)
    threads = [
        threading.Thread(
            target=drive,
            args=(fleet.bases, setup, setup.clients[n], f"c{n}", tally, stop),
            daemon=True,
        )
        for n in range(CLIENTS)
    ]
    threads.append(
        threading.Thread(
            target=read_workspaces, args=(fleet.bases, cookie, tally, stop, reads), daemon=True
        )
    )
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(LOAD_SECONDS * 0.3)
    fleet.lose_web(1)
    killed_pid, held_address = fleet.kill_worker_in_a_receipt()
    time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - started)))
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a client thread did not finish its journey"
    live = [base for n, base in enumerate(fleet.bases) if n != 1]

    acks = tally.acks
    kinds = Counter(a.kind for a in acks)
    closures = [a for a in acks if a.kind == "closure"]
    summary = (
        f"{tally.journeys} journeys, {tally.requests} requests, {tally.connection_errors} "
        f"connection errors, acknowledged: {dict(kinds)}; abandoned: {tally.abandoned}"
    )
    print(summary)
    assert len(closures) >= 4, summary
    assert tally.connection_errors > 0, "no client ever met the lost web process"
    # Every abandoned journey was abandoned because a write's answer was lost.
    assert all("Connection" in a or "409" in a for a in tally.abandoned), tally.abandoned

    # 1. The surviving worker drains the queue: every closure's receipt is sent.
    refs = [a.ref for a in closures]

    def all_sent() -> bool:
        rows = fleet.sql(
            "SELECT c.ref, r.state FROM notifications_closure_receipt r "
            "JOIN cases_offboardingcase c ON c.id = r.case_id WHERE c.ref = ANY(%s)",
            refs,
        )
        return len(rows) == len(refs) and all(state == "sent" for _, state in rows)

    _wait(all_sent, 90, "every closure receipt to be sent")
    time.sleep(1.5)  # a second send would have arrived by now

    # 2. Each receipt went out exactly once, with its Message-ID; the killed one included.
    per_ref = Counter()
    for message in fleet.smtp.received:
        subject = str(message.message["Subject"])
        per_ref.update(ref for ref in refs if subject.endswith(f"your closure certificate ({ref})"))
    assert {ref: per_ref[ref] for ref in refs} == dict.fromkeys(refs, 1)
    rows = fleet.sql(
        "SELECT c.ref, r.message_id, r.attempts FROM notifications_closure_receipt r "
        "JOIN cases_offboardingcase c ON c.id = r.case_id"
    )
    sent_ids = {str(m.message["Message-ID"]).strip() for m in fleet.smtp.received}
    assert {message_id for _, message_id, _ in rows} <= sent_ids
    retried = [ref for ref, _, attempts in rows if attempts > 1]
    assert retried, (
        f"the receipt held by the killed worker {killed_pid} ({held_address}) was not retried"
    )

    # 3. Every acknowledged write is there, with its content.
    http = requests.Session()
    alice = {"Authorization": f"Bearer {setup.alice}"}

    def get(path: str) -> Any:
        response = http.get(f"{live[0]}/api/v1{path}", headers=alice, timeout=30)
        assert response.status_code == 200, (path, response.text[:300])
        return response

    cases = {a.ref: get(f"/cases/{a.ref}").json() for a in acks if a.kind == "case"}
    events = {
        ref: [e["type"] for e in get(f"/cases/{ref}/events?limit=500").json()["items"]]
        for ref in cases
    }
    for ack in acks:
        d = ack.detail
        if ack.kind == "evidence":
            assert get(f"/evidence/{d['sha256']}/content").content == d["content"]
            continue
        case = cases[ack.ref]
        registers = case["registers"]
        if ack.kind == "case":
            assert [f["sha256"] for f in case["trigger_evidence"]] == [d["trigger_evidence"]]
        elif ack.kind == "step":
            (step,) = [s for s in case["steps"] if s["key"] == d["key"]]
            assert (step["status"], step["note"]) == ("done", d["note"])
        elif ack.kind in ("grant", "grant_verified"):
            (grant,) = [g for g in registers["access_grants"] if g["id"] == d["id"]]
            assert grant["principal"].startswith("agent ")
            if ack.kind == "grant_verified":
                assert (grant["status"], grant["verification_level"]) == ("revoked", "attested")
        elif ack.kind == "portal":
            (item,) = [i for i in registers["deliverables"] if i["id"] == d["deliverable_id"]]
            assert (item["status"], item["source"]) == ("accepted", "client_portal")
        elif ack.kind == "settlement":
            (item,) = [i for i in registers["settlements"] if i["id"] == d["id"]]
            assert (item["status"], item["reference"]) == ("paid", d["reference"])
        elif ack.kind == "approval":
            assert [a["comment"] for a in case["approvals"] if a["id"] == d["id"]] == [d["comment"]]
        elif ack.kind == "closure":
            assert case["state"] == "closed"
            assert "case.closed" in events[ack.ref]
        elif ack.kind == "export":
            assert "case.exported" in events[ack.ref]
        else:
            raise AssertionError(f"an acknowledgement of an unknown kind: {ack.kind}")

    # 4. The log's indices are dense and unique, and the ledger verifies.
    ((count, distinct, low, high),) = fleet.sql(
        'SELECT count(*), count(DISTINCT "index"), min("index"), max("index") FROM ledger_entry'
    )
    assert (count, distinct, low, high) == (count, count, 0, count - 1)
    verified = subprocess.run(
        [*OFFBOARD, "ledger", "verify", "--json"],
        env=fleet.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True

    # 5. Each checkpoint is signed, and consistent with the one before (proofs from the API,
    #    checked here with the RFC 9162 verifier).
    verifiers = [
        Verifier.from_verifier_key(key)
        for (key,) in fleet.sql("SELECT verifier_key FROM ledger_signing_key")
    ]
    checkpoints = [
        (size, bytes(root), note)
        for size, root, note in fleet.sql(
            "SELECT size, root, signed_note FROM ledger_checkpoint ORDER BY size, id"
        )
    ]
    assert len(checkpoints) >= 3
    for size, root, note in checkpoints:
        opened = open_checkpoint(note, verifiers)
        assert (opened.size, opened.root) == (size, root)
    for (old, old_root, _), (new, new_root, _) in itertools.pairwise(checkpoints):
        proof = get(f"/ledger/proof/consistency?from={old}&to={new}").json()
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert merkle.verify_consistency(old, new, old_root, new_root, hashes), (old, new)

    # 6. No process kept state of its own: a session signed in on one process was known to
    #    every other one.
    statuses = Counter(line.rsplit(": ", 1)[1] for line in reads)
    assert statuses["200"] >= 10 and set(statuses) <= {"200"} | {
        s for s in statuses if not s.isdigit()
    }, statuses
