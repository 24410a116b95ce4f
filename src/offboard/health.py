"""Health endpoints for a load balancer or an orchestrator (issue 16, docs/deploy.md).

`/health/live` answers whether this process serves requests at all: it reads nothing, so a
database that is down never gets a healthy process restarted. `/health/ready` answers whether
it can do its work now: the database answers, evidence storage can be written, the job queue
is reachable (and how deep and how old it is), and the signing keys are where the checkpoints
need them. A failed check is a 503 naming the check; the body never holds a secret, a path or
an address — the log line beside it does, for the operator.
"""

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


class CheckFailed(Exception):
    """A readiness check that does not hold; the message is safe to show anyone."""


_MIGRATED = False  # once every migration of this code is applied, it stays applied


def pending_migrations() -> int:
    """How many of this code's migrations the database has not applied yet."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def check_database() -> dict[str, Any]:
    """The database answers, and its schema is this code's: a process of a new version started
    before `offboard init` migrated the database would fail on its first query of a new column,
    so it is not ready until then (an upgrade's order: docs/deploy.md)."""
    global _MIGRATED
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise CheckFailed("the database gave a wrong answer")
    if not _MIGRATED:
        pending = pending_migrations()
        if pending:
            raise CheckFailed(
                f"{pending} database migration(s) are not applied yet: run `offboard init`"
            )
        _MIGRATED = True
    return {}


def check_storage() -> dict[str, Any]:
    """Evidence storage takes new files: a local directory exists (or can be made) and is
    writable; a bucket answers one request (evidence/storage.py, `check_ready`)."""
    from offboard.evidence import storage

    try:
        return storage.check_ready()
    except storage.NotReady as exc:
        raise CheckFailed(str(exc)) from None


def check_jobs() -> dict[str, Any]:
    from django.utils import timezone

    if settings.OFFBOARD_JOBS_BACKEND == "redis":
        import django_rq

        queue = django_rq.get_queue("default")
        queue.connection.ping()
        return {"backend": "redis", "depth": len(queue)}
    from django_tasks_db.models import DBTaskResult

    ready = DBTaskResult.objects.ready()
    oldest = ready.order_by("enqueued_at").values_list("enqueued_at", flat=True).first()
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return {"backend": "database", "depth": ready.count(), "oldest_seconds": round(age, 1)}


def check_signing_keys() -> dict[str, Any]:
    """The key directory takes new keys, and every active checkpoint key's private half is there
    to sign with (`ledger/keys.py` reads it at each checkpoint)."""
    from offboard.ledger.models import SigningKey

    key_dir = Path(settings.OFFBOARD_KEY_DIR)
    try:  # as the first organization's first key would
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        raise CheckFailed("the key directory cannot be made") from None
    if not os.access(key_dir, os.R_OK | os.W_OK | os.X_OK):
        raise CheckFailed("the key directory is missing or not readable and writable")
    from offboard.ledger.keys import unusable

    active = list(SigningKey.objects.filter(retired_at__isnull=True))
    problems = unusable(active)  # a token key: found on its token with the PIN (decision 0033)
    if problems:
        for key, problem in problems:
            log.warning("signing key %s of %s cannot sign: %s", key.key_id, key.name, problem)
        on_token = sum(key.backend == "pkcs11" for key, _ in problems)
        raise CheckFailed(
            f"{len(problems)} organization(s) have no private signing key on this machine"
            + (f" ({on_token} on the PKCS#11 token, which cannot be used)" if on_token else "")
        )
    return {"active_keys": len(active)}


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": check_database,
    "storage": check_storage,
    "jobs": check_jobs,
    "signing_keys": check_signing_keys,
}


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    results: dict[str, Any] = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            details = check()
        except CheckFailed as exc:
            healthy = False
            results[name] = {"ok": False, "problem": str(exc)}
            log.warning("readiness check %s failed: %s", name, exc)
        except Exception as exc:
            healthy = False
            results[name] = {"ok": False, "problem": f"{name} is unavailable"}
            log.warning("readiness check %s failed: %r", name, exc)
        else:
            results[name] = {"ok": True, **details}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    status = "ok" if healthy else "unavailable"
    return JsonResponse({"status": status, "checks": results}, status=200 if healthy else 503)
