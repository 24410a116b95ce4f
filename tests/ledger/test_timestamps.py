"""RFC 3161 timestamps end to end against a real local TSA (OpenSSL, tests/tsa.py), and the
`offboard worker` that issues periodic checkpoints and fetches pending tokens.

What is timestamped: the whole signed checkpoint note (`Checkpoint.signed_note`, UTF-8), the
bytes the evidence pack stores as `data/checkpoint`. Every granted token is checked twice:
by our verifier and by `openssl ts -verify`.
"""

import datetime as dt
import hashlib
import os
import signal
import threading
import time
from typing import Any

import pytest
import typer
from django.conf import settings
from django.db import connection
from rfc3161_client import decode_timestamp_response
from typer.testing import CliRunner

from offboard.cli.worker import worker
from offboard.core import clock
from offboard.ledger import checkpoints, keys, services, store, timestamps
from offboard.ledger.models import Checkpoint, Timestamp
from offboard.ledger.timestamps import TimestampFailed, message_for, verify_token
from tests.factories import close_with_approvals, settle_everything
from tests.tsa import LocalTSA


@pytest.fixture
def tsa_settings(settings: Any, tsa: LocalTSA) -> Any:
    settings.OFFBOARD_TSA_URLS = [tsa.url]
    settings.OFFBOARD_TSA_ROOTS = tsa.ca_pem_path
    settings.OFFBOARD_TSA_TIMEOUT = 5.0
    return settings


def closed(case: Any, cast: dict[str, Any]) -> Any:
    return close_with_approvals(settle_everything(case, cast), cast)


def closure_checkpoint(case: Any) -> Checkpoint:
    return Checkpoint.objects.get(case=case, reason="case_closed")


def later(monkeypatch: pytest.MonkeyPatch, delta: dt.timedelta) -> dt.datetime:
    """Move the application's clock forward by `delta` (from the real now)."""
    moved = dt.datetime.now(dt.UTC) + delta
    monkeypatch.setattr(clock, "now", lambda: moved)
    return moved


def assert_openssl_verifies(tsa: LocalTSA, checkpoint: Checkpoint, token: bytes) -> None:
    checked = tsa.openssl_verify(checkpoint.signed_note.encode("utf-8"), token)
    assert "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
    assert checked.returncode == 0


# --- a closure's checkpoint gets a verified token ----------------------------------------------


def test_closing_a_case_queues_a_timestamp_that_the_tsa_grants_and_openssl_verifies(
    tsa: LocalTSA, tsa_settings: Any, case: Any, cast: dict[str, Any]
) -> None:
    served = tsa.served
    case = closed(case, cast)
    checkpoint = closure_checkpoint(case)
    (pending,) = checkpoint.timestamps.all()
    assert (pending.status, pending.tsa_url, pending.attempts) == ("pending", tsa.url, 0)
    assert pending.token is None
    assert tsa.served == served  # OFFBOARD_TSA_ON_COMMIT=off: only the worker asks

    assert timestamps.process_pending() == {"granted": 1, "failed": 0, "skipped": 0}

    ts = Timestamp.objects.get(pk=pending.pk)
    assert (ts.status, ts.attempts, ts.last_error) == ("granted", 1, "")
    assert tsa.served == served + 1
    token = bytes(ts.token or b"")
    note = checkpoint.signed_note.encode("utf-8")
    # What is timestamped: the whole signed note, signature lines included (SHA-512 imprint).
    assert message_for(checkpoint) == note
    assert note.startswith(keys.origin(case.org).encode() + b"\n")
    assert "\n\n\u2014 " in checkpoint.signed_note
    imprint = decode_timestamp_response(token).tst_info.message_imprint
    assert imprint.message == hashlib.sha512(note).digest()
    # Our verifier, against the configured roots …
    assert verify_token(token, note) == ts.gen_time
    assert ts.gen_time is not None
    assert abs(ts.gen_time - checkpoint.created_at) < dt.timedelta(minutes=1)
    with pytest.raises(TimestampFailed, match="does not verify"):
        verify_token(token, note.replace(b"\n\n", b"\n\n\n", 1))
    # … and OpenSSL's, independently.
    assert_openssl_verifies(tsa, checkpoint, token)
    tampered = tsa.openssl_verify(note + b"\n", token)
    assert "Verification: OK" not in tampered.stdout
    assert tampered.returncode != 0
    # Nothing is asked twice.
    assert timestamps.process_pending() == {"granted": 0, "failed": 0, "skipped": 0}
    assert tsa.served == served + 1


