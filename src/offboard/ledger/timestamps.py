"""RFC 3161 trusted timestamps over checkpoints: ask each configured TSA, verify the reply
(rfc3161-client, against OFFBOARD_TSA_ROOTS) before storing it, retry later when a TSA is down.
"""

import datetime as dt
import logging
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from django.conf import settings
from django.db import close_old_connections, transaction
from rfc3161_client import (
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from offboard.core import clock
from offboard.ledger.models import Timestamp

log = logging.getLogger("offboard.ledger.timestamps")
MAX_BACKOFF = dt.timedelta(hours=1)


class TimestampFailed(Exception):
    """A TSA did not answer, refused, or answered with a token that does not verify."""


def trust_roots() -> list[x509.Certificate]:
    path = settings.OFFBOARD_TSA_ROOTS
    if not path:
        raise TimestampFailed("OFFBOARD_TSA_ROOTS is not set: TSA replies cannot be verified")
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise TimestampFailed(f"cannot read TSA roots from {path}: {exc}") from exc


def request_token(
    url: str, message: bytes, *, timeout: float | None = None
) -> tuple[bytes, dt.datetime]:
    """Ask one TSA for a token over `message`; return the verified reply (DER) and its time."""
    request = (
        TimestampRequestBuilder()
        .data(message)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    http = urllib.request.Request(  # noqa: S310 - the URL comes from the operator's settings
        url,
        data=request.as_bytes(),
        headers={
            "Content-Type": "application/timestamp-query",
            "Accept": "application/timestamp-reply",
        },
        method="POST",
    )
    if not url.startswith(("http://", "https://")):
        raise TimestampFailed(f"TSA URL {url!r} must be http:// or https://")
    timeout = timeout or settings.OFFBOARD_TSA_TIMEOUT
    try:
        with urllib.request.urlopen(http, timeout=timeout) as reply:  # noqa: S310 - scheme checked
            raw = reply.read(1024 * 1024)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise TimestampFailed(f"{url} did not answer: {exc}") from exc
    try:
        response = decode_timestamp_response(raw)
    except ValueError as exc:
        raise TimestampFailed(
            f"{url} answered with something that is not a timestamp reply: {exc}"
        ) from exc
    verify_token(raw, message, nonce=request.nonce, policy=request.policy)
    return raw, response.tst_info.gen_time


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
    builder = VerifierBuilder(policy_id=policy, nonce=nonce)
    for root in roots if roots is not None else trust_roots():
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify_message(response, message)
    except VerificationError as exc:
        raise TimestampFailed(f"the timestamp token does not verify: {exc}") from exc
    return response.tst_info.gen_time


def process_pending(*, checkpoint_id: int | None = None, limit: int = 50) -> dict[str, int]:
    """Ask the TSAs for every due pending timestamp; used by the worker and after commit."""
    done = failed = 0
    now = clock.now()
    qs = Timestamp.objects.filter(status=Timestamp.Status.PENDING, next_attempt_at__lte=now)
    if checkpoint_id is not None:
        qs = qs.filter(checkpoint_id=checkpoint_id)
    for ts_id in list(qs.order_by("next_attempt_at").values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            ts = (
                Timestamp.objects.select_for_update(skip_locked=True)
                .select_related("checkpoint")
                .filter(pk=ts_id, status=Timestamp.Status.PENDING)
                .first()
            )
            if ts is None:
                continue  # another worker has it
            ts.attempts += 1
            try:
                raw, gen_time = request_token(ts.tsa_url, ts.checkpoint.signed_note.encode())
            except TimestampFailed as exc:
                ts.last_error = str(exc)[:2000]
                ts.next_attempt_at = clock.now() + min(
                    dt.timedelta(seconds=30 * 2 ** (ts.attempts - 1)), MAX_BACKOFF
                )
                ts.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                log.warning("timestamp %s: %s (retrying at %s)", ts.pk, exc, ts.next_attempt_at)
                failed += 1
                continue
            ts.status, ts.token, ts.gen_time, ts.last_error = (
                Timestamp.Status.GRANTED,
                raw,
                gen_time,
                "",
            )
            ts.save(update_fields=["attempts", "status", "token", "gen_time", "last_error"])
            done += 1
    return {"granted": done, "failed": failed}


def request_soon(checkpoint_id: int) -> None:
    """After a checkpoint commits: ask its TSAs in the background; the worker retries failures."""
    if settings.OFFBOARD_TSA_ON_COMMIT != "thread":
        return

    def run() -> None:
        try:
            process_pending(checkpoint_id=checkpoint_id)
        except Exception:
            log.exception("timestamping checkpoint %s failed; the worker will retry", checkpoint_id)
        finally:
            close_old_connections()

    threading.Thread(target=run, name=f"tsa-{checkpoint_id}", daemon=True).start()
