"""Portal links, the contacts' responses through them, and the reminders sent about them.

Only the SHA-256 of a link's token is stored; the URL carrying the token is shown once. The
responses and reminders index what the ledger holds (each names its event's index), so
pages and deemed acceptance can find them without reading event bodies.
"""

import datetime as dt

from django.db import models

from offboard.core.models import OrgScopedModel

USER = "accounts.User"


class PortalLink(OrgScopedModel):
    """One contact's access to one case, until it expires or is revoked."""

    case = models.ForeignKey(
        "cases.OffboardingCase", on_delete=models.PROTECT, related_name="portal_links"
    )
    contact = models.ForeignKey(
        "clients.Contact", on_delete=models.PROTECT, related_name="portal_links"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # The date the contact is asked to respond by: deemed acceptance waits for it to pass.
    respond_by = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Delivery of the link's email: bookkeeping after the issuing transaction, not an event.
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.TextField(blank=True)

    class Meta:
        db_table = "portal_link"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["case", "contact"], name="portal_link_case_contact")]

    def __str__(self) -> str:
        return f"portal link {self.pk} for contact {self.contact_id} on case {self.case_id}"

    def status_at(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"

    def is_live(self, now: dt.datetime) -> bool:
        return self.status_at(now) == "active"


class PortalResponse(OrgScopedModel):
    """What a contact said through a link: acknowledged items, or disputed one."""

    class Kind(models.TextChoices):
        ACKNOWLEDGED = "acknowledged"
        DISPUTED = "disputed"

    link = models.ForeignKey(PortalLink, on_delete=models.PROTECT, related_name="responses")
    case = models.ForeignKey("cases.OffboardingCase", on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey("clients.Contact", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    items = models.JSONField(default=list, help_text="[{register, id, label}] responded to.")
    typed_name = models.CharField(max_length=200, blank=True)
    comment = models.TextField(blank=True)
    manifest_sha256 = models.CharField(max_length=64)
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField()
    event_index = models.BigIntegerField()
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    confirmation_error = models.TextField(blank=True)

    class Meta:
        db_table = "portal_response"
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} by contact {self.contact_id} ({len(self.items)} items)"


class PortalReminder(OrgScopedModel):
    """A reminder the mail server accepted; deemed acceptance counts these."""

    link = models.ForeignKey(PortalLink, on_delete=models.PROTECT, related_name="reminders")
    case = models.ForeignKey("cases.OffboardingCase", on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey("clients.Contact", on_delete=models.PROTECT, related_name="+")
    sent_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    sent_at = models.DateTimeField()
    items = models.JSONField(default=list, help_text="[{register, id, label}] still awaited.")
    message_id = models.CharField(max_length=250)
    event_index = models.BigIntegerField()

    class Meta:
        db_table = "portal_reminder"
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"reminder to contact {self.contact_id} at {self.sent_at:%Y-%m-%d}"


class RateCount(models.Model):
    """Requests to the portal in one minute from one IP address or to one link: a counter in
    the database, so every web process counts the same requests (offboard.portal.ratelimit).
    Not tenant data: a key is `ip:<address>` or `link:<part of the token's SHA-256>`."""

    key = models.CharField(max_length=100)
    minute = models.BigIntegerField(help_text="Minutes since the Unix epoch.")
    count = models.IntegerField(default=0)

    class Meta:
        db_table = "portal_rate_count"
        constraints = [
            models.UniqueConstraint(fields=["key", "minute"], name="portal_rate_count_unique")
        ]
        indexes = [models.Index(fields=["minute"], name="portal_rate_count_minute")]

    def __str__(self) -> str:
        return f"{self.key}: {self.count} in minute {self.minute}"
