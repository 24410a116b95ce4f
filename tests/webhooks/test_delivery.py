"""Outbound webhooks end to end against a real HTTP receiver on loopback (conftest.py): each
event posted once per matching endpoint, signed per Standard Webhooks and checked by an
independent implementation; a receiver that is down, slow or answers 500 is retried with
backoff (clock moved), and one that keeps failing gets its endpoint disabled and the admins
emailed through a real SMTP server."""

import datetime as dt
import json
import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction

from offboard.clients.services import create_client
from offboard.core import clock
from offboard.ledger.models import LedgerEntry
from offboard.webhooks import delivery as deliverer
from offboard.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from offboard.webhooks.services import (
    create_webhook_endpoint,
    enable_webhook_endpoint,
    redeliver,
    rotate_webhook_secret,
)
from tests.smtp import LocalSMTP
from tests.webhooks.conftest import Receiver


def later(monkeypatch: Any, delta: dt.timedelta) -> dt.datetime:
    moved = dt.datetime.now(dt.UTC) + delta
    monkeypatch.setattr(clock, "now", lambda: moved)
    return moved


def deliveries(endpoint: Any) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id"))


def one(endpoint: Any) -> WebhookDelivery:
    (found,) = deliveries(endpoint)
    return found


def test_an_event_is_posted_once_signed_with_the_public_fields_only(
    alice: Any, endpoint: Any, receiver: Receiver
) -> None:
    client = create_client(actor=alice, name="Northwind Traders")
    entry = LedgerEntry.objects.get(type="client.created")
    owed = one(endpoint)
    assert (owed.state, owed.event_index, owed.event_type) == (
        "pending",
        entry.index,
        "client.created",
    )

    assert deliverer.deliver_due() == {"delivered": 1, "failed": 0, "skipped": 0, "disabled": 0}
    assert deliverer.deliver_due()["delivered"] == 0  # once

    (got,) = receiver.requests
    assert got.verified_with == receiver.secrets  # the independent check of the signature
    assert got.id == owed.msg_id and got.id.startswith("msg_")
    assert got.path == "/hooks/offboard?source=test"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("Offboard-Webhooks/")
    sent = got.json
    assert sent["type"] == "client.created"
    assert dt.datetime.fromisoformat(sent["timestamp"]) == entry.at
    assert sent["data"]["event_index"] == entry.index
    assert sent["data"]["organization"] == "acme"
    assert sent["data"]["case"] is None
    assert sent["data"]["actor"] == {"name": "Alice", "role": "admin"}
    assert sent["data"]["fields"]["name"] == client.name
    # What a receiver never gets: who from where, the username, the nonce.
    for hidden in ("user_agent", "username", "nonce", '"ip"', "auth"):
        assert hidden not in got.body.decode()

    owed.refresh_from_db()
    assert (owed.state, owed.attempts, owed.last_status) == ("delivered", 1, 200)
    (attempt,) = WebhookAttempt.objects.filter(delivery=owed)
    assert attempt.status_code == 200 and attempt.response_excerpt == '{"ok": true}'
    assert attempt.error == "" and not attempt.manual


def test_the_filter_chooses_events_and_private_events_never_leave(
    alice: Any, receiver: Receiver, playbooks: Any
) -> None:
    from offboard.accounts.services import create_api_token

    cases_only = create_webhook_endpoint(
        actor=alice, name="Cases", url=receiver.url, event_types=["case.*", "client.updated"]
    ).endpoint
    everything = create_webhook_endpoint(actor=alice, name="All", url=receiver.url).endpoint
    create_client(actor=alice, name="Northwind Traders")
    create_api_token(actor=alice, name="ci")
    rotate_webhook_secret(actor=alice, endpoint=everything)

    assert [d.event_type for d in deliveries(cases_only)] == []
    assert [d.event_type for d in deliveries(everything)] == ["client.created"]


def test_an_event_rolled_back_owes_nothing(alice: Any, endpoint: Any) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        create_client(actor=alice, name="Northwind Traders")
        assert len(deliveries(endpoint)) == 1
        raise RuntimeError("the action failed after its event")
    assert deliveries(endpoint) == []


