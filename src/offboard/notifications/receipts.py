"""The closure receipt outbox: issue the certificate once, then email it until it is accepted.

`queue_closure_receipt` writes a `ClosureReceipt` row in the closing transaction. After commit
a background thread (`request_soon`) works on it, and `offboard worker` picks up every due row
each round. One round on a row, with no transaction open while rendering or talking to the
mail server:

1. claim it in a short transaction: attempts + 1 and a lease (`claimed_until`), so exactly
   one worker holds it even when several run at once, and a crashed worker's claim runs out;
2. if it has no certificate yet: give the checkpoint's pending timestamps one chance, render
   the certificate against the closure checkpoint, sign it (PAdES, `reports.signing`), store
   the signed PDF as an evidence file and record ONE `case.certificate_issued` event (checked
   under the row lock);
3. if it has recipients and is not sent: send the email through Django's mail backend; on
   success record ONE `case.receipt_sent` event and mark it sent; on failure keep the error
   (never a password) and retry with backoff, 30 s doubling to at most 1 h.

Delivery is at least once: a crash after the mail server accepted the message but before
step 3 commits sends it again when the lease runs out, with the same Message-ID.
"""

import datetime as dt
import hashlib
import io
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Q

from offboard.cases.models import OffboardingCase
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.background import AfterCommitJobs
from offboard.evidence import storage
from offboard.evidence.services import store_file
from offboard.jobs.engine import enqueue
from offboard.ledger import timestamps
from offboard.ledger.models import Checkpoint, Timestamp
from offboard.ledger.recorder import record_event
from offboard.notifications.models import ClosureReceipt
from offboard.notifications.receipt_email import (
    certificate_name,
    closure_receipt_file,
    closure_receipt_message,
)
from offboard.reports.certificate import render_certificate
from offboard.reports.signing import sign_certificate

log = logging.getLogger("offboard.notifications.receipts")
THREAD_PREFIX = "offboard-receipt-"
State = ClosureReceipt.State
backoff = timestamps.backoff  # one retry rule for every outbox: 30 s doubling, at most 1 h

# What a report says about a row: "certificate", "sent" or "failed" (with the error).
Report = Callable[[ClosureReceipt, str, str | None], None]