def test_no_tsa_configured_means_no_timestamp_rows(
    tsa: LocalTSA, case: Any, cast: dict[str, Any]
) -> None:
    received = tsa.received
    case = closed(case, cast)
    checkpoint = closure_checkpoint(case)
    assert not checkpoint.timestamps.exists()
    assert not Timestamp.objects.exists()
    assert timestamps.process_pending() == {"granted": 0, "failed": 0, "skipped": 0}
    assert tsa.received == received


def test_two_tsas_give_one_token_each(
    tsa: LocalTSA, second_tsa: LocalTSA, settings: Any, alice: Any, tmp_path: Any
) -> None:
    roots = tmp_path / "roots.pem"
    roots.write_bytes(tsa.ca_crt.read_bytes() + second_tsa.ca_crt.read_bytes())
    settings.OFFBOARD_TSA_URLS = [tsa.url, second_tsa.url]
    settings.OFFBOARD_TSA_ROOTS = str(roots)

    checkpoint = services.issue_checkpoint(actor=alice)
    assert sorted(checkpoint.timestamps.values_list("tsa_url", flat=True)) == sorted(
        [tsa.url, second_tsa.url]
    )
    assert timestamps.process_pending()["granted"] == 2

    by_url = {ts.tsa_url: ts for ts in checkpoint.timestamps.all()}
    assert {ts.status for ts in by_url.values()} == {"granted"}
    for server, other in ((tsa, second_tsa), (second_tsa, tsa)):
        token = bytes(by_url[server.url].token or b"")
        verify_token(token, message_for(checkpoint))
        assert_openssl_verifies(server, checkpoint, token)
        # Each token is signed by its own TSA: the other CA does not vouch for it.
        assert other.openssl_verify(message_for(checkpoint), token).returncode != 0


# --- a TSA that is down, or lies ---------------------------------------------------------------


