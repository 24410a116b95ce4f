"""Prometheus metrics at `/metrics` (issue 16, docs/deploy.md).

- `offboard_request_duration_seconds` — a histogram of every request's latency by method,
  route *name* (never the raw path, so case references and tokens stay out) and status.
- `offboard_jobs_queue_depth`, `offboard_jobs_oldest_age_seconds` — jobs waiting, and how long
  the oldest has waited (database backend; Redis reports depth only).
- `offboard_ledger_entries` — entries in every organization's log together.
- `offboard_ledger_unsigned_entries`, `offboard_checkpoint_age_seconds` — entries no checkpoint
  signs yet, and the age of the stalest organization's latest checkpoint among logs with
  unsigned entries: a checkpoint job that stopped shows here first.

The gauges are read from the database when scraped, so every process answers the same. The
histogram lives in the process that served the request: under gunicorn set
`PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by its workers (prometheus_client's
multiprocess mode), and every worker's scrape then reports all of them. With
`OFFBOARD_METRICS_TOKEN` set, a scrape must send `Authorization: Bearer <token>`.
"""

import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Subquery, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

REQUEST_DURATION = Histogram(
    "offboard_request_duration_seconds",
    "Time to answer a request, by method, route name and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class RequestMetricsMiddleware:
    """Times each request; first in the chain, so refusals by later middleware count too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.view_name if match is not None and match.view_name else "unmatched"
        REQUEST_DURATION.labels(request.method or "", route, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


class DatabaseCollector(Collector):
    """The gauges, read from the database at each scrape (three queries)."""

    def collect(self) -> Iterator[Metric]:
        from offboard.health import check_jobs
        from offboard.ledger.models import Checkpoint, LogHead

        jobs = check_jobs()
        yield GaugeMetricFamily(
            "offboard_jobs_queue_depth", "Jobs waiting to run.", value=jobs["depth"]
        )
        if "oldest_seconds" in jobs:
            yield GaugeMetricFamily(
                "offboard_jobs_oldest_age_seconds",
                "How long the oldest waiting job has waited.",
                value=jobs["oldest_seconds"],
            )
        latest = Checkpoint.objects.filter(org_id=OuterRef("org_id")).order_by("-size", "-id")
        heads = LogHead.objects.annotate(
            signed=Subquery(latest.values("size")[:1]),
            signed_at=Subquery(latest.values("created_at")[:1]),
        )
        total = LogHead.objects.aggregate(n=Sum("size"))["n"] or 0
        unsigned, stalest = 0, 0.0
        now = timezone.now()
        for head in heads.filter(size__gt=0).values("size", "signed", "signed_at"):
            behind = head["size"] - (head["signed"] or 0)
            if behind > 0:
                unsigned += behind
                if head["signed_at"] is not None:
                    stalest = max(stalest, (now - head["signed_at"]).total_seconds())
        yield GaugeMetricFamily(
            "offboard_ledger_entries", "Entries in all organizations' logs.", value=total
        )
        yield GaugeMetricFamily(
            "offboard_ledger_unsigned_entries",
            "Entries no checkpoint signs yet, in all organizations' logs.",
            value=unsigned,
        )
        yield GaugeMetricFamily(
            "offboard_checkpoint_age_seconds",
            "Age of the stalest latest checkpoint among logs with unsigned entries (0: none).",
            value=round(stalest, 1),
        )


def _registry(*, gauges: bool = True) -> CollectorRegistry:
    """What a scrape reports: the request histogram (this process's, or with
    PROMETHEUS_MULTIPROC_DIR every worker's), and the database's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # every worker's histogram, from the shared directory
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    if gauges:
        registry.register(DatabaseCollector())
    return registry


class _ProcessMetrics(Collector):
    """This process's own metrics (the request histogram, the process collectors)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token: Any = getattr(settings, "OFFBOARD_METRICS_TOKEN", "")
    if token:
        sent = request.headers.get("Authorization", "")
        if not secrets.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            response = HttpResponse(
                "Send the metrics token: Authorization: Bearer <OFFBOARD_METRICS_TOKEN>.\n",
                status=401,
                content_type="text/plain; charset=utf-8",
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
