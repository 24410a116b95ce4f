"""Outbound webhook endpoints: an admin creates one (its secret returned once), rotates its
secret, disables, re-enables or deletes it, and redelivers a delivery; an endpoint that keeps
failing is disabled by the deliverer (`disable_failing_endpoint`). One function per action,
one transaction, one ledger event — events that never leave the organization
(`fanout.PRIVATE_TYPES`)."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from offboard.core import clock
from offboard.core.actor import Actor, SystemActor
from offboard.core.errors import Conflict, NotFound
from offboard.core.permissions import require
from offboard.core.sealing import seal
from offboard.core.validation import Errors
from offboard.inbound.signatures import new_secret
from offboard.jobs.engine import enqueue
from offboard.ledger.recorder import record_event
from offboard.webhooks import fanout
from offboard.webhooks.addresses import AddressRefused, check_url
from offboard.webhooks.fanout import FILTER, MAX_FILTERS
from offboard.webhooks.models import WebhookDelivery, WebhookEndpoint

# After a rotation the previous secret signs too for this long (both signatures are sent), so
# the receiver can be switched to the new one without refusing a delivery.
ROTATION_GRACE = dt.timedelta(hours=24)
State = WebhookEndpoint.State
Pending = WebhookDelivery.State.PENDING


@dataclass(frozen=True)
class IssuedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # `whsec_…`: returned once, stored only sealed


def _filters(errors: Errors, event_types: Any) -> list[str]:
    if event_types is None:
        return []
    if isinstance(event_types, str):
        event_types = [t for t in event_types.replace(",", " ").split() if t]
    if not isinstance(event_types, list | tuple):
        errors.add("event_types", "must be a list of event types")
        return []
    found: list[str] = []
    for value in event_types:
        text = str(value).strip()
        if not FILTER.fullmatch(text):
            errors.add(
                "event_types",
                f"'{text[:60]}' is not an event type (e.g. case.closed) or a prefix (case.*)",
            )
        elif text not in found:
            found.append(text)
    if len(found) > MAX_FILTERS:
        errors.add("event_types", f"at most {MAX_FILTERS} types or prefixes")
    return found


def _url(errors: Errors, url: Any) -> str:
    text = str(url or "").strip()
    if not text:
        errors.add("url", "is required")
        return ""
    try:
        check_url(text)
    except AddressRefused as exc:
        errors.add("url", str(exc))
    return text


@transaction.atomic
def create_webhook_endpoint(
    *, actor: Actor, name: str, url: str, event_types: Any = None
) -> IssuedEndpoint:
    """A new endpoint with a fresh secret, returned here once: the receiver checks with it."""
    require(actor, "webhooks.manage")
    errors = Errors()
    name = errors.text("name", name, max_length=100)
    url = _url(errors, url)
    types = _filters(errors, event_types)
    kept = WebhookEndpoint.objects.for_org(actor.org).exclude(state=State.DELETED)
    if name and kept.filter(name=name).exists():
        errors.add("name", f"an endpoint named '{name}' exists already")
    errors.raise_if_any()
    secret = new_secret()
    endpoint = WebhookEndpoint(
        org=actor.org,
        name=name,
        url=url,
        event_types=types,
        created_by=actor.user,
        created_at=clock.now(),
    )
    endpoint.secret_sealed = seal(secret.encode(), context=endpoint.seal_context)
    endpoint.save()
    fanout.forget()  # its state decides the next events' deliveries
    record_event(actor=actor, type="webhook_endpoint.created", data=endpoint.as_event_data())
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


def _locked(actor: Actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """The endpoint, locked, for an admin of its organization; a deleted one is gone."""
    require(actor, "webhooks.manage")
    if endpoint.org_id != actor.org.pk:
        raise NotFound("No such webhook endpoint.")
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if locked.state == State.DELETED:
        raise NotFound(f"The webhook endpoint '{locked.name}' was deleted.")
    return locked


@transaction.atomic
def rotate_webhook_secret(*, actor: Actor, endpoint: WebhookEndpoint) -> IssuedEndpoint:
    """A new secret, returned once; the previous one signs too for ROTATION_GRACE."""
    locked = _locked(actor, endpoint)
    secret = new_secret()
    now = clock.now()
    locked.previous_secret_sealed = locked.secret_sealed
    locked.previous_secret_expires_at = now + ROTATION_GRACE
    locked.secret_sealed = seal(secret.encode(), context=locked.seal_context)
    locked.secret_rotated_at = now
    locked.save(
        update_fields=[
            "previous_secret_sealed",
            "previous_secret_expires_at",
            "secret_sealed",
            "secret_rotated_at",
        ]
    )
    record_event(
        actor=actor,
        type="webhook_endpoint.secret_rotated",
        data={
            "endpoint_id": str(locked.public_id),
            "name": locked.name,
            "previous_secret_valid_until": locked.previous_secret_expires_at,
        },
    )
    return IssuedEndpoint(endpoint=locked, secret=secret)


def _disable(locked: WebhookEndpoint, reason: str) -> None:
    locked.state = State.DISABLED
    locked.disabled_at = clock.now()
    locked.disabled_reason = reason[:500]
    locked.save(update_fields=["state", "disabled_at", "disabled_reason"])


@transaction.atomic
def disable_webhook_endpoint(
    *, actor: Actor, endpoint: WebhookEndpoint, reason: str = ""
) -> WebhookEndpoint:
    """Nothing is posted to it until it is enabled again; its deliveries wait."""
    locked = _locked(actor, endpoint)
    if locked.state == State.DISABLED:
        raise Conflict(f"The webhook endpoint '{locked.name}' is disabled already.")
    errors = Errors()
    reason = errors.text("reason", reason, max_length=500, required=False)
    errors.raise_if_any()
    _disable(locked, reason or f"disabled by {actor.display_name}")
    fanout.forget()  # its state decides the next events' deliveries
    record_event(
        actor=actor,
        type="webhook_endpoint.disabled",
        data={"endpoint_id": str(locked.public_id), "name": locked.name, "reason": reason},
    )
    return locked


@transaction.atomic
def enable_webhook_endpoint(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Deliveries resume at once, the waiting ones first; the failure count starts again."""
    locked = _locked(actor, endpoint)
    if locked.state == State.ACTIVE:
        raise Conflict(f"The webhook endpoint '{locked.name}' is active already.")
    locked.state = State.ACTIVE
    locked.consecutive_failures = 0
    locked.failing_since = None
    locked.disabled_at = None
    locked.disabled_reason = ""
    locked.save(
        update_fields=[
            "state",
            "consecutive_failures",
            "failing_since",
            "disabled_at",
            "disabled_reason",
        ]
    )
    waiting = WebhookDelivery.objects.filter(endpoint=locked, state=Pending).update(
        next_attempt_at=clock.now()
    )
    if waiting:
        enqueue("offboard.jobs.tasks.deliver_due_webhooks")
    fanout.forget()  # its state decides the next events' deliveries
    record_event(
        actor=actor,
        type="webhook_endpoint.enabled",
        data={"endpoint_id": str(locked.public_id), "name": locked.name, "waiting": waiting},
    )
    return locked


