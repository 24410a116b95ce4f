"""RFC 3161 trusted timestamps over checkpoints: ask each configured TSA, verify the reply
(rfc3161-client, against OFFBOARD_TSA_ROOTS) before storing it, retry later when a TSA is down.

What is timestamped: the whole signed checkpoint note, `Checkpoint.signed_note` encoded as
UTF-8 (`message_for`) — the exact bytes the evidence pack stores as `data/checkpoint`, so
`openssl ts -verify -data checkpoint -in token.tsr -CAfile roots.pem` checks it by hand.

Timestamp rows are an outbox written in the checkpoint's transaction. `process_pending`
claims a due row in a short transaction (attempts + 1, and `next_attempt_at` pushed past a
lease so no other worker takes it), talks to the TSA with no transaction open (a slow TSA
holds no database lock), then stores the verified token — or the error and the next attempt,
with exponential backoff (30 s, 1 min, 2 min, … at most 1 h). Any number of workers, and the
after-commit thread, can run it at once: a row is claimed by exactly one of them.
"""

import datetime as dt
import http.client
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from django.conf import settings
from django.db import transaction
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from offboard.core import clock
from offboard.core.background import AfterCommitJobs
from offboard.jobs.engine import enqueue
from offboard.ledger.models import Checkpoint, Timestamp

log = logging.getLogger("offboard.ledger.timestamps")
FIRST_BACKOFF = dt.timedelta(seconds=30)
MAX_BACKOFF = dt.timedelta(hours=1)
MAX_REPLY_BYTES = 1024 * 1024
THREAD_PREFIX = "offboard-tsa-"


class TimestampFailed(Exception):
    """A TSA did not answer, refused, or answered with a token that does not verify."""


def message_for(checkpoint: Checkpoint) -> bytes:
    """The bytes a checkpoint's tokens cover: its whole signed note, UTF-8."""
    return checkpoint.signed_note.encode("utf-8")


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt: 30 s doubling, at most an hour."""
    return min(FIRST_BACKOFF * 2 ** min(max(attempts - 1, 0), 16), MAX_BACKOFF)


def lease() -> dt.timedelta:
    """How long a claimed row is left alone: past any request's timeout, with a margin."""
    return dt.timedelta(
        seconds=2 * float(settings.OFFBOARD_TSA_TIMEOUT) + settings.OFFBOARD_LEASE_MARGIN
    )


