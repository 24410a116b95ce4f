"""Posting deliveries: `deliver_due` (every round of `offboard worker`, later a task) and
`deliver_one` (a manual redelivery, or a task per delivery).

One attempt, as the closure-receipt outbox does it (notifications/receipts.py):

1. claim the delivery in a short transaction — attempts + 1 and a lease (`claimed_until`),
   so exactly one worker holds it even when several run at once, and a crashed worker's
   claim runs out;
2. build the body from the ledger entry, sign it (Standard Webhooks: `webhook-id`,
   `webhook-timestamp`, `webhook-signature` with one `v1,` signature per valid secret) and
   POST it, with no transaction open, to the address checked by `addresses.resolve`;
3. in a second short transaction: keep the attempt (status code, the first bytes of the
   answer, the error — never a secret), mark the delivery delivered on a 2xx, else due again
   after the backoff (30 s doubling to 1 h) or given up after OFFBOARD_WEBHOOK_MAX_ATTEMPTS;
   count the endpoint's failures in a row, and disable it when they reach
   OFFBOARD_WEBHOOK_DISABLE_AFTER and it has been failing for
   OFFBOARD_WEBHOOK_DISABLE_AFTER_HOURS; the organization's admins are then emailed.

Delivery is at least once: a crash after the receiver answered but before step 3 commits
posts again, with the same `webhook-id`, when the lease runs out.
"""

import datetime as dt
import http.client
import logging
import socket
import ssl
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse

from offboard import __version__
from offboard.core import clock
from offboard.core.sealing import SealedValueUnavailable
from offboard.inbound.signatures import signature
from offboard.jobs.engine import enqueue
from offboard.ledger.models import LedgerEntry
from offboard.ledger.timestamps import backoff
from offboard.webhooks import selectors, services
from offboard.webhooks.addresses import AddressRefused, Target, parse, resolve
from offboard.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from offboard.webhooks.payload import payload

log = logging.getLogger("offboard.webhooks")
MAX_READ = 64 * 1024  # of an answer: enough to keep an excerpt, never a whole download
EXCERPT = 1000
USER_AGENT = f"Offboard-Webhooks/{__version__}"
Pending = WebhookDelivery.State.PENDING


def timeout() -> float:
    return float(settings.OFFBOARD_WEBHOOK_TIMEOUT)


def lease() -> dt.timedelta:
    """How long a claimed delivery is left alone: past connect + answer timeouts, with a margin."""
    return dt.timedelta(seconds=3 * timeout() + 60)


@dataclass
class Answer:
    status: int | None = None
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# --- one HTTP request --------------------------------------------------------------------------


class _Pinned(http.client.HTTPConnection):
    """A connection to the address that was checked, whatever the host resolves to later."""

    def __init__(self, host: str, port: int, address: str, wait: float) -> None:
        super().__init__(host, port, timeout=wait)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, wait: float) -> None:
        super().__init__(host, port, timeout=wait, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(target: Target, body: bytes, headers: dict[str, str], wait: float) -> Answer:
    """POST `body`; the answer's status and the start of its body, or what went wrong.
    Redirects are not followed (a 3xx is a failure: the endpoint's URL should be changed)."""
    try:
        address = resolve(target)
    except AddressRefused as exc:
        return Answer(error=str(exc))
    kind = _PinnedTLS if target.scheme == "https" else _Pinned
    conn = kind(target.host, target.port, address, wait)
    where = f"{target.host}:{target.port}"
    deadline = time.monotonic() + 2 * wait
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        reply = conn.getresponse()
        chunks: list[bytes] = []
        read = 0
        while read < MAX_READ and time.monotonic() < deadline:
            chunk = reply.read1(MAX_READ - read)
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
        text = b"".join(chunks).decode("utf-8", "replace")
        return Answer(status=reply.status, excerpt=text[:EXCERPT])
    except TimeoutError:
        return Answer(error=f"{where} did not answer within {wait:g} s")
    except ssl.SSLError as exc:
        return Answer(error=f"{where}: TLS failed: {exc.reason or exc}")
    except ConnectionRefusedError:
        return Answer(error=f"{where} refused the connection")
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return Answer(error=f"{where}: {reason}")
    finally:
        conn.close()


# --- one delivery ------------------------------------------------------------------------------


def _claim(delivery_id: int, now: dt.datetime) -> WebhookDelivery | None:
    """Take one due delivery of an active endpoint for this caller alone; None if it is not
    due, not pending, or another worker has it."""
    with transaction.atomic():
        found = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(
                pk=delivery_id,
                state=Pending,
                next_attempt_at__lte=now,
                endpoint__state=WebhookEndpoint.State.ACTIVE,
            )
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .first()
        )
        if found is None:
            return None
        found.attempts += 1
        found.claimed_until = now + lease()
        found.save(update_fields=["attempts", "claimed_until"])
    return found


