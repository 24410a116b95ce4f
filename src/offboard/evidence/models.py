"""Evidence files: content-addressed by SHA-256, stored once, never overwritten."""

from django.db import models

from offboard.core.models import OrgScopedModel


class EvidenceFile(OrgScopedModel):
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    media_type = models.CharField(max_length=100)
    original_name = models.CharField(max_length=255)
    uploaded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()
    storage_name = models.CharField(max_length=300)
    # The bytes' CRC-32, read as they were stored: a pack export streams the file once with it
    # (a zip member's header needs it first); without it (files stored before 0002) the
    # export reads the file twice. Not evidence: the SHA-256 is, and is checked on every read.
    crc32 = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "sha256"], name="one_file_per_hash")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.sha256[:12]}…)"

    def as_event_data(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "name": self.original_name,
        }