def test_a_receiver_that_is_down_is_retried_with_backoff_then_gets_the_same_id(
    alice: Any, endpoint: Any, receiver: Receiver, monkeypatch: Any
) -> None:
    receiver.down()
    create_client(actor=alice, name="Northwind Traders")
    owed = one(endpoint)

    waits = []
    for n in range(1, 5):
        now = later(monkeypatch, dt.timedelta(hours=n * 3))
        assert deliverer.deliver_due()["failed"] == 1
        owed.refresh_from_db()
        assert owed.state == "pending" and owed.attempts == n
        assert "refused the connection" in owed.last_error and owed.last_status is None
        waits.append((owed.next_attempt_at - now).total_seconds())
        assert deliverer.deliver_due() == {"delivered": 0, "failed": 0, "skipped": 0, "disabled": 0}
    assert waits == [30, 60, 120, 240]  # 30 s doubling (at most an hour)

    receiver.up()
    later(monkeypatch, dt.timedelta(hours=20))
    assert deliverer.deliver_due()["delivered"] == 1
    owed.refresh_from_db()
    assert owed.state == "delivered" and owed.attempts == 5
    (got,) = receiver.requests
    assert got.id == owed.msg_id and got.verified_with == receiver.secrets
    log = list(WebhookAttempt.objects.filter(delivery=owed).order_by("number"))
    assert [a.status_code for a in log] == [None, None, None, None, 200]
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.active


def test_a_slow_receiver_times_out_and_a_500_is_kept_with_its_answer(
    alice: Any, endpoint: Any, receiver: Receiver, monkeypatch: Any
) -> None:
    receiver.delay = 2.5  # past OFFBOARD_WEBHOOK_TIMEOUT (1 s here)
    create_client(actor=alice, name="Northwind Traders")
    owed = one(endpoint)
    assert deliverer.deliver_due()["failed"] == 1
    owed.refresh_from_db()
    assert owed.last_error.endswith("did not answer within 1 s"), owed.last_error

    receiver.delay = 0
    receiver.status, receiver.answer = 500, b"database on fire\n" * 200
    later(monkeypatch, dt.timedelta(minutes=5))
    assert deliverer.deliver_due()["failed"] == 1
    owed.refresh_from_db()
    assert (owed.last_status, owed.last_error) == (500, "answered HTTP 500")
    attempt = WebhookAttempt.objects.filter(delivery=owed).order_by("-number").first()
    assert attempt.status_code == 500
    assert attempt.response_excerpt.startswith("database on fire")
    assert len(attempt.response_excerpt) == 1000  # bounded

    receiver.status, receiver.answer = 204, b""
    later(monkeypatch, dt.timedelta(minutes=10))
    assert deliverer.deliver_due()["delivered"] == 1
    owed.refresh_from_db()
    assert owed.state == "delivered" and owed.attempts == 3
    assert len(receiver.requests) == 3 and len({r.id for r in receiver.requests}) == 1


def test_an_endpoint_failing_again_and_again_is_disabled_and_the_admins_told(
    alice: Any, endpoint: Any, receiver: Receiver, smtp: LocalSMTP, monkeypatch: Any, settings: Any
) -> None:
    settings.OFFBOARD_WEBHOOK_DISABLE_AFTER = 3
    settings.OFFBOARD_WEBHOOK_DISABLE_AFTER_HOURS = 1
    receiver.status = 500
    create_client(actor=alice, name="Northwind Traders")
    create_client(actor=alice, name="Globex Partners")
    first, second = deliveries(endpoint)

    # A round tries one delivery of a failing endpoint; the other waits for the next round.
    assert deliverer.deliver_due() == {"delivered": 0, "failed": 1, "skipped": 1, "disabled": 0}
    later(monkeypatch, dt.timedelta(minutes=2))
    assert deliverer.deliver_due()["failed"] == 1
    later(monkeypatch, dt.timedelta(minutes=4))
    # Three failures in a row, but for minutes only: not yet.
    assert deliverer.deliver_due()["disabled"] == 0
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 3 and endpoint.active
    assert smtp.received == []

    later(monkeypatch, dt.timedelta(hours=2))
    assert deliverer.deliver_due()["disabled"] == 1
    endpoint.refresh_from_db()
    assert endpoint.state == "disabled" and endpoint.consecutive_failures == 4
    assert endpoint.disabled_reason.startswith("4 attempts in a row failed since")
    (event,) = LedgerEntry.objects.filter(type="webhook_endpoint.disabled")
    assert event.data["automatic"] is True and event.data["last_error"] == "answered HTTP 500"
    assert event.actor["auth"] == "system"

    (mail,) = smtp.received
    assert mail.rcpt_tos == ["alice@acme.example"]  # the admins, and only them
    assert "CRM" in mail.message["Subject"] and "disabled" in mail.message["Subject"]
    assert receiver.url in mail.text() and "enables it again" in mail.text()
    assert receiver.secrets[0] not in mail.raw.decode()

    # Disabled: nothing is posted, the deliveries wait.
    later(monkeypatch, dt.timedelta(hours=5))
    sent = len(receiver.requests)
    assert deliverer.deliver_due()["failed"] == 0 and len(receiver.requests) == sent
    # Enabled again with the receiver fixed: the backlog goes at once.
    receiver.status = 200
    enable_webhook_endpoint(actor=alice, endpoint=endpoint)
    assert deliverer.deliver_due()["delivered"] == 2
    assert {d.state for d in deliveries(endpoint)} == {"delivered"}
    assert first.pk != second.pk


