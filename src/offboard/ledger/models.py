"""The ledger's tables: one append-only Merkle log per organization, its signing keys,
signed checkpoints and their trusted timestamps.

`LedgerEntry` and `LedgerNode` refuse UPDATE and DELETE through database triggers
(migration 0003); the only update allowed is a redaction, which keeps the leaf hash.
"""

import json
from functools import cached_property
from typing import Any

from django.db import models

from offboard.core.errors import Conflict
from offboard.core.models import OrgScopedModel


class LogHead(models.Model):
    """The size of an organization's log. Its row lock serializes appends (PostgreSQL)."""

    org = models.OneToOneField(
        "accounts.Organization", on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    size = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"log of org {self.org_id}: {self.size} entries"


class LedgerEntry(OrgScopedModel):
    """One event: `body` holds the exact leaf bytes (RFC 8785 canonical JSON).

    The other columns repeat what the body says, for queries; verification reads the body.
    Every index costs pages on every append, so only the ones queries need exist: the
    unique (org, index) and (case, index) for timelines.
    """

    org = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    index = models.BigIntegerField()
    body = models.BinaryField()
    leaf_hash = models.BinaryField(max_length=32)
    redacted = models.BooleanField(default=False)
    case = models.ForeignKey(
        "cases.OffboardingCase",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,  # (case, index) below serves it
    )
    # The event's place in its case's chain (its body's `seq`): read to number the case's next
    # event without parsing bodies (a redacted body is gone). Null for events without a case
    # and for case events recorded before chains existed (event format v1).
    case_seq = models.BigIntegerField(null=True, blank=True)
    type = models.CharField(max_length=64)
    at = models.DateTimeField()
    actor_user = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )

    class Meta:
        db_table = "ledger_entry"
        constraints = [models.UniqueConstraint(fields=["org", "index"], name="ledger_entry_dense")]
        indexes = [models.Index(fields=["case", "index"], name="ledger_entry_case")]
        ordering = ["org", "index"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"#{self.index} {self.type}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise Conflict("Ledger entries are append-only; an event cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise Conflict("Ledger entries are append-only; an event cannot be deleted.")

    @cached_property
    def event(self) -> dict[str, Any]:
        """The event body as data; a redacted event shows only its marker."""
        if self.redacted:
            return {"redacted": True, "type": self.type, "data": {}, "actor": {}, "files": []}
        return json.loads(bytes(self.body))

    @property
    def data(self) -> dict[str, Any]:
        return self.event.get("data", {})

    @property
    def actor(self) -> dict[str, Any]:
        return self.event.get("actor", {})

    @property
    def files(self) -> list[str]:
        return self.event.get("files", [])

    @property
    def case_ref(self) -> str:
        return self.event.get("case") or ""


class LedgerNode(OrgScopedModel):
    """The hash of a complete subtree: (level, index) covers leaves [index·2^level, (index+1)·2^level)."""

    org = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    level = models.SmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        db_table = "ledger_node"
        constraints = [
            models.UniqueConstraint(fields=["org", "level", "index"], name="ledger_node_unique")
        ]

    def __str__(self) -> str:
        return f"node ({self.level}, {self.index})"


class SigningKey(OrgScopedModel):
    """An organization's Ed25519 checkpoint key. The private half lives in a 0600 file
    (`private_key_path`) or on a PKCS#11 token (`location`, a pkcs11: URI; decision 0033)."""

    class Backend(models.TextChoices):
        FILE = "file"
        PKCS11 = "pkcs11"

    name = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8)
    verifier_key = models.CharField(max_length=300)
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.FILE)
    private_key_path = models.CharField(max_length=500, blank=True)
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ledger_signing_key"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.verifier_key


class Checkpoint(OrgScopedModel):
    """A signed tree head: the signed note text as issued."""

    size = models.BigIntegerField()
    root = models.BinaryField(max_length=32)
    signed_note = models.TextField()
    key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="checkpoints")
    reason = models.CharField(max_length=64)
    case = models.ForeignKey(
        "cases.OffboardingCase", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        db_table = "ledger_checkpoint"
        ordering = ["org", "size", "id"]

    def __str__(self) -> str:
        return f"checkpoint size {self.size}"


class Timestamp(OrgScopedModel):
    """An RFC 3161 token over a checkpoint's signed note, from one TSA.

    Rows start `pending` in the checkpoint's transaction (an outbox): the worker asks the
    TSA after commit and retries with backoff while it is down.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        GRANTED = "granted"

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="timestamps")
    tsa_url = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    token = models.BinaryField(null=True, blank=True)  # the whole TimeStampResp (DER)
    gen_time = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "ledger_timestamp"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"timestamp of checkpoint {self.checkpoint_id} by {self.tsa_url} ({self.status})"
