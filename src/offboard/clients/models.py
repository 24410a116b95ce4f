"""Clients, their contacts and their contracts."""

from django.db import models

from offboard.core.models import OrgScopedModel


class ServiceType(models.TextChoices):
    MARKETING_AGENCY = "marketing_agency", "Marketing agency"
    MANAGED_IT = "managed_it", "Managed IT / MSP"
    SOFTWARE_DEVELOPMENT = "software_development", "Software development"
    CONSULTING = "consulting", "Consulting"
    ACCOUNTING = "accounting", "Accounting / bookkeeping"


class FeeType(models.TextChoices):
    FIXED = "fixed", "Fixed fee"
    TIME_AND_MATERIALS = "time_and_materials", "Time and materials"
    RETAINER = "retainer", "Retainer"


class Client(OrgScopedModel):
    name = models.CharField(max_length=200)
    legal_name = models.CharField(max_length=300, blank=True)
    reference = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="client_name_unique_in_org")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def as_event_data(self) -> dict[str, object]:
        return {
            "id": self.pk,
            "name": self.name,
            "legal_name": self.legal_name,
            "reference": self.reference,
        }


class Contact(OrgScopedModel):
    class Role(models.TextChoices):
        PRIMARY = "primary"
        LEGAL = "legal"
        FINANCE = "finance"
        TECHNICAL = "technical"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    phone = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["role", "name"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}> ({self.role})"

    def as_event_data(self) -> dict[str, object]:
        return {
            "id": self.pk,
            "client_id": self.client_id,
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "phone": self.phone,
        }


class Contract(OrgScopedModel):
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="contracts")
    reference = models.CharField(max_length=64)
    title = models.CharField(max_length=200, blank=True)
    service_type = models.CharField(max_length=32, choices=ServiceType.choices)
    fee_type = models.CharField(max_length=32, choices=FeeType.choices)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    notice_period_days = models.PositiveIntegerField(default=30)
    notice_received_at = models.DateTimeField(null=True, blank=True)
    data_return_window_days = models.PositiveIntegerField(default=30)
    retention_terms = models.TextField(blank=True)
    documents = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "reference"], name="contract_ref_unique_in_org")
        ]
        ordering = ["client__name", "reference"]

    def __str__(self) -> str:
        return f"{self.reference} ({self.client})"

    def as_event_data(self) -> dict[str, object]:
        return {
            "id": self.pk,
            "client_id": self.client_id,
            "reference": self.reference,
            "title": self.title,
            "service_type": self.service_type,
            "fee_type": self.fee_type,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "notice_period_days": self.notice_period_days,
            "notice_received_at": self.notice_received_at,
            "data_return_window_days": self.data_return_window_days,
            "retention_terms": self.retention_terms,
        }
