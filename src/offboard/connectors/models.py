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
    # The policy: each run needs a manager's approval (not the requester's) before it goes.
    requires_approval = models.BooleanField(default=False)
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
            "requires_approval": self.requires_approval,
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
    # The re-check after the case closed (connectors/recheck.py) — bookkeeping, not the case's
    # state: when it last read the account, what it read, and since when the access is back
    # (the alert stands while `present_since` is set; an absent read clears it).
    rechecked_at = models.DateTimeField(null=True, blank=True)
    recheck_status = models.CharField(max_length=16, blank=True)
    present_since = models.DateTimeField(null=True, blank=True)

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


class ConnectorRun(OrgScopedModel):
    """A revoke or verify asked for on a case and run in the background (`connectors/runs.py`):
    the row is the outbox — the job only carries its id — and shows the progress and each
    grant's outcome while it runs. At most one run per connection at a time (the claim)."""

    class Action(models.TextChoices):
        REVOKE = "revoke"
        VERIFY = "verify"

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval"
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(
        "cases.OffboardingCase", on_delete=models.PROTECT, related_name="connector_runs"
    )
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="runs")
    action = models.CharField(max_length=16, choices=Action.choices)
    grant_ids = models.JSONField(default=list)
    plan_sha256 = models.CharField(max_length=64, blank=True)  # the plan the requester saw
    idempotency_key = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        "accounts.Membership", on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(  # who approved or declined it, where the policy asks
        "accounts.Membership", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    auth_method = models.CharField(max_length=16, default="session")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=list)  # per grant, once recorded
    error = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "connector_run"
        ordering = ["-id"]
        indexes = [models.Index(fields=["connection", "state"], name="connector_run_conn_state")]

    def __str__(self) -> str:
        return f"{self.action} run {self.public_id} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)
