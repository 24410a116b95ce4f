"""The closure receipt: an outbox row written in the closing transaction.

It carries two jobs that run after commit, outside any transaction: render and store the
closure certificate (once), then email it with the signed closure checkpoint to the client's
contacts (retried with backoff until the mail server accepts it).
"""

from django.db import models

from offboard.core.models import OrgScopedModel


class ClosureReceipt(OrgScopedModel):
    class State(models.TextChoices):
        PENDING = "pending"  # not tried yet
        SENT = "sent"  # the mail server accepted it
        FAILED = "failed"  # the last attempt failed; retried at next_attempt_at
        NO_RECIPIENTS = "no_recipients"  # nobody to send to; the certificate is still issued

    case = models.OneToOneField(
        "cases.OffboardingCase", on_delete=models.PROTECT, related_name="closure_receipt"
    )
    checkpoint = models.ForeignKey("ledger.Checkpoint", on_delete=models.PROTECT, related_name="+")
    # Who closed the case, and in which role: the certificate and receipt events are recorded
    # in their name with auth method "system".
    closed_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    closed_by_role = models.CharField(max_length=20)
    recipients = models.JSONField(
        default=list, blank=True, help_text="[{name, email, role}] of the contacts at closure."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    certificate = models.ForeignKey(
        "evidence.EvidenceFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    # When the worker should next work on it; null once there is nothing left to do.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while one worker holds it (a lease, so a crashed worker's claim runs out); no
    # other worker takes it before then, even when "retry now" made it due.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=250, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "notifications_closure_receipt"
        ordering = ["id"]
        indexes = [models.Index(fields=["next_attempt_at"], name="closure_receipt_due")]

    def __str__(self) -> str:
        return f"closure receipt of case {self.case_id} ({self.state})"

    @property
    def emails(self) -> list[str]:
        return [r["email"] for r in self.recipients]
