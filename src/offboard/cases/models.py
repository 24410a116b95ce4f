"""Offboarding cases, their steps, the registers, waivers, approvals and addenda."""

from typing import Any, ClassVar

from django.db import models

from offboard.core.models import OrgScopedModel

USER = "accounts.User"


class OffboardingCase(OrgScopedModel):
    class State(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        CLOSING = "closing"
        CLOSED = "closed"
        CANCELLED = "cancelled"

    class Trigger(models.TextChoices):
        CONTRACT_EXPIRY = "contract_expiry", "Contract expiry"
        TERMINATION_BY_CLIENT = "termination_by_client", "Early termination by the client"
        TERMINATION_BY_PROVIDER = "termination_by_provider", "Early termination by us"
        NON_RENEWAL = "non_renewal", "Non-renewal"
        SCOPE_REDUCTION = "scope_reduction", "Scope reduction"
        BREACH = "breach", "Breach"
        OTHER = "other", "Other"

    class Scope(models.TextChoices):
        FULL = "full"
        PARTIAL = "partial"

    ref = models.CharField(max_length=32)
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT, related_name="cases")
    contracts = models.ManyToManyField("clients.Contract", related_name="cases")
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    trigger_date = models.DateField()
    trigger_notes = models.TextField(blank=True)
    trigger_evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.FULL)
    scope_notes = models.TextField(blank=True)
    fee_type = models.CharField(max_length=32)
    notice_date = models.DateField()
    effective_end_date = models.DateField()
    data_return_deadline = models.DateField()
    owner = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="owned_cases")
    playbook_version = models.ForeignKey(
        "playbooks.PlaybookVersion", on_delete=models.PROTECT, related_name="cases"
    )
    playbook_sha256 = models.CharField(max_length=64)
    approval_policy = models.JSONField(default=dict)  # pinned from the playbook at opening
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    cancel_reason = models.TextField(blank=True)
    created_at = models.DateTimeField()
    closing_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The case state (cases.state.case_state) exactly as closed: the bytes whose digest the
    # closure event records, kept so that a pack made years later holds the same state even
    # if the way the state is computed has changed since.
    closed_state = models.JSONField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "ref"], name="case_ref_unique_in_org")
        ]
        indexes = [models.Index(fields=["org", "state"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.ref} {self.client}"

    @property
    def is_open(self) -> bool:
        return self.state in (self.State.DRAFT, self.State.ACTIVE, self.State.CLOSING)


class CaseItem(OrgScopedModel):
    """Something that belongs to one case."""

    case = models.ForeignKey(OffboardingCase, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class Step(CaseItem):
    class Status(models.TextChoices):
        PENDING = "pending"
        IN_PROGRESS = "in_progress"
        DONE = "done"
        NOT_APPLICABLE = "not_applicable"

    case = models.ForeignKey(OffboardingCase, on_delete=models.PROTECT, related_name="steps")
    key = models.CharField(max_length=80)
    position = models.PositiveIntegerField()
    phase = models.CharField(max_length=40)
    title = models.CharField(max_length=300)
    guidance = models.TextField(blank=True)
    category = models.CharField(max_length=32, default="general")
    owner_role = models.CharField(max_length=20)
    owner = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    due_anchor = models.CharField(max_length=16)
    due_offset_days = models.IntegerField()
    due_date = models.DateField()
    # From the playbook step's `escalate`: days overdue before the case owner, then the
    # managers, are told (null: OFFBOARD_ESCALATE_STEP_DAYS / _MANAGERS_DAYS).
    escalate_owner_days = models.PositiveSmallIntegerField(null=True, blank=True)
    escalate_managers_days = models.PositiveSmallIntegerField(null=True, blank=True)
    required = models.BooleanField(default=True)
    evidence_required = models.JSONField(default=list)
    depends_on = models.JSONField(default=list)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    not_applicable_reason = models.TextField(blank=True)
    note = models.TextField(blank=True)
    link = models.URLField(max_length=1000, blank=True)
    attestation = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")
    # The register items the step is about, from its playbook (playbooks/about.py): a list of
    # {"register", <field>: [values]}; settling them all completes it (cases/links.py).
    about = models.JSONField(default=list, blank=True)
    # When settling its items completed the step (or stood for its evidence): which items,
    # how they are known, the client's acknowledgements and the event (decision 0012).
    settled_by = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "key"], name="step_key_unique_in_case")
        ]
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.key}: {self.title}"