def test_a_delivery_is_given_up_after_the_maximum_attempts(
    alice: Any, endpoint: Any, receiver: Receiver, monkeypatch: Any, settings: Any
) -> None:
    settings.OFFBOARD_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.status = 400
    create_client(actor=alice, name="Northwind Traders")
    deliverer.deliver_due()
    later(monkeypatch, dt.timedelta(hours=1))
    deliverer.deliver_due()
    owed = one(endpoint)
    assert (owed.state, owed.attempts, owed.next_attempt_at) == ("failed", 2, None)


def test_after_a_rotation_both_secrets_sign_for_a_day(
    alice: Any, endpoint: Any, receiver: Receiver, monkeypatch: Any
) -> None:
    old = receiver.secrets[0]
    new = rotate_webhook_secret(actor=alice, endpoint=endpoint).secret
    receiver.secrets = [old, new]
    create_client(actor=alice, name="Northwind Traders")
    deliverer.deliver_due()
    (got,) = receiver.requests
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verified_with == [old, new]  # a receiver holding either secret accepts it

    later(monkeypatch, dt.timedelta(hours=24, seconds=1))
    create_client(actor=alice, name="Globex Partners")
    deliverer.deliver_due()
    assert receiver.requests[1].verified_with == [new]
    assert len(receiver.requests[1].headers["webhook-signature"].split(" ")) == 1


def test_a_manual_redelivery_posts_again_now_with_the_same_id(
    alice: Any, endpoint: Any, receiver: Receiver
) -> None:
    create_client(actor=alice, name="Northwind Traders")
    deliverer.deliver_due()
    owed = one(endpoint)

    redeliver(actor=alice, delivery=owed)
    attempt = deliverer.deliver_one(owed.pk, manual=True)
    assert attempt is not None and attempt.ok and attempt.manual and attempt.number == 2
    assert [r.id for r in receiver.requests] == [owed.msg_id, owed.msg_id]
    assert receiver.requests[0].body == receiver.requests[1].body  # the same bytes
    (event,) = LedgerEntry.objects.filter(type="webhook_delivery.redelivered")
    assert event.data["delivery_id"] == owed.msg_id and event.data["previous_state"] == "delivered"
    assert len(deliveries(endpoint)) == 1  # its own event is not delivered


def test_an_event_redacted_before_it_left_goes_as_a_marker(
    alice: Any, endpoint: Any, receiver: Receiver
) -> None:
    from offboard.ledger.services import redact_event

    create_client(actor=alice, name="Erased Person Ltd")
    owed = one(endpoint)
    redact_event(actor=alice, index=owed.event_index, reason="GDPR art. 17 request")
    deliverer.deliver_due()
    (got,) = receiver.requests
    assert got.json["data"] == {
        "event_index": owed.event_index,
        "organization": "acme",
        "case": None,
        "redacted": True,
    }
    assert b"Erased" not in got.body


def test_a_case_event_names_its_case(
    alice: Any, endpoint: Any, receiver: Receiver, case: Any
) -> None:
    deliverer.deliver_due()
    opened = [r.json for r in receiver.requests if r.json["type"] == "case.opened"]
    assert opened and opened[0]["data"]["case"] == case.ref


@pytest.mark.one_pass("postgresql")
@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3",
    reason="needs PostgreSQL: the in-memory SQLite test database refuses concurrent writers",
)
def test_concurrent_deliverers_post_each_delivery_once(
    transactional_db: Any, alice: Any, endpoint: Any, receiver: Receiver
) -> None:
    for n in range(6):
        create_client(actor=alice, name=f"Client {n}")
    count = 4
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = deliverer.deliver_due()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r["delivered"] for r in results) == 6
    assert len(receiver.requests) == 6 and len({r.id for r in receiver.requests}) == 6
    assert WebhookAttempt.objects.count() == 6
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 0
    json.dumps(results)


def test_the_verification_example_in_the_docs_accepts_a_real_delivery(
    alice: Any, endpoint: Any, receiver: Receiver
) -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "webhooks-out.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # the documentation's own example
    create_client(actor=alice, name="Northwind Traders")
    deliverer.deliver_due()
    (got,) = receiver.requests
    assert namespace["verify"](receiver.secrets[0], got.headers, got.body)
    assert not namespace["verify"](receiver.secrets[0], got.headers, got.body + b" ")
