"""Calendar feeds: one live secret address per member of an organization.

Only the SHA-256 of a feed's token is stored; the URL carrying the token is shown once, when
the feed is created. A member has at most one live feed: creating a new one revokes the old.
"""

from django.db import models

from offboard.core.models import OrgScopedModel

USER = "accounts.User"


class CalendarFeed(OrgScopedModel):
    """A member's feed of their steps' due dates and their cases' milestones, until revoked."""

    user = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="calendar_feeds")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # When a calendar app last read it: bookkeeping (at most once a minute), not an event.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "calendar_feed"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "user"],
                condition=models.Q(revoked_at__isnull=True),
                name="calendar_feed_one_live_per_member",
            )
        ]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "live"
        return f"calendar feed {self.pk} of user {self.user_id} ({state})"