def _headers(delivery: WebhookDelivery, body: bytes, secrets: list[str]) -> dict[str, str]:
    sent_at = int(clock.now().timestamp())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.msg_id,
        "webhook-timestamp": str(sent_at),
        # One signature per valid secret, space-separated: during a rotation's grace period
        # a receiver holding either secret verifies the delivery.
        "webhook-signature": " ".join(
            signature(secret, delivery.msg_id, sent_at, body) for secret in secrets
        ),
    }


def _attempt(delivery: WebhookDelivery) -> Answer:
    endpoint = delivery.endpoint
    try:
        target = parse(endpoint.url)
    except AddressRefused as exc:
        return Answer(error=f"the endpoint's URL {exc}")
    try:
        secrets = selectors.signing_secrets(endpoint, clock.now())
    except SealedValueUnavailable as exc:
        return Answer(error=f"the endpoint's secret cannot be opened here: {exc}")
    entry = LedgerEntry.objects.select_related("case").get(pk=delivery.entry_id)
    body = payload(
        entry,
        org_slug=entry.event.get("org") or _org_slug(endpoint),
        case_ref=entry.case.ref if entry.case else None,
    )
    return post(target, body, _headers(delivery, body, secrets), timeout())


def _org_slug(endpoint: WebhookEndpoint) -> str:
    from offboard.accounts.models import Organization

    return str(Organization.objects.values_list("slug", flat=True).get(pk=endpoint.org_id))


def _should_disable(endpoint: WebhookEndpoint, now: dt.datetime) -> bool:
    after = int(settings.OFFBOARD_WEBHOOK_DISABLE_AFTER)
    hours = float(settings.OFFBOARD_WEBHOOK_DISABLE_AFTER_HOURS)
    since = endpoint.failing_since or now
    return endpoint.consecutive_failures >= after and now - since >= dt.timedelta(hours=hours)


def _settle(
    delivery: WebhookDelivery, answer: Answer, started: dt.datetime, took: float, manual: bool
) -> tuple[WebhookAttempt, bool]:
    """Keep the attempt and its consequences; (attempt, whether the endpoint must be disabled)."""
    now = clock.now()
    error = answer.error
    if not answer.ok and not error:
        error = f"answered HTTP {answer.status}"
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        attempt = WebhookAttempt.objects.create(
            org_id=delivery.org_id,
            delivery=locked,
            number=locked.attempts,
            manual=manual,
            started_at=started,
            duration_ms=int(took * 1000),
            status_code=answer.status,
            response_excerpt=answer.excerpt,
            error=error[:2000],
        )
        locked.claimed_until = None
        locked.last_status = answer.status
        locked.last_error = "" if answer.ok else error[:2000]
        if answer.ok:
            locked.state = WebhookDelivery.State.DELIVERED
            locked.delivered_at = now
            locked.next_attempt_at = None
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
        else:
            if locked.attempts >= int(settings.OFFBOARD_WEBHOOK_MAX_ATTEMPTS):
                locked.state = WebhookDelivery.State.FAILED
                locked.next_attempt_at = None
            elif locked.state == Pending:
                locked.next_attempt_at = now + backoff(locked.attempts)
                enqueue(
                    "offboard.jobs.tasks.deliver_webhooks",
                    [locked.pk],
                    run_after=locked.next_attempt_at,
                )
            endpoint.consecutive_failures = F("consecutive_failures") + 1
            if endpoint.failing_since is None:
                endpoint.failing_since = started
        locked.save()
        endpoint.save(update_fields=["consecutive_failures", "failing_since"])
        endpoint.refresh_from_db(fields=["consecutive_failures"])
        disable = not answer.ok and endpoint.active and _should_disable(endpoint, now)
    delivery.state, delivery.last_status = locked.state, locked.last_status
    delivery.next_attempt_at, delivery.last_error = locked.next_attempt_at, locked.last_error
    return attempt, disable


