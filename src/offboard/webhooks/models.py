"""Outbound webhook endpoints, the deliveries owed to them and every attempt at one.

An endpoint's secret signs each delivery (Standard Webhooks), so it is needed in clear: it is
sealed (`core/sealing.py`), shown once when made. After a rotation the previous secret signs
too, for a grace period, so the receiver can switch without refusing a delivery.

A `WebhookDelivery` is an outbox row written in the transaction of the event it carries
(`fanout.py`); `delivery.py` claims it with a lease, posts it with no transaction open, and
keeps one `WebhookAttempt` per try (status code, a bounded excerpt of the answer, the error).
"""

import uuid

from django.db import models

from offboard.core.models import OrgScopedModel

USER = "accounts.User"


class WebhookEndpoint(OrgScopedModel):
    """Where the organization's events are posted; until deleted."""

    class State(models.TextChoices):
        ACTIVE = "active", "active"
        DISABLED = "disabled", "disabled"
        DELETED = "deleted", "deleted"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    url = models.CharField(max_length=2000)
    # Event types or prefixes (`case.*`) delivered here; empty: every event that may leave.
    event_types = models.JSONField(default=list, blank=True)
    secret_sealed = models.TextField(blank=True)
    previous_secret_sealed = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    consecutive_failures = models.IntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_endpoint"
        ordering = ["-created_at", "-id"]
        # The fan-out's one query per event: the organization's active endpoints.
        indexes = [models.Index(fields=["org", "state"], name="webhook_endpoint_org_state")]

    def __str__(self) -> str:
        return f"webhook endpoint {self.name} ({self.public_id})"

    @property
    def active(self) -> bool:
        return self.state == self.State.ACTIVE

    @property
    def seal_context(self) -> str:
        """What a sealed secret is bound to: this endpoint of this organization."""
        return f"webhook-endpoint:{self.org_id}:{self.public_id}"

    def as_event_data(self) -> dict[str, object]:
        return {
            "endpoint_id": str(self.public_id),
            "name": self.name,
            "url": self.url,
            "event_types": list(self.event_types),
        }


class WebhookDelivery(OrgScopedModel):
    """One event owed to one endpoint. Its `msg_id` is the `webhook-id` of every attempt, so a
    receiver that sees it twice (a retry, a redelivery) can tell."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed"  # given up after OFFBOARD_WEBHOOK_MAX_ATTEMPTS
        CANCELLED = "cancelled", "cancelled"  # its endpoint was deleted

    msg_id = models.CharField(max_length=64, unique=True)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    # The event: its body is read at each attempt, so a redacted event leaves as a marker.
    entry = models.ForeignKey(
        "ledger.LedgerEntry", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    event_type = models.CharField(max_length=64)
    event_index = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=2000, blank=True)

    class Meta:
        db_table = "webhook_delivery"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.msg_id} of event #{self.event_index} to {self.endpoint_id}"


class WebhookAttempt(OrgScopedModel):
    """One POST of a delivery: what the receiver answered, or why there was no answer."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_log"
    )
    number = models.IntegerField()
    manual = models.BooleanField(default=False)  # asked for by an admin (redelivery)
    started_at = models.DateTimeField()
    duration_ms = models.IntegerField()
    status_code = models.IntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=1000, blank=True)
    error = models.CharField(max_length=2000, blank=True)

    class Meta:
        db_table = "webhook_attempt"
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
