"""Tenants, people and their roles, API tokens."""

from django.contrib.auth.models import AbstractUser
from django.db import models

from offboard.core.permissions import ROLES


class Organization(models.Model):
    slug = models.SlugField(unique=True, max_length=50)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    next_case_number = models.PositiveIntegerField(default=1)
    # API token lifetimes an admin sets (decision 0029): a token created without an expiry
    # lives `api_token_default_days`; none may live longer than `api_token_max_days`. Defaults in
    # the database too, so code from before these columns (a rolling upgrade) can still insert.
    api_token_default_days = models.PositiveSmallIntegerField(default=90, db_default=90)
    api_token_max_days = models.PositiveSmallIntegerField(default=365, db_default=365)

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A staff user; may belong to several organizations through memberships."""

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin"
        MANAGER = "manager"
        OPERATOR = "operator"
        FINANCE = "finance"
        AUDITOR = "auditor"

    assert tuple(Role.values) == ROLES

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "user"], name="one_membership_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.org}"

    @property
    def can_own_work(self) -> bool:
        """Cases, steps and register items go to active members who are not auditors."""
        return self.role != self.Role.AUDITOR and self.user.is_active


class ApiToken(models.Model):
    """A bearer token for one user in one organization. Only its SHA-256 is stored.

    It acts as `user` with their role, narrowed to `scopes` (core/scopes.py), until
    `expires_at` or until it is revoked (by its owner or an admin: `revoked_by`)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