class Source(models.TextChoices):
    """How the fact a register item's status asserts is known (decision 0008)."""

    OBSERVED = "observed", "Observed by a system read"
    CLIENT_PORTAL = "client_portal", "Signed by the client in the portal"
    VENDOR_DOCUMENT = "vendor_document", "Confirmed by a vendor's document"
    STAFF = "staff", "Recorded by staff"


class RegisterItem(CaseItem):
    """Common shape of the registers: an owner, a status, evidence files — and for the fact
    the status asserts, when it happened (`occurred_at`), how it is known (`source`,
    `source_detail`) and when and by whom it was recorded."""

    register: ClassVar[str]
    event_prefix: ClassVar[str]
    # The field holding the time of the fact each status asserts; statuses not named assert
    # no dated fact (pending, planned, waived, …).
    occurred_fields: ClassVar[dict[str, str]]
    owner = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    notes = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, blank=True)
    source_detail = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        abstract = True
        ordering = ["id"]

    def label(self) -> str:
        raise NotImplementedError

    @property
    def occurred_field(self) -> str | None:
        return self.occurred_fields.get(self.status)  # type: ignore[attr-defined]

    @property
    def occurred_at(self) -> Any:
        """When the fact the current status asserts happened (None if it asserts none)."""
        name = self.occurred_field
        return getattr(self, name) if name else None


