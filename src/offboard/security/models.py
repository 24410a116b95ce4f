"""A member's sessions as they see them, password-reset tokens, and the counters behind the
rate limits. No raw session key or reset token is stored: only their SHA-256."""

from django.conf import settings
from django.db import models


class MemberSession(models.Model):
    """One signed-in browser. `key_hash` is the SHA-256 of Django's session key; `sealed_key`
    is the key sealed with offboard.core.sealing, so a sign-out elsewhere can delete the session
    from the store without the database holding a usable key (decision 0028)."""

    class EndReason(models.TextChoices):
        SIGNED_OUT = "signed_out", "Signed out"
        ENDED_BY_MEMBER = "ended_by_member", "Signed out from another session"
        ENDED_BY_ADMIN = "ended_by_admin", "Signed out by an admin"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_RESET = "password_reset", "Password reset"
        DEACTIVATED = "deactivated", "Member deactivated"
        REPLACED = "replaced", "Signed in again in the same browser"

    org = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="member_sessions"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    sealed_key = models.TextField()
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    device = models.CharField(max_length=100)
    method = models.CharField(max_length=30, default="password")
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=30, choices=EndReason.choices, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        indexes = [
            models.Index(fields=["user", "ended_at"]),
            models.Index(fields=["org", "ended_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.device} ({self.ip or 'no IP'})"


class PasswordResetToken(models.Model):
    """A link sent by e-mail to set a new password: single-use, expiring, stored as the
    SHA-256 of its 256-bit random token."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_reset_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    requested_ip = models.CharField(max_length=45, blank=True)

    def __str__(self) -> str:
        return f"reset for user {self.user_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class SecurityCount(models.Model):
    """Counts per key and window (an hour, as seconds since the epoch // window), shared by
    every web process: reset requests per address and per IP, failed sign-ins per member."""

    key = models.CharField(max_length=100)
    period = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "security_count"
        constraints = [
            models.UniqueConstraint(fields=["key", "period"], name="security_count_key_period")
        ]

    def __str__(self) -> str:
        return f"{self.key} @ {self.period}: {self.count}"
