"""Tenant scoping: every domain row belongs to one organization and is read through it."""

from typing import Any, TypeVar

from django.db import models

from offboard.core.errors import NotFound

M = TypeVar("M", bound="OrgScopedModel")


class OrgScopedQuerySet(models.QuerySet[M]):
    def for_org(self, org: Any) -> "OrgScopedQuerySet[M]":
        return self.filter(org=org)

    def get_in_org(self, org: Any, what: str | None = None, **lookup: Any) -> M:
        """Fetch one object of `org`; another organization's object is simply not found."""
        try:
            return self.filter(org=org).get(**lookup)
        except (self.model.DoesNotExist, ValueError, TypeError):
            label = what or self.model._meta.verbose_name
            shown = ", ".join(f"{k}={v}" for k, v in lookup.items())
            raise NotFound(f"No {label} with {shown} in this organization.") from None


class OrgScopedModel(models.Model):
    org = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        abstract = True