def test_a_tsa_that_is_down_does_not_block_closing_and_is_retried_with_backoff(
    tsa: LocalTSA,
    tsa_settings: Any,
    case: Any,
    cast: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = settle_everything(case, cast)
    tsa.down("503")
    received = tsa.received
    started = time.monotonic()
    case = close_with_approvals(case, cast)
    assert time.monotonic() - started < 3
    assert case.state == "closed"
    assert tsa.received == received  # closing never waits for a TSA
    (ts,) = closure_checkpoint(case).timestamps.all()

    assert timestamps.process_pending() == {"granted": 0, "failed": 1, "skipped": 0}
    ts.refresh_from_db()
    assert (ts.status, ts.attempts, ts.token) == ("pending", 1, None)
    assert tsa.url in ts.last_error
    assert "503" in ts.last_error
    now = clock.now()
    assert now + dt.timedelta(seconds=20) < ts.next_attempt_at <= now + dt.timedelta(seconds=31)
    # Not due yet: nobody asks the TSA again.
    assert timestamps.process_pending() == {"granted": 0, "failed": 0, "skipped": 0}
    assert tsa.received == received + 1

    # Still down half a minute later: the wait doubles.
    later(monkeypatch, dt.timedelta(seconds=31))
    assert timestamps.process_pending()["failed"] == 1
    ts.refresh_from_db()
    assert ts.attempts == 2
    assert ts.next_attempt_at - clock.now() > dt.timedelta(seconds=50)

    tsa.up()
    later(monkeypatch, dt.timedelta(seconds=95))
    assert timestamps.process_pending() == {"granted": 1, "failed": 0, "skipped": 0}
    ts.refresh_from_db()
    assert (ts.status, ts.attempts, ts.last_error) == ("granted", 3, "")
    assert_openssl_verifies(tsa, ts.checkpoint, bytes(ts.token or b""))


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("close", "did not answer"),
        ("garbage", "not a timestamp reply"),
        ("reject", "the TSA refused (PKI status 2): the test TSA refuses"),
    ],
)
def test_a_tsa_that_hangs_up_or_answers_garbage_leaves_the_timestamp_pending(
    tsa: LocalTSA, tsa_settings: Any, alice: Any, mode: Any, says: str
) -> None:
    checkpoint = services.issue_checkpoint(actor=alice)
    tsa.down(mode)
    assert timestamps.process_pending()["failed"] == 1
    (ts,) = checkpoint.timestamps.all()
    assert (ts.status, ts.attempts, ts.token) == ("pending", 1, None)
    assert tsa.url in ts.last_error
    assert says in ts.last_error


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://127.0.0.1/tsa", "must be http:// or https://"),
        ("http://user:s3cret@127.0.0.1:9/tsa", "a user:password@ part is not supported"),
    ],
)
def test_an_unusable_tsa_url_is_reported_without_its_password(
    tsa_settings: Any, alice: Any, url: str, says: str
) -> None:
    tsa_settings.OFFBOARD_TSA_URLS = [url]
    checkpoint = services.issue_checkpoint(actor=alice)
    assert timestamps.process_pending()["failed"] == 1
    ts = checkpoint.timestamps.get()
    assert says in ts.last_error
    assert "s3cret" not in ts.last_error


def test_a_token_from_an_untrusted_tsa_is_not_stored(
    tsa: LocalTSA, second_tsa: LocalTSA, tsa_settings: Any, alice: Any
) -> None:
    tsa_settings.OFFBOARD_TSA_ROOTS = second_tsa.ca_pem_path  # trust only the other CA
    checkpoint = services.issue_checkpoint(actor=alice)
    served = tsa.served
    assert timestamps.process_pending()["failed"] == 1
    assert tsa.served == served + 1  # the TSA did answer, with a token we cannot trust
    (ts,) = checkpoint.timestamps.all()
    assert (ts.status, ts.token, ts.gen_time) == ("pending", None, None)
    assert tsa.url in ts.last_error
    assert "does not verify" in ts.last_error


def test_without_trust_roots_the_tsa_is_not_even_asked(
    tsa: LocalTSA, tsa_settings: Any, alice: Any
) -> None:
    tsa_settings.OFFBOARD_TSA_ROOTS = ""
    checkpoint = services.issue_checkpoint(actor=alice)
    received = tsa.received
    assert timestamps.process_pending()["failed"] == 1
    assert tsa.received == received
    (ts,) = checkpoint.timestamps.all()
    assert ts.status == "pending"
    assert "OFFBOARD_TSA_ROOTS is not set" in ts.last_error


def test_one_round_tries_a_failing_tsa_once_not_once_per_row(
    tsa: LocalTSA, tsa_settings: Any, alice: Any, cast: dict[str, Any]
) -> None:
    services.issue_checkpoint(actor=alice)
    grow(alice)
    services.issue_checkpoint(actor=alice)
    grow(alice, "Contoso")
    services.issue_checkpoint(actor=alice)
    tsa.down("503")
    received = tsa.received
    assert timestamps.process_pending() == {"granted": 0, "failed": 1, "skipped": 2}
    assert tsa.received == received + 1
    tsa.up()
    assert timestamps.process_pending() == {"granted": 2, "failed": 0, "skipped": 0}


# --- in the background, and several workers at once --------------------------------------------


def grow(actor: Any, name: str = "Northwind Traders") -> None:
    """One more event in the actor's organization's log."""
    from offboard.clients.services import create_client

    create_client(actor=actor, name=name)


def wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_after_commit_the_token_arrives_in_the_background(
    transactional_db: Any, tsa: LocalTSA, tsa_settings: Any, alice: Any
) -> None:
    tsa_settings.OFFBOARD_TSA_ON_COMMIT = "thread"
    checkpoint = services.issue_checkpoint(actor=alice)
    try:
        wait_until(
            lambda: Timestamp.objects.filter(checkpoint=checkpoint, status="granted").exists()
        )
    finally:
        timestamps.wait_for_background()
    (ts,) = checkpoint.timestamps.all()
    assert ts.attempts == 1
    assert_openssl_verifies(tsa, checkpoint, bytes(ts.token or b""))


def test_a_hanging_tsa_holds_no_database_lock(
    transactional_db: Any, tsa: LocalTSA, tsa_settings: Any, alice: Any, cast: dict[str, Any]
) -> None:
    """The background request runs outside any transaction: other writes go on meanwhile."""
    tsa_settings.OFFBOARD_TSA_ON_COMMIT = "thread"
    tsa_settings.OFFBOARD_TSA_TIMEOUT = 1.0
    tsa.hang_seconds = 1.5
    tsa.down("hang")
    received = tsa.received
    try:
        checkpoint = services.issue_checkpoint(actor=alice)
        wait_until(lambda: tsa.received > received)  # the thread is waiting on the TSA now
        started = time.monotonic()
        grow(alice)  # a write (it locks the log head), while the request hangs
        assert time.monotonic() - started < 0.8
    finally:
        timestamps.wait_for_background()
    ts = checkpoint.timestamps.get()
    assert (ts.status, ts.attempts) == ("pending", 1)
    assert "did not answer" in ts.last_error
    assert "timed out" in ts.last_error


def _in_threads(count: int, target: Any) -> list[Any]:
    """Run `target` in `count` threads released together; their results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3",
    reason="needs PostgreSQL: the in-memory SQLite test database refuses concurrent writers "
    "outright (`make test` runs this file again on PostgreSQL)",
)
def test_concurrent_workers_issue_one_checkpoint_per_size_and_ask_once_per_timestamp(
    transactional_db: Any, tsa: LocalTSA, tsa_settings: Any, alice: Any
) -> None:
    grow(alice)
    size = store.size(alice.org)
    results = _in_threads(4, lambda: checkpoints.issue_if_grown(org=alice.org))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len([r for r in results if r is not None]) == 1
    assert list(Checkpoint.objects.filter(org=alice.org).values_list("size", flat=True)) == [size]

    received = tsa.received
    counts = _in_threads(4, timestamps.process_pending)
    assert not [c for c in counts if isinstance(c, Exception)], counts
    assert sum(c["granted"] for c in counts) == 1
    assert tsa.received == received + 1


def test_issue_if_grown_issues_once_per_size(
    alice: Any, cast: dict[str, Any], settings: Any
) -> None:
    settings.OFFBOARD_CHECKPOINT_REQUEST_INTERVAL = 0  # a request right after the worker's
    assert checkpoints.issue_if_grown(org=alice.org) is None  # an empty log
    grow(alice)
    first = checkpoints.issue_if_grown(org=alice.org)
    assert first is not None
    assert first.size == store.size(alice.org)
    assert checkpoints.issue_if_grown(org=alice.org) is None
    services.issue_checkpoint(actor=alice)  # no event: the log did not grow
    assert checkpoints.issue_if_grown(org=alice.org) is None
    grow(alice, "Contoso")
    second = checkpoints.issue_if_grown(org=alice.org)
    assert second is not None
    assert second.size == first.size + 1


# --- offboard worker ----------------------------------------------------------------------------


def worker_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Only to keep `worker` a subcommand, as under `offboard`."""

    app.command()(worker)
    return app


