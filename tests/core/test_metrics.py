"""/metrics (offboard.metrics): Prometheus's format, parsed here by prometheus_client's own
parser; request latency by route name, the job queue and the ledger's signing lag read from
the database, an optional token, and one histogram across processes."""

import os
import subprocess
import sys
import textwrap
from typing import Any

from django.db import transaction
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from offboard.jobs.engine import enqueue
from offboard.ledger.checkpoints import issue_checkpoint


def _scrape(client: Client | None = None, **headers: str) -> dict[str, list[Any]]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


def _value(metrics: dict[str, list[Any]], name: str) -> float:
    (sample,) = metrics[name]
    return float(sample.value)


def test_requests_are_timed_by_route_name_never_by_path(case, cast):
    web = Client()
    web.force_login(cast["alice"].user)
    assert web.get(f"/cases/{case.ref}/").status_code == 200
    assert Client().get("/no/such/page/").status_code in (302, 404)
    metrics = _scrape()
    counts = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in metrics["offboard_request_duration_seconds"]
        if s.name == "offboard_request_duration_seconds_count"
    }
    assert counts[("GET", "web:case-detail", "200")] >= 1
    assert any(route == "unmatched" for _, route, _ in counts)
    everything = str(metrics)
    assert case.ref not in everything  # a route's name, never the path that named the case


def test_the_ledger_gauges_show_entries_no_checkpoint_signs_yet(case):
    before = _scrape()
    assert _value(before, "offboard_ledger_entries") > 0
    assert _value(before, "offboard_ledger_unsigned_entries") > 0
    with transaction.atomic():
        issue_checkpoint(org=case.org, reason="test")
    after = _scrape()
    assert _value(after, "offboard_ledger_unsigned_entries") == 0
    assert _value(after, "offboard_checkpoint_age_seconds") == 0
    assert _value(after, "offboard_ledger_entries") == _value(before, "offboard_ledger_entries")


def test_the_job_queue_depth_and_age_are_read_from_the_queue(db):
    empty = _scrape()
    assert _value(empty, "offboard_jobs_queue_depth") == 0
    with transaction.atomic():
        enqueue("offboard.jobs.tasks.sweep")
        enqueue("offboard.jobs.tasks.sweep")
    queued = _scrape()
    assert _value(queued, "offboard_jobs_queue_depth") == 2
    assert _value(queued, "offboard_jobs_oldest_age_seconds") >= 0


def test_with_a_token_set_a_scrape_must_send_it(db, settings):
    settings.OFFBOARD_METRICS_TOKEN = "scrape-me-7f3a"
    refused = Client().get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert b"scrape-me" not in refused.content
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert _scrape(HTTP_AUTHORIZATION="Bearer scrape-me-7f3a")["offboard_ledger_entries"]


PROCESS = textwrap.dedent(
    """
    import os, sys
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    django.setup()
    from django.test.utils import setup_test_environment
    setup_test_environment()
    if sys.argv[1] == "serve":  # requests through the whole middleware chain
        from django.test import Client
        for _ in range(int(sys.argv[2])):
            assert Client().get("/health/live").status_code == 200
    else:  # a scrape of the histogram (the gauges read the database, tested above)
        from offboard.metrics import _registry
        from prometheus_client import generate_latest
        sys.stdout.write(generate_latest(_registry(gauges=False)).decode())
    """
)


def test_under_several_processes_one_scrape_reports_them_all(tmp_path, transactional_db):
    """gunicorn's workers share PROMETHEUS_MULTIPROC_DIR: what two processes timed, a third
    process's scrape reports (the database gauges need no sharing)."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    for n in ("3", "4"):
        subprocess.run([sys.executable, "-c", PROCESS, "serve", n], env=env, check=True)
    scrape = subprocess.run(
        [sys.executable, "-c", PROCESS, "scrape"], env=env, check=True, capture_output=True
    )
    families = {f.name: f.samples for f in text_string_to_metric_families(scrape.stdout.decode())}
    counts = [
        s.value
        for s in families["offboard_request_duration_seconds"]
        if s.name == "offboard_request_duration_seconds_count"
        and s.labels["route"] == "health-live"
    ]
    assert counts == [7.0]
