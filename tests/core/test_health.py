"""The health endpoints (offboard.health): liveness reads nothing; readiness checks the
database, evidence storage, the job queue and the signing keys, and names what fails without
saying where it is."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

from offboard import health
from offboard.jobs.engine import enqueue
from offboard.ledger.keys import active_key

REDIS_URL = "redis://127.0.0.1:6379/13"


def _ready(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/health/ready")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response.status_code, json.loads(response.content)


def test_liveness_answers_without_touching_the_database(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/health/live")
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}
    assert Client().post("/health/live").status_code == 405


def test_a_healthy_installation_is_ready_and_says_how_deep_the_queue_is(org):
    active_key(org)
    enqueue("offboard.jobs.tasks.sweep")
    status, body = _ready(Client())
    assert status == 200 and body["status"] == "ok"
    assert set(body["checks"]) == {"database", "storage", "jobs", "signing_keys"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["jobs"]["backend"] == "database"
    assert body["checks"]["jobs"]["depth"] >= 1
    assert body["checks"]["signing_keys"]["active_keys"] >= 1


def test_storage_that_cannot_be_written_is_not_ready_and_the_path_stays_private(
    org, settings, tmp_path
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the storage directory should be")
    settings.MEDIA_ROOT = str(blocker / "files")  # cannot be made, whoever runs the test
    status, body = _ready(Client())
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["storage"] == {
        "ok": False,
        "problem": "the evidence storage directory cannot be made",
        "ms": body["checks"]["storage"]["ms"],
    }
    assert body["checks"]["database"]["ok"]
    assert str(tmp_path) not in json.dumps(body)


def test_a_lost_private_signing_key_is_not_ready(org, settings):
    key = active_key(org)
    Path(key.private_key_path).unlink()
    status, body = _ready(Client())
    assert status == 503
    assert body["checks"]["signing_keys"]["ok"] is False
    assert "no private signing key" in body["checks"]["signing_keys"]["problem"]
    assert key.private_key_path not in json.dumps(body)


def test_a_database_that_fails_is_not_ready(db, monkeypatch):
    class Down:
        def cursor(self) -> Any:
            raise OperationalError("connection refused to 10.0.0.5:5432 as offboard")

    monkeypatch.setattr(health, "connection", Down())
    status, body = _ready(Client())
    assert status == 503
    assert body["checks"]["database"] == {
        "ok": False,
        "problem": "database is unavailable",
        "ms": body["checks"]["database"]["ms"],
    }
    assert "10.0.0.5" not in json.dumps(body)


def test_a_database_not_migrated_to_this_code_is_not_ready(org, monkeypatch):
    """A new version's process started before `offboard init` migrated the database."""
    from django.db import connection

    monkeypatch.setattr(health, "_MIGRATED", False)
    with connection.cursor() as cursor:  # as if the latest migration had not run (rolled back)
        cursor.execute(
            "DELETE FROM django_migrations WHERE id = (SELECT MAX(id) FROM django_migrations)"
        )
    status, body = _ready(Client())
    assert status == 503
    assert body["checks"]["database"]["problem"] == (
        "1 database migration(s) are not applied yet: run `offboard init`"
    )
    assert body["checks"]["storage"]["ok"] is True


def test_readiness_reads_the_migration_plan_once_per_process(org, monkeypatch):
    monkeypatch.setattr(health, "_MIGRATED", False)
    calls = []
    real = health.pending_migrations
    monkeypatch.setattr(health, "pending_migrations", lambda: calls.append(1) or real())
    assert _ready(Client())[0] == 200
    assert _ready(Client())[0] == 200
    assert calls == [1]


@pytest.mark.parametrize("reachable", [True, False])
def test_the_redis_queue_is_checked_when_jobs_run_on_redis(db, settings, reachable):
    import redis

    url = REDIS_URL if reachable else "redis://127.0.0.1:9/0"
    if reachable:
        try:
            redis.Redis.from_url(url).ping()
        except redis.ConnectionError as exc:
            if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
                pytest.fail(f"Redis is not reachable at {url}: {exc}", pytrace=False)
            pytest.skip(f"Redis is not reachable at {url}")
    settings.OFFBOARD_JOBS_BACKEND = "redis"
    settings.RQ_QUEUES = {"default": {"URL": url, "DEFAULT_TIMEOUT": 60, "SOCKET_TIMEOUT": 1}}
    status, body = _ready(Client())
    jobs = body["checks"]["jobs"]
    if reachable:
        assert jobs["ok"] and jobs["backend"] == "redis" and jobs["depth"] >= 0
    else:
        assert status == 503 and jobs == {
            "ok": False,
            "problem": "jobs is unavailable",
            "ms": jobs["ms"],
        }
