"""Inbound webhook endpoints and the deliveries that opened cases through them.

An endpoint's secret is needed in clear to check each delivery's HMAC, so it is sealed
(`core/sealing.py`), never hashed; it is shown once, when made. After a rotation the previous
secret keeps working for a grace period, so the sender can switch without losing events.
"""

import uuid

from django.db import models

from offboard.core.models import OrgScopedModel

USER = "accounts.User"


class InboundEndpoint(OrgScopedModel):
    """Where another system posts events that open cases; until revoked."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    secret_sealed = models.TextField()
    previous_secret_sealed = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # What a case it opens gets: its owner, its playbook (none: the one suggested for the
    # contract's service type), and whether it starts as a draft for review.
    case_owner = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    playbook = models.ForeignKey(
        "playbooks.Playbook", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    open_as_draft = models.BooleanField(default=False)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "inbound_endpoint"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"inbound endpoint {self.name} ({self.public_id})"

    @property
    def enabled(self) -> bool:
        return self.revoked_at is None

    @property
    def seal_context(self) -> str:
        """What a sealed secret is bound to: this endpoint of this organization."""
        return f"inbound-endpoint:{self.org_id}:{self.public_id}"

    def as_event_data(self) -> dict[str, object]:
        return {
            "endpoint_id": str(self.public_id),
            "name": self.name,
            "case_owner_id": self.case_owner_id,
            "playbook": self.playbook.slug if self.playbook else None,
            "open_as_draft": self.open_as_draft,
        }


class InboundDelivery(OrgScopedModel):
    """A delivery that opened a case, kept by the sender's `webhook-id`: a repeat of it is
    answered from here and writes nothing. Refused deliveries are answered, never stored."""

    endpoint = models.ForeignKey(
        InboundEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    webhook_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=40)
    body_sha256 = models.CharField(max_length=64)
    signed_at = models.DateTimeField(help_text="The sender's webhook-timestamp.")
    received_at = models.DateTimeField()
    # What the delivery did; "case_opened" is the only outcome stored (refusals write nothing).
    outcome = models.CharField(max_length=32, default="case_opened")
    case = models.ForeignKey("cases.OffboardingCase", on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "inbound_delivery"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "webhook_id"], name="inbound_delivery_once_per_id"
            )
        ]

    def __str__(self) -> str:
        return f"delivery {self.webhook_id} to endpoint {self.endpoint_id}"
