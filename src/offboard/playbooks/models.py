"""Playbooks and their immutable versions. A case pins one version and its sha256."""

from functools import cached_property
from typing import Any

from django.db import models

from offboard.core.errors import Conflict
from offboard.core.models import OrgScopedModel
from offboard.playbooks.spec import PlaybookSpec, parse_playbook


class Playbook(OrgScopedModel):
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    service_type = models.CharField(max_length=32)
    builtin = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="playbook_slug_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PlaybookVersion(OrgScopedModel):
    """One exact text of a playbook. Never changed once written."""

    playbook = models.ForeignKey(Playbook, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    source = models.TextField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["playbook", "version"], name="playbook_version_unique")
        ]
        ordering = ["playbook__name", "-version"]

    def __str__(self) -> str:
        return f"{self.playbook.slug} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise Conflict("Playbook versions are immutable; import a new version instead.")
        super().save(*args, **kwargs)

    @cached_property
    def spec(self) -> PlaybookSpec:
        return parse_playbook(self.source, stored=True)