class SendFailed(Exception):
    """The mail server could not be reached, or refused the message."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def lease() -> dt.timedelta:
    """How long a claimed row is left alone: past rendering, a timestamp chance, signing (two
    TSA requests each) and the SMTP timeouts, with a wide margin (a second send is worse than a
    late one)."""
    tsa = 3 * (float(settings.OFFBOARD_TSA_TIMEOUT) + 5) * len(settings.OFFBOARD_TSA_URLS)
    margin = 5 * settings.OFFBOARD_LEASE_MARGIN
    return dt.timedelta(seconds=2 * float(settings.EMAIL_TIMEOUT or 60) + tsa + margin)


def system_actor(receipt: ClosureReceipt) -> Actor:
    """The events of a receipt are the closure's consequences: recorded in the name of whoever
    closed the case, in their role then, with auth method `system`."""
    return Actor(
        user=receipt.closed_by, org=receipt.org, role=receipt.closed_by_role, auth_method="system"
    )


# --- the mail server's words, without secrets --------------------------------------------------


def backend_label(connection: Any) -> str:
    """`smtp`, `file`, `console`, `locmem`, … : how the receipt left, for its event."""
    module = type(connection).__module__
    if module.startswith("django.core.mail.backends."):
        short = module.rsplit(".", 1)[-1]
        return {"filebased": "file"}.get(short, short)
    return f"{module}.{type(connection).__qualname__}"


def server_of(connection: Any) -> str:
    if backend_label(connection) == "smtp":
        return f"SMTP server {connection.host}:{connection.port}"
    return f"mail backend {backend_label(connection)}"


def scrub(text: str) -> str:
    """Never let the SMTP password reach a message, a log line or the database."""
    password = settings.EMAIL_HOST_PASSWORD
    return text.replace(password, "********") if password else text


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"


def describe(exc: BaseException, connection: Any) -> SendFailed:
    """A failed send as one line naming the server, what went wrong and its reply."""
    where = server_of(connection)
    unreachable = False
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        text = f"{where} refused the login as {settings.EMAIL_HOST_USER!r}: {_reply(exc.smtp_code, exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{addr} ({_reply(*reply)})" for addr, reply in exc.recipients.items())
        text = f"{where} refused every recipient: {refused}"
    elif isinstance(exc, smtplib.SMTPSenderRefused):
        text = f"{where} refused the sender {exc.sender}: {_reply(exc.smtp_code, exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPConnectError):
        text, unreachable = (
            f"{where} refused the connection: {_reply(exc.smtp_code, exc.smtp_error)}",
            True,
        )
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{where} answered {_reply(exc.smtp_code, exc.smtp_error)}"
    elif isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        # smtplib reports a reply that never came as "Connection unexpectedly closed".
        text, unreachable = f"{where} did not answer within {settings.EMAIL_TIMEOUT:g} s", True
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        text, unreachable = f"{where} closed the connection: {exc or 'no reason given'}", True
    elif isinstance(exc, smtplib.SMTPException):
        text = f"{where}: {exc}"
    elif isinstance(exc, ssl.SSLError):
        text, unreachable = f"{where}: TLS failed: {exc.reason or exc}", True
    elif isinstance(exc, OSError):
        text, unreachable = f"{where} did not answer: {exc.strerror or exc}", True
    else:
        text = f"{where}: unexpected error: {exc!r}"
    return SendFailed(scrub(text)[:2000], unreachable=unreachable)


# --- one row -----------------------------------------------------------------------------------


def _claim(receipt_id: int, now: dt.datetime) -> ClosureReceipt | None:
    """Take one due row for this caller alone; None if it is not due or another worker has it."""
    with transaction.atomic():
        receipt = (
            ClosureReceipt.objects.select_for_update(skip_locked=True)
            .filter(pk=receipt_id, next_attempt_at__lte=now)
            .first()
        )
        if receipt is None or (receipt.claimed_until and receipt.claimed_until > now):
            return None
        receipt.attempts += 1
        receipt.claimed_until = now + lease()
        fields = ["attempts", "claimed_until"]
        if not receipt.message_id:  # fixed at the first attempt, reused by every retry
            receipt.message_id = make_msgid("closure-receipt", domain=settings.SITE_HOST)
            fields.append("message_id")
        receipt.save(update_fields=fields)
    return receipt


def _give_timestamps_a_chance(checkpoint_id: int) -> None:
    """So the certificate can show them: wait for this checkpoint's after-commit TSA thread,
    then ask once for any token still due. A TSA that is down delays nothing further."""
    name = f"{timestamps.THREAD_PREFIX}{checkpoint_id}"
    for thread in threading.enumerate():
        if thread.name == name and thread is not threading.current_thread():
            thread.join(float(settings.OFFBOARD_TSA_TIMEOUT) + 5)
    due = Timestamp.objects.filter(
        checkpoint_id=checkpoint_id,
        status=Timestamp.Status.PENDING,
        next_attempt_at__lte=clock.now(),
    )
    if due.exists():
        try:
            timestamps.process_pending(checkpoint_id=checkpoint_id)
        except Exception:  # the certificate says which tokens are missing; the worker retries
            log.exception("timestamps of checkpoint %s before its certificate", checkpoint_id)


def _issue_certificate(receipt: ClosureReceipt) -> None:
    case = OffboardingCase.objects.select_related("org").get(pk=receipt.case_id)
    _give_timestamps_a_chance(receipt.checkpoint_id)
    checkpoint = Checkpoint.objects.select_related("key").get(pk=receipt.checkpoint_id)
    pdf = sign_certificate(  # the event names the signed file: what is mailed and packed
        render_certificate(
            case,
            checkpoint=checkpoint,
            receipt_to=[r.get("name") or r["email"] for r in receipt.recipients],
        ),
        org=case.org,
        reason=f"Closure certificate of case {case.ref}",
    )
    actor = system_actor(receipt)
    stored = store_file(actor=actor, stream=io.BytesIO(pdf), name=certificate_name(case))
    with transaction.atomic():
        locked = ClosureReceipt.objects.select_for_update().get(pk=receipt.pk)
        if locked.certificate_id is None:  # a worker whose lease ran out may have been first
            locked.certificate = stored
            locked.save(update_fields=["certificate"])
            record_event(
                actor=actor,
                type="case.certificate_issued",
                case=case,
                files=[stored],
                data={
                    **stored.as_event_data(),
                    "checkpoint_size": checkpoint.size,
                    "checkpoint_root": bytes(checkpoint.root).hex(),
                },
            )
    receipt.certificate_id = locked.certificate_id
    receipt.certificate = locked.certificate


def issued_certificate(case: OffboardingCase) -> Any:
    """The closure certificate of a closed case, issued now if the outbox has not yet done it
    (an evidence pack of a closed case must hold it with its event); None for other cases."""
    receipt = ClosureReceipt.objects.filter(org_id=case.org_id, case=case).first()
    if receipt is None:
        return None
    if receipt.certificate_id is None:
        _issue_certificate(receipt)
    return receipt.certificate


def _send(receipt: ClosureReceipt, connection: Any) -> None:
    certificate = receipt.certificate
    assert certificate is not None
    # Checked against its SHA-256: a corrupted certificate is never mailed (the receipt fails
    # with the reason, and `offboard ledger verify` names the file).
    pdf = storage.read_stored(certificate.storage_name, sha256=certificate.sha256)
    case = OffboardingCase.objects.select_related("client", "org").get(pk=receipt.case_id)
    checkpoint = Checkpoint.objects.select_related("key").get(pk=receipt.checkpoint_id)
    receipt_text = closure_receipt_file(case, checkpoint)
    message = closure_receipt_message(
        receipt=receipt, certificate_pdf=pdf, connection=connection, receipt_text=receipt_text
    )
    try:
        sent = message.send(fail_silently=False)
    except Exception as exc:  # the mail server's replies are outside input: keep any failure
        raise describe(exc, connection) from exc
    if sent != 1:
        raise SendFailed(f"{server_of(connection)} sent nothing")
    with transaction.atomic():
        locked = ClosureReceipt.objects.select_for_update().get(pk=receipt.pk)
        if locked.state == State.SENT:
            return  # another worker, whose lease this one outlived, recorded it
        now = clock.now()
        ClosureReceipt.objects.filter(pk=receipt.pk).update(
            state=State.SENT, sent_at=now, last_error="", next_attempt_at=None, claimed_until=None
        )
        record_event(
            actor=system_actor(receipt),
            type="case.receipt_sent",
            case=case,
            files=[certificate],
            data={
                "recipients": receipt.emails,
                # The receipt file itself: what the client holds to check any later pack.
                "receipt_sha256": hashlib.sha256(receipt_text.encode("utf-8")).hexdigest(),
                "message_id": receipt.message_id,
                "subject": str(message.subject),
                "via": backend_label(connection),
                "certificate_sha256": certificate.sha256,
                "checkpoint_size": checkpoint.size,
                "checkpoint_root": bytes(checkpoint.root).hex(),
            },
        )
    receipt.state, receipt.sent_at, receipt.last_error = State.SENT, now, ""


def _done_without_sending(receipt: ClosureReceipt) -> None:
    ClosureReceipt.objects.filter(pk=receipt.pk).update(
        next_attempt_at=None, claimed_until=None, last_error=""
    )
    receipt.next_attempt_at, receipt.last_error = None, ""


def _failed(receipt: ClosureReceipt, error: str) -> None:
    receipt.last_error = error[:2000]
    receipt.next_attempt_at = clock.now() + backoff(receipt.attempts)
    if receipt.state == State.PENDING:
        receipt.state = State.FAILED
    ClosureReceipt.objects.filter(pk=receipt.pk).exclude(state=State.SENT).update(
        state=receipt.state,
        last_error=receipt.last_error,
        next_attempt_at=receipt.next_attempt_at,
        claimed_until=None,
    )
    enqueue(
        "offboard.jobs.tasks.send_closure_receipt", receipt.pk, run_after=receipt.next_attempt_at
    )


def process_pending(
    *,
    receipt_id: int | None = None,
    limit: int = 20,
    connection: Any = None,
    report: Report | None = None,
) -> dict[str, int]:
    """Work on every due receipt; used by the worker, the after-commit thread and the CLI.

    Returns counts: `certificates` issued, receipts `sent`, attempts `failed`, and `skipped`
    (due, but left for the next round because the mail server was unreachable in this one).
    """
    counts = {"certificates": 0, "sent": 0, "failed": 0, "skipped": 0}
    now = clock.now()
    qs = ClosureReceipt.objects.filter(next_attempt_at__lte=now).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    )
    if receipt_id is not None:
        qs = qs.filter(pk=receipt_id)
    due = list(qs.order_by("next_attempt_at", "id").values_list("pk", "state")[:limit])
    connection = connection or get_connection(fail_silently=False)
    unreachable = False
    for pk, state in due:
        if unreachable and state in (State.PENDING, State.FAILED):
            counts["skipped"] += 1  # one timeout per round, not one per waiting receipt
            continue
        receipt = _claim(pk, now)
        if receipt is None:
            continue
        outcome, error = _work(receipt, connection, counts, report)
        if outcome == "failed":
            counts["failed"] += 1
            unreachable = unreachable or bool(error and error.unreachable)
    return counts


def _work(
    receipt: ClosureReceipt, connection: Any, counts: dict[str, int], report: Report | None
) -> tuple[str, SendFailed | None]:
    try:
        if receipt.certificate_id is None:
            _issue_certificate(receipt)
            counts["certificates"] += 1
            if report:
                report(receipt, "certificate", None)
    except Exception as exc:
        log.exception("closure receipt %s: the certificate failed", receipt.pk)
        error = SendFailed(scrub(f"the certificate could not be issued: {exc!r}"))
        _report_failure(receipt, error, report)
        return "failed", error
    if receipt.state == State.NO_RECIPIENTS:
        _done_without_sending(receipt)
        return "done", None
    try:
        _send(receipt, connection)
    except Exception as exc:
        error = exc if isinstance(exc, SendFailed) else describe(exc, connection)
        _report_failure(receipt, error, report)
        return "failed", error
    counts["sent"] += 1
    log.info("closure receipt %s sent to %s", receipt.pk, ", ".join(receipt.emails))
    if report:
        report(receipt, "sent", None)
    return "sent", None


def _report_failure(receipt: ClosureReceipt, error: SendFailed, report: Report | None) -> None:
    _failed(receipt, str(error))
    log.log(
        logging.INFO if report else logging.WARNING,  # a reporting caller says it
        "closure receipt %s (case %s): attempt %s failed: %s (next at %s)",
        receipt.pk,
        receipt.case_id,
        receipt.attempts,
        error,
        receipt.next_attempt_at.isoformat() if receipt.next_attempt_at else "—",
    )
    if report:
        report(receipt, "failed", receipt.last_error)


# --- in the background -------------------------------------------------------------------------


def exit_wait() -> float:
    """How long a process waits at exit for its receipt threads: one render and one send."""
    return float(settings.EMAIL_TIMEOUT or 60) + float(settings.OFFBOARD_TSA_TIMEOUT) + 30


_jobs = AfterCommitJobs(
    THREAD_PREFIX,
    enabled=lambda: settings.OFFBOARD_RECEIPT_ON_COMMIT == "thread",
    exit_wait=exit_wait,
)
# No after-commit thread in this block: the caller processes the receipts itself.
inline = _jobs.inline


def request_soon(receipt_id: int) -> threading.Thread | None:
    """After a closure commits: issue the certificate and send the receipt in the background;
    the worker retries failures. A CLI process waits for it at exit (`exit_wait`)."""
    return _jobs.start(
        receipt_id,
        lambda: process_pending(receipt_id=receipt_id),
        f"closure receipt {receipt_id} failed",
    )


def wait_for_background(timeout: float = 60.0) -> None:
    """Join the after-commit threads still running, for at most `timeout` seconds in all."""
    _jobs.wait(timeout)
