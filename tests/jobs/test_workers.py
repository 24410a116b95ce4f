"""Several `offboard worker` processes at once, on PostgreSQL and on Redis: each job runs
once; a worker killed mid-job loses nothing (decision 0021).

These need the queue where other processes can reach it: pytest-django's SQLite test
database is in memory, so they run in the PostgreSQL pass (`make test` runs both).
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django_tasks_db.models import DBTaskResult

from offboard.jobs.engine import enqueue
from offboard.ledger import services
from offboard.ledger.models import Timestamp
from tests.ledger.test_concurrency import _database_url
from tests.ledger.test_timestamps import grow
from tests.tsa import LocalTSA

pytestmark = pytest.mark.one_pass("postgresql")

ROOT = Path(__file__).resolve().parents[2]
# Each job takes a while, so that workers started a second apart all find some left.
JOBS, WORKERS, SECONDS = 60, 3, 0.1
REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own, emptied by these tests


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "OFFBOARD_DEBUG": "true",
        "DATABASE_URL": _database_url(),
        "OFFBOARD_VAR_DIR": str(tmp_path / "var"),
        "OFFBOARD_KEY_DIR": str(settings.OFFBOARD_KEY_DIR),
        "OFFBOARD_TSA_ON_COMMIT": "off",
        "OFFBOARD_RECEIPT_ON_COMMIT": "off",
        "OFFBOARD_CHECKPOINT_INTERVAL": "3600",
        "PYTHONUNBUFFERED": "1",
        **more,
    }


@pytest.fixture
def workers() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "offboard", "worker", "--interval", "0.05"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def _wait(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _stopped(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "worker stopped" in output
    return output


def _each_ran_once(directory: Path) -> None:
    traces = {p.name: p.read_text().splitlines() for p in directory.iterdir()}
    assert sorted(traces) == sorted(f"job-{i:03d}" for i in range(JOBS))
    assert [k for k, runs in traces.items() if len(runs) != 1] == []


def test_workers_on_postgresql_run_each_job_once(transactional_db, tmp_path, workers):
    traces = tmp_path / "traces"
    traces.mkdir()
    for i in range(JOBS):
        enqueue("tests.jobs.probe.record", str(traces), f"job-{i:03d}", SECONDS)
    env = _env(tmp_path)
    running = [workers(env) for _ in range(WORKERS)]

    _wait(lambda: len(list(traces.iterdir())) == JOBS, what="the jobs")
    time.sleep(0.5)  # a job run twice would have its second trace by now
    outputs = [_stopped(process) for process in running]

    _each_ran_once(traces)
    results = DBTaskResult.objects.filter(task_path="tests.jobs.probe.record")
    assert {r.status for r in results} == {"SUCCESSFUL"}
    assert all(len(r.worker_ids) == 1 for r in results)
    assert len({r.worker_ids[0] for r in results}) >= 2, outputs  # the work was shared


@pytest.fixture
def redis_queue() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        reason = f"Redis is not running at {REDIS_URL} ({exc}); see TESTING.md"
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


def test_workers_on_redis_run_each_job_once(transactional_db, tmp_path, workers, redis_queue):
    traces = tmp_path / "traces"
    traces.mkdir()
    env = _env(tmp_path, OFFBOARD_JOBS_BACKEND="redis", OFFBOARD_REDIS_URL=redis_queue)
    enqueuer = (
        "import django, sys; django.setup()\n"
        "from offboard.jobs.engine import enqueue\n"
        f"for i in range({JOBS}):\n"
        f"    enqueue('tests.jobs.probe.record', sys.argv[1], f'job-{{i:03d}}', {SECONDS})\n"
    )
    subprocess.run(
        [sys.executable, "-c", enqueuer, str(traces)], env=env, cwd=ROOT, check=True, timeout=60
    )
    running = [workers(env) for _ in range(WORKERS)]

    _wait(lambda: len(list(traces.iterdir())) == JOBS, what="the jobs")
    time.sleep(0.5)
    outputs = [_stopped(process) for process in running]

    _each_ran_once(traces)
    assert "jobs on Redis at 127.0.0.1:6379/13" in outputs[0]
    pids = {line for p in traces.iterdir() for line in p.read_text().splitlines()}
    assert len(pids) >= 2, outputs  # the work was shared (RQ's SimpleWorker: no fork per job)


def test_a_worker_killed_mid_job_loses_nothing(
    transactional_db: Any, tmp_path: Path, workers: Any, tsa: LocalTSA, alice: Any, settings: Any
) -> None:
    """Killed while it waits on the TSA: its job's record stays RUNNING (the engine cannot
    know), the timestamp's claim runs out, and another worker's sweep gets the token — once."""
    settings.OFFBOARD_TSA_URLS = [tsa.url]
    settings.OFFBOARD_TSA_ROOTS = tsa.ca_pem_path
    settings.OFFBOARD_TSA_ON_COMMIT = "off"
    grow(alice)
    tsa.hang_seconds = 10
    tsa.down("hang")
    checkpoint = services.issue_checkpoint(actor=alice)
    env = _env(
        tmp_path,
        OFFBOARD_TSA_URLS=tsa.url,
        OFFBOARD_TSA_ROOTS=tsa.ca_pem_path,
        OFFBOARD_TSA_TIMEOUT="3",
        OFFBOARD_LEASE_MARGIN="0",  # a claim is held for 2 × 3 seconds
        OFFBOARD_SWEEP_INTERVAL="0.5",
    )
    received = tsa.received

    first = workers(env)
    _wait(lambda: tsa.received > received, what="the first worker to ask the TSA")
    first.kill()  # SIGKILL, mid-request
    first.communicate(timeout=30)
    ts = Timestamp.objects.get(checkpoint=checkpoint)
    assert (ts.status, ts.attempts) == ("pending", 1)
    # The job in hand (the checkpoint's, or the sweep's) is on record as still running.
    assert DBTaskResult.objects.filter(status="RUNNING").count() == 1

    tsa.up()
    second = workers(env)
    _wait(lambda: Timestamp.objects.get(pk=ts.pk).status == "granted", what="the token")
    _stopped(second)

    ts.refresh_from_db()
    assert ts.attempts == 2  # the killed attempt, then the sweep's
    assert tsa.received == received + 2
    assert Timestamp.objects.filter(checkpoint=checkpoint).count() == 1