@transaction.atomic
def delete_webhook_endpoint(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Gone from the lists; its secrets erased and its waiting deliveries cancelled. Its
    delivery log stays in the database, as the record of what was sent."""
    locked = _locked(actor, endpoint)
    locked.state = State.DELETED
    locked.deleted_at = clock.now()
    locked.secret_sealed = ""
    locked.previous_secret_sealed = ""
    locked.previous_secret_expires_at = None
    locked.save(
        update_fields=[
            "state",
            "deleted_at",
            "secret_sealed",
            "previous_secret_sealed",
            "previous_secret_expires_at",
        ]
    )
    cancelled = WebhookDelivery.objects.filter(endpoint=locked, state=Pending).update(
        state=WebhookDelivery.State.CANCELLED, next_attempt_at=None, claimed_until=None
    )
    fanout.forget()  # its state decides the next events' deliveries
    record_event(
        actor=actor,
        type="webhook_endpoint.deleted",
        data={"endpoint_id": str(locked.public_id), "name": locked.name, "cancelled": cancelled},
    )
    return locked


@transaction.atomic
def redeliver(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """The delivery is due again now, with the same `webhook-id` (the caller then attempts
    it: `delivery.deliver_one(..., manual=True)`)."""
    endpoint = _locked(actor, delivery.endpoint)
    if endpoint.state != State.ACTIVE:
        raise Conflict(
            f"The webhook endpoint '{endpoint.name}' is disabled: enable it to redeliver.",
            code="endpoint_disabled",
        )
    locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk, endpoint=endpoint)
    now = clock.now()
    if locked.claimed_until and locked.claimed_until > now:
        raise Conflict(
            f"Delivery {locked.msg_id} is being attempted right now; look again in a moment.",
            code="delivery_in_progress",
        )
    previous = locked.state
    locked.state = Pending
    locked.next_attempt_at = now
    locked.save(update_fields=["state", "next_attempt_at"])
    record_event(
        actor=actor,
        type="webhook_delivery.redelivered",
        data={
            "endpoint_id": str(endpoint.public_id),
            "delivery_id": locked.msg_id,
            "event_index": locked.event_index,
            "event_type": locked.event_type,
            "previous_state": previous,
        },
    )
    return locked


@transaction.atomic
def disable_failing_endpoint(*, endpoint_id: int, failures: int, last_error: str) -> bool:
    """The deliverer gives up on an endpoint that kept failing: disabled, with its event
    (recorded by Offboard itself, `SystemActor`).
    False if it is not active any more (an admin or another worker was first)."""
    locked = (
        WebhookEndpoint.objects.select_for_update(of=("self",))
        .select_related("org", "created_by")
        .get(pk=endpoint_id)
    )
    if locked.state != State.ACTIVE:
        return False
    since = locked.failing_since
    reason = f"{failures} attempts in a row failed" + (
        f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
    )
    _disable(locked, f"{reason}; the last: {last_error}")
    fanout.forget()  # its state decides the next events' deliveries
    record_event(
        actor=SystemActor(org=locked.org, job="webhooks"),
        type="webhook_endpoint.disabled",
        data={
            "endpoint_id": str(locked.public_id),
            "name": locked.name,
            "reason": reason,
            "automatic": True,
            "last_error": last_error[:500],
        },
    )
    return True