def shown(url: str) -> str:
    """A TSA URL fit for messages and logs: any user:password@ part left out."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def trust_roots() -> list[x509.Certificate]:
    path = settings.OFFBOARD_TSA_ROOTS
    if not path:
        raise TimestampFailed("OFFBOARD_TSA_ROOTS is not set: TSA replies cannot be verified")
    try:
        roots = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise TimestampFailed(f"cannot read TSA roots from {path}: {exc}") from exc
    unique: list[x509.Certificate] = []
    for root in roots:
        if root not in unique:  # rfc3161-client refuses the same root twice
            unique.append(root)
    return unique


def request_token(
    url: str, message: bytes, *, timeout: float | None = None
) -> tuple[bytes, dt.datetime]:
    """Ask one TSA for a token over `message`; return the verified reply (DER) and its time."""
    where = shown(url)
    if not url.startswith(("http://", "https://")):
        raise TimestampFailed(f"TSA URL {where!r} must be http:// or https://")
    if where != url:
        raise TimestampFailed(f"TSA URL {where}: a user:password@ part is not supported")
    roots = trust_roots()  # before asking: an unverifiable reply is worth nothing
    request = (
        TimestampRequestBuilder()
        .data(message)
        .hash_algorithm(HashAlgorithm.SHA512)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    post = urllib.request.Request(  # noqa: S310 - scheme checked above; the URL is the operator's
        url,
        data=request.as_bytes(),
        headers={
            "Content-Type": "application/timestamp-query",
            "Accept": "application/timestamp-reply",
        },
        method="POST",
    )
    timeout = timeout or settings.OFFBOARD_TSA_TIMEOUT
    try:
        with urllib.request.urlopen(post, timeout=timeout) as reply:  # noqa: S310 - scheme checked
            raw = reply.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampFailed(f"{where} answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise TimestampFailed(f"{where} did not answer: {exc.reason}") from exc
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise TimestampFailed(f"{where} did not answer: {exc or type(exc).__name__}") from exc
    if len(raw) > MAX_REPLY_BYTES:
        raise TimestampFailed(f"{where} answered with more than {MAX_REPLY_BYTES} bytes")
    try:
        gen_time = verify_token(raw, message, nonce=request.nonce, roots=roots)
    except TimestampFailed as exc:
        raise TimestampFailed(f"{where}: {exc}") from exc
    return raw, gen_time


def verify_token(
    raw: bytes,
    message: bytes,
    *,
    nonce: int | None = None,
    policy: Any = None,
    roots: list[x509.Certificate] | None = None,
) -> dt.datetime:
    """Check a stored reply against the message it should cover; return its time."""
    try:
        response = decode_timestamp_response(raw)
    except ValueError as exc:
        raise TimestampFailed(f"not a timestamp reply: {exc}") from exc
    if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        reason = "; ".join(response.status_string) or "no reason given"
        raise TimestampFailed(f"the TSA refused (PKI status {response.status}): {reason}")
    builder = VerifierBuilder(policy_id=policy, nonce=nonce)
    for root in roots if roots is not None else trust_roots():
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify_message(response, message)
        gen_time = response.tst_info.gen_time
    except (VerificationError, ValueError) as exc:
        raise TimestampFailed(f"the timestamp token does not verify: {exc}") from exc
    return gen_time if gen_time.tzinfo else gen_time.replace(tzinfo=dt.UTC)


Report = Callable[[Timestamp, str | None], None]


def _claim(ts_id: int, now: dt.datetime) -> Timestamp | None:
    """Take one due pending row for this caller alone; None if it is not due or not free."""
    with transaction.atomic():
        ts = (
            Timestamp.objects.select_for_update(skip_locked=True)
            .filter(pk=ts_id, status=Timestamp.Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if ts is None:
            return None  # another worker has it, or it was done meanwhile
        ts.attempts += 1
        ts.next_attempt_at = now + lease()
        ts.save(update_fields=["attempts", "next_attempt_at"])
    return ts


def process_pending(
    *, checkpoint_id: int | None = None, limit: int = 50, report: Report | None = None
) -> dict[str, int]:
    """Ask the TSAs for every due pending timestamp; used by the worker and after commit.

    Returns counts: `granted`, `failed`, and `skipped` (due, but left for the next round
    because its TSA already failed in this one). `report(ts, error)` is told each outcome.
    """
    granted = failed = skipped = 0
    now = clock.now()
    qs = Timestamp.objects.filter(status=Timestamp.Status.PENDING, next_attempt_at__lte=now)
    if checkpoint_id is not None:
        qs = qs.filter(checkpoint_id=checkpoint_id)
    due = list(qs.order_by("next_attempt_at", "id").values_list("pk", "tsa_url")[:limit])
    failing: set[str] = set()
    for ts_id, url in due:
        if url in failing:
            skipped += 1  # one timeout per unreachable TSA per round, not one per row
            continue
        ts = _claim(ts_id, now)
        if ts is None:
            continue
        checkpoint = Checkpoint.objects.get(pk=ts.checkpoint_id)
        try:
            raw, gen_time = request_token(ts.tsa_url, message_for(checkpoint))
        except Exception as exc:  # a TSA's bytes are hostile input: record any failure, go on
            if not isinstance(exc, TimestampFailed):
                log.exception("timestamp %s: unexpected error from %s", ts.pk, shown(ts.tsa_url))
                exc = TimestampFailed(f"{shown(ts.tsa_url)}: unexpected error: {exc!r}")
            failing.add(ts.tsa_url)
            ts.last_error = str(exc)[:2000]
            ts.next_attempt_at = clock.now() + backoff(ts.attempts)
            Timestamp.objects.filter(pk=ts.pk, status=Timestamp.Status.PENDING).update(
                last_error=ts.last_error, next_attempt_at=ts.next_attempt_at
            )
            enqueue(
                "offboard.jobs.tasks.request_timestamps",
                ts.checkpoint_id,
                run_after=ts.next_attempt_at,
            )
            log.log(
                logging.INFO if report else logging.WARNING,  # a reporting caller says it
                "timestamp %s of checkpoint %s: attempt %s failed: %s (next at %s)",
                ts.pk,
                ts.checkpoint_id,
                ts.attempts,
                exc,
                ts.next_attempt_at.isoformat(),
            )
            failed += 1
            if report:
                report(ts, ts.last_error)
            continue
        ts.status, ts.token, ts.gen_time, ts.last_error = (
            Timestamp.Status.GRANTED,
            raw,
            gen_time,
            "",
        )
        Timestamp.objects.filter(pk=ts.pk, status=Timestamp.Status.PENDING).update(
            status=ts.status, token=raw, gen_time=gen_time, last_error=""
        )
        log.info(
            "timestamp %s of checkpoint %s granted by %s",
            ts.pk,
            ts.checkpoint_id,
            shown(ts.tsa_url),
        )
        granted += 1
        if report:
            report(ts, None)
    return {"granted": granted, "failed": failed, "skipped": skipped}


_jobs = AfterCommitJobs(
    THREAD_PREFIX,
    enabled=lambda: settings.OFFBOARD_TSA_ON_COMMIT == "thread",
    exit_wait=lambda: float(settings.OFFBOARD_TSA_TIMEOUT) + 5,
)
# No after-commit thread in this block: the caller asks the TSAs itself (the worker).
inline = _jobs.inline


def request_soon(checkpoint_id: int) -> threading.Thread | None:
    """After a checkpoint commits: ask its TSAs in the background; the worker retries failures.
    A CLI process waits for it at exit, at most OFFBOARD_TSA_TIMEOUT + 5 s."""
    return _jobs.start(
        checkpoint_id,
        lambda: process_pending(checkpoint_id=checkpoint_id),
        f"timestamping checkpoint {checkpoint_id} failed",
    )


def wait_for_background(timeout: float = 10.0) -> None:
    """Join the after-commit threads still running, for at most `timeout` seconds in all."""
    _jobs.wait(timeout)
