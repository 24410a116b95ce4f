"""The event record. For now a plain append-only table; the Merkle log replaces its storage."""

from typing import Any

from django.db import models

from offboard.core.errors import Conflict
from offboard.core.models import OrgScopedModel


class CaseEvent(OrgScopedModel):
    """One recorded action. Rows are never updated or deleted."""

    case = models.ForeignKey(
        "cases.OffboardingCase",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
    )
    case_ref = models.CharField(max_length=32, blank=True, default="")
    type = models.CharField(max_length=64)
    at = models.DateTimeField()
    actor_user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.JSONField()
    data = models.JSONField(default=dict)
    files = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["org", "case", "id"])]
        ordering = ["id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise Conflict("Events are append-only; an event cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise Conflict("Events are append-only; an event cannot be deleted.")

    def __str__(self) -> str:
        return f"{self.type} @ {self.at:%Y-%m-%d %H:%M}"
