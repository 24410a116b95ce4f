"""Fan-out: each recorded event becomes one delivery per matching active endpoint of its
organization, written in the event's own transaction (so a committed event never loses its
deliveries, and a rolled-back one leaves none).

It runs inside every `record_event`, so it costs one indexed query when the organization has
no active endpoint (measured in tests/webhooks/test_fanout.py) and nothing more. Events about
the webhooks themselves and other security settings never leave (`PRIVATE_TYPES`): they would
loop (a disabled endpoint's event posted to the endpoints) or tell a receiver of secrets.
"""

import json
import re
import uuid
from collections.abc import Iterable

from django.db import connection, transaction

from offboard.jobs.engine import enqueue
from offboard.ledger.models import LedgerEntry
from offboard.webhooks.models import WebhookDelivery, WebhookEndpoint

# Types (or `prefix.*`) that are never delivered, whatever an endpoint's filter says.
PRIVATE_TYPES = (
    "webhook_endpoint.*",
    "webhook_delivery.*",
    "api_token.*",
    "calendar_feed.*",
    "inbound_endpoint.*",
    "signing_key.*",
    "signing_certificate.*",
    "member.password_changed",
)
MAX_FILTERS = 50
# An event type (`case.closed`), a prefix of one (`case.*`), or `*` for all.
_NAME = r"[a-z][a-z0-9_]{0,40}"
FILTER = re.compile(rf"\*|{_NAME}(\.{_NAME})*\.({_NAME}|\*)")


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether `event_type` is one of `patterns` (exact types or `prefix.*`)."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def private(event_type: str) -> bool:
    return matches(PRIVATE_TYPES, event_type)


def wanted(event_types: list[str], event_type: str) -> bool:
    """Whether an endpoint with this filter (empty: everything) is owed this event."""
    return not private(event_type) and (not event_types or matches(event_types, event_type))


def _active_filters(org_id: int) -> list[tuple[int, list[str]]]:
    """(endpoint id, filter) of the organization's active endpoints: one indexed read, then
    kept for the rest of the transaction (`_cached`)."""
    cache = _cached()
    if cache is not None and org_id in cache:
        return cache[org_id]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, event_types FROM webhook_endpoint WHERE org_id = %s AND state = %s",
            [org_id, WebhookEndpoint.State.ACTIVE.value],
        )
        rows = cursor.fetchall()
    found = []
    for pk, types in rows:
        if isinstance(types, str):  # SQLite hands JSON back as text
            types = json.loads(types)
        found.append((int(pk), list(types or [])))
    if cache is None:
        cache = {}
        transaction.on_commit(_Sentinel(cache))
    cache[org_id] = found
    return found


class _Sentinel:
    """Registered with `on_commit` when a transaction first reads the endpoints: it holds
    that transaction's cache. Django drops it from `run_on_commit` when the transaction (or
    the savepoint it was registered in) ends, so the cache never outlives what it read."""

    def __init__(self, cache: dict[int, list[tuple[int, list[str]]]]) -> None:
        self.cache = cache

    def __call__(self) -> None:
        self.cache.clear()


def _cached() -> dict[int, list[tuple[int, list[str]]]] | None:
    for registered in reversed(connection.run_on_commit):  # (savepoints, func, robust)
        func = registered[1]
        if isinstance(func, _Sentinel):
            return func.cache
    return None


def forget() -> None:
    """An endpoint changed in this transaction: read them again at the next event."""
    cache = _cached()
    if cache is not None:
        cache.clear()


def new_msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def fan_out(entry: LedgerEntry) -> None:
    """The deliveries `entry` owes, written now (the caller's transaction is open)."""
    if private(entry.type):
        return
    endpoints = _active_filters(entry.org_id)
    if not endpoints:
        return
    owed = [
        WebhookDelivery(
            org_id=entry.org_id,
            msg_id=new_msg_id(),
            endpoint_id=pk,
            entry_id=entry.pk,
            event_type=entry.type,
            event_index=entry.index,
            created_at=entry.at,
            next_attempt_at=entry.at,
        )
        for pk, types in endpoints
        if wanted(types, entry.type)
    ]
    if owed:
        WebhookDelivery.objects.bulk_create(owed)
        # In the event's transaction: the job commits with the deliveries (decision 0021).
        enqueue("offboard.jobs.tasks.deliver_webhooks", [d.pk for d in owed])
