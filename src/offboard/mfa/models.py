"""A member's second factors (an authenticator app, passkeys, recovery codes) and each
organization's second-factor policy.

Factors belong to the person (the user), not to one organization: a member of two
organizations signs in once. The TOTP seed is sealed (`core/sealing.py`), never hashed: a code
is checked against it. Recovery codes are stored as SHA-256 hashes only (119 random bits each).
"""

import uuid

from django.db import models

USER = "accounts.User"


class TotpDevice(models.Model):
    """An authenticator app (RFC 6238: SHA-1, 6 digits, 30 s). Active once confirmed with a
    code; `last_used_step` refuses the same code (or an older one) a second time."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="totp_device")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    secret_sealed = models.TextField()
    created_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_step = models.BigIntegerField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "mfa_totp_device"

    def __str__(self) -> str:
        return f"authenticator app of {self.user_id}"

    @property
    def seal_context(self) -> str:
        return f"mfa-totp:{self.user_id}:{self.public_id}"


class RecoveryCode(models.Model):
    """One single-use recovery code, as the SHA-256 of its normalized text."""

    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "mfa_recovery_code"
        constraints = [
            models.UniqueConstraint(fields=["user", "code_hash"], name="mfa_recovery_code_once")
        ]

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}"


class Passkey(models.Model):
    """A WebAuthn credential: a second factor after a password, or a passwordless sign-in."""

    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="passkeys")
    credential_id = models.CharField(max_length=1400, unique=True)  # base64url
    public_key = models.BinaryField()  # COSE
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list)
    name = models.CharField(max_length=100)
    aaguid = models.CharField(max_length=36, blank=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "mfa_passkey"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"passkey {self.name} of {self.user_id}"


class WebAuthnUser(models.Model):
    """The random user handle a member's passkeys carry (never the username or the id)."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="webauthn_user")
    handle = models.BinaryField(max_length=64, unique=True)

    class Meta:
        db_table = "mfa_webauthn_user"

    def __str__(self) -> str:
        return f"webauthn handle of {self.user_id}"


class FailedSecondFactor(models.Model):
    """A wrong code or passkey at the sign-in's second step: counted per member over a window,
    so that asking for a new pending sign-in does not reset the limit."""

    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()

    class Meta:
        db_table = "mfa_failed_second_factor"
        indexes = [models.Index(fields=["user", "at"], name="mfa_failed_user_at")]

    def __str__(self) -> str:
        return f"failed second factor of {self.user_id} at {self.at}"


class MfaPolicy(models.Model):
    """Who in the organization must pass a second factor to approve or close a case."""

    class RequiredFor(models.TextChoices):
        NOBODY = "nobody"
        APPROVERS = "approvers"  # the roles that hold cases.approve
        EVERYONE = "everyone"

    org = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="mfa_policy"
    )
    required_for = models.CharField(
        max_length=16, choices=RequiredFor.choices, default=RequiredFor.NOBODY
    )
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "mfa_policy"

    def __str__(self) -> str:
        return f"second factor required for {self.required_for} in {self.org_id}"
