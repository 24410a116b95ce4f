"""Connections to external systems (one connector kind each) and the accounts a case's access
grants stand for in them (decision 0024).

A connection's `config` holds no secret; its secret (token, password) is sealed
(`core/sealing.py`) with the connection's identity as context, so it opens only on this row.
"""

import uuid

from django.db import models

from offboard.core.models import OrgScopedModel

USER = "accounts.User"


class Connection(OrgScopedModel):
    class State(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=40)
    config = models.JSONField(default=dict, blank=True)
    secret_sealed = models.TextField()
    recheck_interval_days = models.PositiveIntegerField(default=30)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "connector_connection"
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="connector_connection_name")
        ]

    def __str__(self) -> str:
        return f"connection {self.name} ({self.kind})"

    @property
    def seal_context(self) -> str:
        """What the sealed secret is bound to: this connection of this organization."""
        return f"connector-connection:{self.org_id}:{self.public_id}"

    def as_event_data(self) -> dict[str, object]:
        """Never the secret: the connection's id stands for it."""
        return {
            "connection_id": str(self.public_id),
            "name": self.name,
            "kind": self.kind,
            "config": self.config,
            "recheck_interval_days": self.recheck_interval_days,
            "state": self.state,
        }


class LinkedAccount(OrgScopedModel):
    """The account in a connection's system that an access grant stands for: kept so that a
    user deleted by a revoke can still be read back by its id."""

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="accounts")
    grant = models.ForeignKey(
        "cases.AccessGrant", on_delete=models.PROTECT, related_name="linked_accounts"
    )
    external_id = models.CharField(max_length=500)
    account = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "connector_linked_account"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "grant"], name="connector_linked_account_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.external_id} via {self.connection_id}"
