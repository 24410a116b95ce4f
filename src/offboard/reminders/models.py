"""What each member receives, the messages to send (an outbox), the sent-log that makes every
reminder idempotent, and the periodic jobs' last runs.

A `Notice` is one email to one member: an assignment, their daily digest, a deadline reminder
or an escalation, listing one or more items. Each item it covers has a `SentItem` row whose
unique key (org, user, kind, item, day) is claimed when the notice is queued, in the same
transaction: a second job — another worker, a second run the same day — finds the key taken
and queues nothing. `item` names what is covered (`digest`, `step:40`, `step:40:managers`,
`access:12`, …) and `day` the date that makes it due (the day of a digest, a deadline, the due
date of an overdue step), so a deadline that moves gets a reminder of its own. The outbox
claims each notice with a lease before sending and marks it sent in the same transaction as
the ledger event(s) recording it: at least once (a crash between the mail server's yes and
that commit sends it again, with the same Message-ID).
"""

from django.db import models

from offboard.core.models import OrgScopedModel

USER = "accounts.User"

# The kinds of notice, which are also the channels a member turns on or off.
ASSIGNMENT, DIGEST, DEADLINE, ESCALATION = "assignment", "digest", "deadline", "escalation"
CHANNELS = (ASSIGNMENT, DIGEST, DEADLINE, ESCALATION)


class Preference(OrgScopedModel):
    """What one member receives. No row: everything (the defaults)."""

    user = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    assignment = models.BooleanField(default=True)
    digest = models.BooleanField(default=True)
    deadline = models.BooleanField(default=True)
    escalation = models.BooleanField(default=True)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "reminders_preference"
        constraints = [
            models.UniqueConstraint(fields=["org", "user"], name="reminder_preference_per_member")
        ]

    def __str__(self) -> str:
        return f"reminder preferences of user {self.user_id}"

    def receives(self, channel: str) -> bool:
        return bool(getattr(self, channel))


class Notice(OrgScopedModel):
    """One email to one member: queued, claimed by one worker, then sent or dropped."""

    QUEUED, SENT, DROPPED = "queued", "sent", "dropped"

    user = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20)  # one of CHANNELS
    # What the message says: its items as they were when it was queued (each is checked
    # again just before sending; one settled since is left out).
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, default=QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=250, blank=True)
    # Why a notice was not sent: the member turned the channel off, has no email address,
    # left, or everything it listed was settled before it went out.
    dropped_reason = models.CharField(max_length=200, blank=True)
    # The ledger indices of the events recording it (one per case it names).
    event_indices = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "reminders_notice"
        ordering = ["id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="reminder_notice_due")]

    def __str__(self) -> str:
        return f"{self.kind} notice {self.pk} for user {self.user_id} ({self.state})"


class SentItem(OrgScopedModel):
    """The sent-log: this member was (or is being) told about this item for this day."""

    user = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20)
    item = models.CharField(max_length=120)
    day = models.DateField()
    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="sent_items")

    class Meta:
        db_table = "reminders_sent_item"
        constraints = [
            models.UniqueConstraint(
                fields=["org", "user", "kind", "item", "day"], name="reminder_sent_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.item} {self.day} to user {self.user_id}"


class PeriodicRun(models.Model):
    """The last run of one periodic job (`digest`, `deadlines`, `escalations`, `portal`): a job
    runs at most once per period, whichever worker takes it first (a row, not memory)."""

    name = models.CharField(max_length=40, primary_key=True)
    period = models.CharField(max_length=40, blank=True)  # the period of the last finished run
    claimed_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "reminders_periodic_run"

    def __str__(self) -> str:
        return f"periodic job {self.name} (last period {self.period or 'never'})"