def _run(delivery: WebhookDelivery, manual: bool) -> WebhookAttempt:
    started = clock.now()
    began = time.monotonic()
    try:
        answer = _attempt(delivery)
    except Exception as exc:  # our own fault: kept on the delivery, retried like any failure
        log.exception("webhook delivery %s", delivery.msg_id)
        answer = Answer(error=f"unexpected error: {type(exc).__name__}")
    attempt, disable = _settle(delivery, answer, started, time.monotonic() - began, manual)
    if attempt.ok:
        log.info("webhook delivery %s: %s", delivery.msg_id, attempt.status_code)
    else:
        log.warning(
            "webhook delivery %s: attempt %s failed: %s",
            delivery.msg_id,
            attempt.number,
            attempt.error,
        )
    if disable:
        endpoint = delivery.endpoint
        failures = WebhookEndpoint.objects.values_list("consecutive_failures", flat=True).get(
            pk=endpoint.pk
        )
        if services.disable_failing_endpoint(
            endpoint_id=endpoint.pk, failures=failures, last_error=attempt.error
        ):
            tell_admins(endpoint.pk)
    return attempt


def deliver_one(delivery_id: int, *, manual: bool = False) -> WebhookAttempt | None:
    """Attempt one delivery now if it is due and free; the attempt, or None."""
    delivery = _claim(delivery_id, clock.now())
    if delivery is None:
        return None
    return _run(delivery, manual)


def deliver_due(*, limit: int = 50) -> dict[str, int]:
    """Attempt every due delivery (at most `limit`), oldest first. After a failure, the
    endpoint's other deliveries wait for the next round (one timeout per round, not one per
    delivery). Counts: `delivered`, `failed`, `skipped`, `disabled` (endpoints)."""
    counts = {"delivered": 0, "failed": 0, "skipped": 0, "disabled": 0}
    now = clock.now()
    due = list(
        WebhookDelivery.objects.filter(
            state=Pending,
            next_attempt_at__lte=now,
            endpoint__state=WebhookEndpoint.State.ACTIVE,
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .order_by("next_attempt_at", "id")
        .values_list("pk", "endpoint_id")[:limit]
    )
    failing: set[int] = set()
    for pk, endpoint_id in due:
        if endpoint_id in failing:
            counts["skipped"] += 1
            continue
        delivery = _claim(pk, now)
        if delivery is None:
            continue
        attempt = _run(delivery, manual=False)
        if attempt.ok:
            counts["delivered"] += 1
        else:
            counts["failed"] += 1
            failing.add(endpoint_id)
            if not WebhookEndpoint.objects.filter(pk=endpoint_id, state="active").exists():
                counts["disabled"] += 1
    return counts


# --- telling the admins ------------------------------------------------------------------------


def tell_admins(endpoint_id: int) -> int:
    """Email the organization's admins that an endpoint was disabled; how many were told.
    A mail server that is down is logged, not retried: the Settings page shows it too."""
    endpoint = WebhookEndpoint.objects.select_related("org").get(pk=endpoint_id)
    to = selectors.admin_emails(endpoint.org)
    if not to:
        return 0
    base = str(settings.OFFBOARD_BASE_URL or "").rstrip("/")
    try:
        page = base + reverse("web:webhook-deliveries", args=[endpoint.pk])
    except NoReverseMatch:
        page = ""
    text = (
        f"The webhook endpoint “{endpoint.name}” of {endpoint.org.name} was disabled: "
        f"{endpoint.disabled_reason}.\n\n"
        f"Address: {endpoint.url}\n\n"
        "No event is posted to it until an admin enables it again under Settings → Outbound "
        "webhooks; the deliveries it missed wait and are posted then.\n"
        + (f"\nIts delivery log: {page}\n" if page else "")
    )
    message = EmailMessage(
        subject=f"[Offboard] Webhook endpoint “{endpoint.name}” disabled after failures",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
    )
    try:
        message.send(fail_silently=False)
    except Exception:
        log.exception(
            "telling the admins of %s that endpoint %s was disabled", endpoint.org, endpoint.pk
        )
        return 0
    return len(to)
