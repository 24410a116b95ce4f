"""The fan-out runs inside every `record_event`: it must cost next to nothing. With no active
endpoint an event pays one indexed query, and a transaction that records many events pays it
once (the answer is kept for the transaction, and forgotten when an endpoint changes in it or
the transaction ends). Measured on this machine (SQLite, debug off): no difference in
record_event's time beyond noise (docs/webhooks-out.md)."""

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from offboard.ledger import recorder
from offboard.webhooks.fanout import fan_out, forget, matches, wanted
from offboard.webhooks.models import WebhookDelivery
from offboard.webhooks.services import create_webhook_endpoint, disable_webhook_endpoint


def _queries(work: Any) -> list[str]:
    with CaptureQueriesContext(connection) as seen:
        work()
    return [q["sql"] for q in seen.captured_queries]


def _record(actor: Any, n: int = 1) -> None:
    with transaction.atomic():
        for i in range(n):
            recorder.record_event(actor=actor, type="client.updated", data={"i": i})


def test_an_event_costs_one_query_and_a_transaction_of_many_events_one_too(
    alice: Any, monkeypatch: Any
) -> None:
    _record(alice)  # the log exists
    forget()  # the test's own transaction never ends: start as a new one would
    hooked = _queries(lambda: _record(alice, 5))
    monkeypatch.setattr(recorder, "_listeners", [])
    bare = _queries(lambda: _record(alice, 5))
    extra = [q for q in hooked if "webhook_endpoint" in q]
    assert len(extra) == 1 and len(hooked) == len(bare) + 1


def test_an_endpoint_made_or_disabled_in_the_transaction_is_seen_at_once(alice: Any) -> None:
    with transaction.atomic():
        _record(alice)
        endpoint = create_webhook_endpoint(
            actor=alice, name="CRM", url="https://crm.example.com/h"
        ).endpoint
        _record(alice)
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
        disable_webhook_endpoint(actor=alice, endpoint=endpoint)
        _record(alice)
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


def test_a_rolled_back_savepoint_takes_its_cached_answer_with_it(alice: Any) -> None:
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            _record(alice)  # cached: no endpoints
            raise RuntimeError
        endpoint = create_webhook_endpoint(
            actor=alice, name="CRM", url="https://crm.example.com/h"
        ).endpoint
        _record(alice)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        ([], "case.closed", True),
        (["case.*"], "case.closed", True),
        (["case.*"], "cases.closed", False),
        (["case.closed"], "case.closed", True),
        (["case.closed"], "case.closing", False),
        (["*"], "step.completed", True),
        ([], "webhook_endpoint.created", False),
        (["*"], "api_token.created", False),
        (["member.*"], "member.password_changed", False),
        (["member.*"], "member.added", True),
    ],
)
def test_the_filter(patterns: list[str], event_type: str, expected: bool) -> None:
    assert wanted(patterns, event_type) is expected
    assert matches(["a.*"], "a.b") and not matches([], "a.b")
    assert fan_out in recorder._listeners