class Deliverable(RegisterItem):
    register = "deliverables"
    event_prefix = "deliverable"
    occurred_fields = {
        "delivered": "delivered_at",
        "accepted": "accepted_at",
        "conditionally_accepted": "accepted_at",
        "deemed_accepted": "accepted_at",
        "rejected": "accepted_at",
    }

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        ACCEPTED = "accepted"
        CONDITIONALLY_ACCEPTED = "conditionally_accepted"
        REJECTED = "rejected"
        DEEMED_ACCEPTED = "deemed_accepted"
        WAIVED = "waived"

    case = models.ForeignKey(OffboardingCase, on_delete=models.PROTECT, related_name="deliverables")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    sow_reference = models.CharField(max_length=100, blank=True)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_method = models.CharField(max_length=300, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    acceptance_note = models.TextField(blank=True)
    evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")

    def label(self) -> str:
        return self.title


class HandoverItem(RegisterItem):
    register = "handover_items"
    event_prefix = "handover_item"
    occurred_fields = {"handed_over": "handed_over_at", "acknowledged": "acknowledged_at"}

    class Kind(models.TextChoices):
        DOMAIN = "domain"
        HOSTING = "hosting"
        REPOSITORY = "repository"
        AD_ACCOUNT = "ad_account"
        ANALYTICS = "analytics"
        LICENCE = "licence"
        DOCUMENT = "document"
        DATA_EXPORT = "data_export"
        VAULT_ENTRY = "vault_entry"
        OTHER = "other"

    class Status(models.TextChoices):
        PLANNED = "planned"
        HANDED_OVER = "handed_over"
        ACKNOWLEDGED = "acknowledged"
        DISPUTED = "disputed"
        WAIVED = "waived"

    case = models.ForeignKey(
        OffboardingCase, on_delete=models.PROTECT, related_name="handover_items"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    reference = models.CharField(max_length=500, blank=True)
    new_owner = models.CharField(max_length=300, blank=True)
    method = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")

    def label(self) -> str:
        return f"{self.kind}: {self.name}"


class AccessGrant(RegisterItem):
    register = "access_grants"
    event_prefix = "access_grant"
    occurred_fields = {
        "revoked": "actioned_at",
        "transferred": "actioned_at",
        "kept": "actioned_at",
    }

    class Direction(models.TextChoices):
        PROVIDER_IN_CLIENT = "provider_in_client", "Our access to their systems"
        CLIENT_IN_PROVIDER = "client_in_provider", "Their access to our systems"

    class PlannedAction(models.TextChoices):
        REVOKE = "revoke"
        TRANSFER = "transfer"
        KEEP = "keep"

    class Status(models.TextChoices):
        ACTIVE = "active"
        REVOKED = "revoked"
        TRANSFERRED = "transferred"
        KEPT = "kept"

    class Verification(models.TextChoices):
        OBSERVED = "observed"
        VENDOR_CONFIRMED = "vendor_confirmed"
        ATTESTED = "attested"
        WAIVED = "waived"

    case = models.ForeignKey(
        OffboardingCase, on_delete=models.PROTECT, related_name="access_grants"
    )
    direction = models.CharField(max_length=24, choices=Direction.choices)
    system = models.CharField(max_length=200)
    principal = models.CharField(max_length=300, blank=True)
    privilege = models.CharField(max_length=200, blank=True)
    planned_action = models.CharField(max_length=16, choices=PlannedAction.choices)
    keep_reason = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    actioned_at = models.DateTimeField(null=True, blank=True)
    actioned_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verification_level = models.CharField(max_length=20, choices=Verification.choices, blank=True)
    verification_note = models.TextField(blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")

    def label(self) -> str:
        who = f": {self.principal}" if self.principal else ""
        return f"{self.system}{who}"


class DataDisposition(RegisterItem):
    register = "data_dispositions"
    event_prefix = "data_disposition"
    occurred_fields = {"done": "completed_at"}

    class Action(models.TextChoices):
        RETURN = "return"
        DELETE = "delete"
        RETAIN = "retain"

    class Method(models.TextChoices):
        EXPORT = "export", "Export to the client"
        NIST_CLEAR = "nist_clear", "NIST SP 800-88 Clear"
        NIST_PURGE = "nist_purge", "NIST SP 800-88 Purge"
        NIST_DESTROY = "nist_destroy", "NIST SP 800-88 Destroy"
        LOGICAL_DELETE = "logical_delete", "Logical deletion"

    class Status(models.TextChoices):
        PLANNED = "planned"
        DONE = "done"
        WAIVED = "waived"

    case = models.ForeignKey(
        OffboardingCase, on_delete=models.PROTECT, related_name="data_dispositions"
    )
    dataset = models.CharField(max_length=300)
    location = models.CharField(max_length=300)
    action = models.CharField(max_length=16, choices=Action.choices)
    method = models.CharField(max_length=20, choices=Method.choices, blank=True)
    legal_hold = models.BooleanField(default=False)
    retention_basis = models.TextField(blank=True)
    retain_until = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    completed_at = models.DateTimeField(null=True, blank=True)
    evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")

    def label(self) -> str:
        return f"{self.dataset} @ {self.location}"


class Settlement(RegisterItem):
    register = "settlements"
    event_prefix = "settlement"
    occurred_fields = {"paid": "settled_at", "written_off": "settled_at"}

    class Kind(models.TextChoices):
        FINAL_INVOICE = "final_invoice"
        REFUND = "refund"
        CREDIT = "credit"
        DEPOSIT_RETURN = "deposit_return"

    class Status(models.TextChoices):
        OUTSTANDING = "outstanding"
        PAID = "paid"
        WRITTEN_OFF = "written_off"
        DISPUTED = "disputed"
        WAIVED = "waived"

    case = models.ForeignKey(OffboardingCase, on_delete=models.PROTECT, related_name="settlements")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.CharField(max_length=300, blank=True)
    reference = models.CharField(max_length=100, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OUTSTANDING)
    settled_at = models.DateTimeField(null=True, blank=True)
    zero_balance_confirmed = models.BooleanField(default=False)
    evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")

    def label(self) -> str:
        ref = f" {self.reference}" if self.reference else ""
        return f"{self.kind}{ref}"


REGISTER_MODELS: dict[str, type[RegisterItem]] = {
    m.register: m for m in (Deliverable, HandoverItem, AccessGrant, DataDisposition, Settlement)
}


class Waiver(CaseItem):
    """An approved exception for one step or register item, with a reason and an expiry."""

    class Target(models.TextChoices):
        STEP = "step"
        DELIVERABLE = "deliverable"
        HANDOVER_ITEM = "handover_item"
        ACCESS_GRANT = "access_grant"
        DATA_DISPOSITION = "data_disposition"
        SETTLEMENT = "settlement"

    case = models.ForeignKey(OffboardingCase, on_delete=models.PROTECT, related_name="waivers")
    target_type = models.CharField(max_length=20, choices=Target.choices)
    target_id = models.BigIntegerField()
    target_label = models.CharField(max_length=400)
    justification = models.TextField()
    approver = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    approver_role = models.CharField(max_length=20)
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"waiver of {self.target_type} {self.target_label}"

    def is_in_force(self, at: Any) -> bool:
        return self.revoked_at is None and self.expires_at > at


class Approval(CaseItem):
    class Decision(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"

    case = models.ForeignKey(OffboardingCase, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20)
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.TextField(blank=True)
    at = models.DateTimeField()
    state_digest = models.CharField(max_length=64)
    invalidated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.decision} by {self.approver} on {self.state_digest[:12]}"


class Addendum(CaseItem):
    """A later fact appended to a closed case; the case itself is never edited."""

    case = models.ForeignKey(OffboardingCase, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    text = models.TextField()
    evidence = models.ManyToManyField("evidence.EvidenceFile", blank=True, related_name="+")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"addendum {self.pk} to {self.case_id}"