def test_worker_once_signs_grown_logs_and_fetches_tokens(
    tsa: LocalTSA, tsa_settings: Any, alice: Any, mallory: Any
) -> None:
    grow(alice)
    grow(mallory)
    assert not Checkpoint.objects.exists()
    result = CliRunner().invoke(worker_app(), ["worker", "--once"])
    assert result.exit_code == 0, result.output
    acme = Checkpoint.objects.get(org=alice.org)
    globex = Checkpoint.objects.get(org=mallory.org)
    assert acme.reason == globex.reason == "periodic"
    assert acme.size == store.size(alice.org)
    assert f"checkpoint acme size {acme.size}" in result.output
    assert f"checkpoint globex size {globex.size}" in result.output
    assert result.output.count("granted by") == 2
    assert "one round: 2 checkpoint(s) issued, 2 timestamp(s) granted, 0 failed" in result.output
    for cp in (acme, globex):
        assert_openssl_verifies(tsa, cp, bytes(cp.timestamps.get().token or b""))

    again = CliRunner().invoke(worker_app(), ["worker", "--once"])
    assert again.exit_code == 0, again.output
    assert "one round: 0 checkpoint(s) issued, 0 timestamp(s) granted, 0 failed" in again.output
    assert Checkpoint.objects.count() == 2


def test_worker_asks_the_tsas_itself_even_when_after_commit_threads_are_on(
    transactional_db: Any, tsa: LocalTSA, tsa_settings: Any, alice: Any
) -> None:
    """No background thread races the worker's own round (or dies with a --once process)."""
    tsa_settings.OFFBOARD_TSA_ON_COMMIT = "thread"
    grow(alice)
    received = tsa.received
    result = CliRunner().invoke(worker_app(), ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 checkpoint(s) issued, 1 timestamp(s) granted, 0 failed" in result.output
    assert not [t for t in threading.enumerate() if t.name.startswith(timestamps.THREAD_PREFIX)]
    assert tsa.received == received + 1


def test_worker_once_reports_a_failing_tsa_and_still_exits_0(
    tsa: LocalTSA, tsa_settings: Any, alice: Any
) -> None:
    grow(alice)
    tsa.down("503")
    result = CliRunner().invoke(worker_app(), ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "attempt 1 failed" in result.output
    assert tsa.url in result.output
    assert "1 checkpoint(s) issued, 0 timestamp(s) granted, 1 failed" in result.output


def test_worker_once_reports_an_organization_it_cannot_sign_for(
    alice: Any, mallory: Any, settings: Any
) -> None:
    from offboard.ledger.models import SigningKey

    grow(alice)
    grow(mallory)
    os.remove(SigningKey.objects.get(org=mallory.org).private_key_path)
    result = CliRunner().invoke(worker_app(), ["worker", "--once"])
    assert result.exit_code == 1
    assert "checkpoint acme size" in result.output
    assert "error: checkpoint of globex: Cannot read the signing key" in result.output
    assert Checkpoint.objects.filter(org=alice.org).count() == 1


def test_worker_loops_until_sigterm(tsa: LocalTSA, tsa_settings: Any, alice: Any) -> None:
    def stop_when_done() -> None:
        deadline = time.monotonic() + 10
        while tsa.served == served and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # a few more idle rounds
        os.kill(os.getpid(), signal.SIGTERM)

    grow(alice)
    served = tsa.served
    previous = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=stop_when_done, daemon=True)
    killer.start()
    result = CliRunner().invoke(
        worker_app(), ["worker", "--interval", "0.05", "--checkpoint-interval", "0.1"]
    )
    killer.join(5)
    assert result.exit_code == 0, result.output
    assert signal.getsignal(signal.SIGTERM) is previous
    lines = result.output.splitlines()
    assert "started: jobs on the database" in lines[0]
    assert "checkpoints every 0.1 s" in lines[0]
    assert "periodic job checkpoints enqueued" in result.output
    assert "SIGTERM: stopping after the job in hand" in result.output
    assert lines[-1].endswith("worker stopped")
    # Many rounds, one checkpoint: the log did not grow again.
    assert Checkpoint.objects.filter(org=alice.org).count() == 1
    assert result.output.count("checkpoint acme size") == 1
    assert Checkpoint.objects.get(org=alice.org).timestamps.get().status == "granted"
