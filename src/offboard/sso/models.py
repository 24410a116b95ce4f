"""An organization's OpenID Connect provider, and which provider account is which member.

The client secret is needed in clear at the token endpoint, so it is sealed
(`core/sealing.py`), never hashed, and never shown again once saved."""

from django.conf import settings
from django.db import models

from offboard.accounts.models import Organization


class SsoConfig(models.Model):
    org = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="sso")
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret_sealed = models.TextField(blank=True)
    # Lower-case e-mail domains whose addresses may sign in (["example.com"]).
    allowed_domains = models.JSONField(default=list)
    groups_claim = models.CharField(max_length=100, default="groups")
    # A groups-claim value -> an Offboard role ({"offboard-admins": "admin"}).
    group_roles = models.JSONField(default=dict)
    sso_required = models.BooleanField(default=False)
    # The one member who may still use a password when SSO is required (an admin).
    break_glass = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SSO of {self.org} ({self.issuer})"

    @property
    def seal_context(self) -> str:
        """What the sealed client secret is bound to: this organization's SSO."""
        return f"sso:{self.org_id}"

    @property
    def secret_is_set(self) -> bool:
        return bool(self.client_secret_sealed)


class SsoIdentity(models.Model):
    """The provider's account (issuer + `sub`) behind a member: matched at every login."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities"
    )
    issuer = models.URLField(max_length=500)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="one_member_per_sso_subject")
        ]

    def __str__(self) -> str:
        return f"{self.issuer} {self.subject} -> {self.user_id}"
