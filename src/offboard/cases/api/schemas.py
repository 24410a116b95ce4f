"""Request and response schemas of the case API.

The register schemas are generated from `cases.registers.REGISTERS`, the one declaration the
services validate against, so the OpenAPI document lists every field and enum of every register.
"""

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ninja import Field, Schema
from pydantic import create_model

from offboard.cases.models import Approval, OffboardingCase, Source, Step, Waiver
from offboard.cases.registers import REGISTERS, RegisterSpec
from offboard.core import clock
from offboard.core.schemas import (
    Amount,
    Day,
    EvidenceRef,
    EvidenceRefs,
    Input,
    Moment,
    UserRef,
    unset,
)
from offboard.notifications.schemas import ClosureReceiptOut

if TYPE_CHECKING:
    CaseState: TypeAlias = str
    Trigger: TypeAlias = str
    Scope: TypeAlias = str
    StepStatus: TypeAlias = str
    WaiverTarget: TypeAlias = str
    Decision: TypeAlias = str
    FactSource: TypeAlias = str
else:  # enums in the OpenAPI document, from the models' choices
    CaseState = Literal[tuple(OffboardingCase.State.values)]
    Trigger = Literal[tuple(OffboardingCase.Trigger.values)]
    Scope = Literal[tuple(OffboardingCase.Scope.values)]
    StepStatus = Literal[tuple(Step.Status.values)]
    WaiverTarget = Literal[tuple(Waiver.Target.values)]
    Decision = Literal[tuple(Approval.Decision.values)]
    FactSource = Literal[tuple(Source.values)]
AssignableRole = Literal["admin", "manager", "operator", "finance"]

TRIGGER_HELP = "; ".join(f"`{value}`: {label}" for value, label in OffboardingCase.Trigger.choices)


# --- references --------------------------------------------------------------------------------


class ClientRef(Schema):
    id: int
    name: str


class ContractRef(Schema):
    id: int
    reference: str
    title: str
    service_type: str
    fee_type: str


class PlaybookRef(Schema):
    slug: str
    name: str
    version: int
    sha256: str = Field(description="SHA-256 of the playbook text the case follows.")


def _playbook_ref(case: Any) -> dict[str, Any]:
    version = case.playbook_version
    return {
        "slug": version.playbook.slug,
        "name": version.playbook.name,
        "version": version.version,
        "sha256": case.playbook_sha256,
    }


# --- cases -------------------------------------------------------------------------------------


class CaseSummaryOut(Schema):
    ref: str = Field(description="The case's public reference, e.g. C-2026-0042.")
    state: CaseState
    client: ClientRef
    owner: UserRef
    trigger: Trigger
    trigger_date: dt.date
    effective_end_date: dt.date
    playbook: PlaybookRef
    steps_total: int = Field(description="Required steps.")
    steps_settled: int = Field(description="Required steps done or not applicable.")
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_playbook(obj: Any) -> dict[str, Any]:
        return _playbook_ref(obj)

    @staticmethod
    def resolve_steps_total(obj: Any) -> int:
        total = getattr(obj, "steps_total", None)  # annotated by the list selector
        return total if total is not None else sum(1 for s in obj.steps.all() if s.required)

    @staticmethod
    def resolve_steps_settled(obj: Any) -> int:
        settled = getattr(obj, "steps_settled", None)
        if settled is not None:
            return int(settled)
        return sum(
            1 for s in obj.steps.all() if s.required and s.status in ("done", "not_applicable")
        )


class StepOut(Schema):
    id: int = Field(description="Use as `target_id` to waive the step.")
    key: str
    position: int
    phase: str
    title: str
    guidance: str
    category: str
    owner_role: str
    owner: UserRef
    due_date: dt.date
    required: bool
    evidence_required: list[str] = Field(description="Any one of these kinds completes the step.")
    depends_on: list[str]
    status: StepStatus
    not_applicable_reason: str
    note: str
    link: str
    attestation: str
    completed_at: dt.datetime | None
    completed_by_id: int | None
    evidence: list[EvidenceRef]
    about: list[dict[str, Any]] = Field(
        description="The register items the step is about: settling them all completes it "
        '(`{"register": ..., <field>: [values]}`; docs/playbooks.md).'
    )
    settled_by: dict[str, Any] = Field(
        description="Empty, or how settling its items completed the step: `evidence` "
        "(client_ack, file, attestation, note or items), the `items` and the `event`."
    )


class WaiverOut(Schema):
    id: int
    target_type: WaiverTarget
    target_id: int
    target_label: str
    justification: str
    approver: UserRef
    approver_role: str
    granted_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    in_force: bool = Field(description="Not revoked and not expired.")
    evidence: list[EvidenceRef]

    @staticmethod
    def resolve_in_force(obj: Any) -> bool:
        return bool(obj.is_in_force(clock.now()))


class ApprovalOut(Schema):
    id: int
    approver: UserRef
    role: str
    decision: Decision
    comment: str
    at: dt.datetime
    state_digest: str = Field(description="The state digest this decision was made on.")
    invalidated_at: dt.datetime | None = Field(
        description="Set when the case changed after the decision; it no longer counts."
    )


class AddendumOut(Schema):
    id: int
    author: UserRef
    at: dt.datetime
    text: str
    evidence: list[EvidenceRef]


class GateObjectOut(Schema):
    type: str
    id: int
    label: str


class GateOut(Schema):
    code: str = Field(description="Stable code, e.g. `access.unverified`.")
    message: str
    resolve: str = Field(description="What would meet the gate.")
    objects: list[GateObjectOut]
    kind: Literal["readiness", "approval"] = Field(
        description="Readiness gates guard entering closing; approval gates guard closing."
    )


class GatesOut(Schema):
    ref: str
    state: CaseState
    state_digest: str
    unmet_gates: list[GateOut]


class ApprovalPolicyOut(Schema):
    min_approvers: int = 1
    roles: list[str] = Field(default_factory=lambda: ["manager", "admin"])


class EventOut(Schema):
    id: int
    index: int = Field(description="Position of the event in the organization's ledger (from 0).")
    redacted: bool = Field(description="True when the body was erased; its leaf hash remains.")
    type: str = Field(description="e.g. `access_grant.revoked`.")
    at: dt.datetime
    actor: dict[str, Any] = Field(description="Who: id, name, role, how they authenticated.")
    data: dict[str, Any] = Field(description="What changed, with old values on edits.")
    files: list[str] = Field(description="SHA-256 of evidence files the event refers to.")


class CaseOpenIn(Input):
    client_id: int
    contract_ids: list[int] = Field(
        min_length=1,
        max_length=50,
        description="Contracts the exit covers; the first one's dates and fee type drive the case.",
    )
    trigger: Trigger = Field(description=TRIGGER_HELP)
    trigger_date: Day
    owner_id: int | None = Field(None, description="Case owner; defaults to you.")
    playbook: str | None = Field(
        None,
        max_length=80,
        description="Playbook slug; default: the one suggested for the first contract's service type.",
    )
    playbook_version: int | None = Field(None, ge=1, description="Default: the latest version.")
    scope: Scope = "full"
    scope_notes: str = Field("", max_length=20000, description="Required for a partial exit.")
    trigger_notes: str = Field("", max_length=20000)
    effective_end_date: Day | None = Field(
        None,
        description="Default: the contract end (expiry, non-renewal) or notice + notice period.",
    )
    trigger_evidence: EvidenceRefs = Field(default_factory=list)
    assignments: dict[AssignableRole, int] = Field(
        default_factory=dict, description="Step owner by playbook role: {role: user_id}."
    )
    draft: bool = Field(False, description="Open as a draft to review before activating.")
    allow_duplicate: bool = Field(
        False,
        description="Open even though the client has an open case for one of the contracts "
        "(else 409 `duplicate_case`); the opening event records it.",
    )


class CaseDatesOut(Schema):
    trigger: dt.date
    notice: dt.date = Field(description="When the notice was received, else the trigger date.")
    effective_end: dt.date
    data_return_deadline: dt.date


class PlannedStepOut(Schema):
    key: str
    position: int
    phase: str
    title: str
    guidance: str
    category: str
    owner_role: str
    due_anchor: str
    due_offset_days: int
    due_date: dt.date
    required: bool
    evidence_required: list[str]
    depends_on: list[str]


class OpenCaseRef(Schema):
    ref: str
    state: CaseState
    url: str = Field(description="The case's page.")
    api_url: str = Field(description="The case in this API.")


class PreviewOut(Schema):
    client: ClientRef
    contracts: list[ContractRef]
    playbook: PlaybookRef
    fee_type: str
    dates: CaseDatesOut
    steps: list[PlannedStepOut]
    registers: dict[str, int] = Field(description="How many items each register starts with.")
    open_cases: list[OpenCaseRef] = Field(
        description="The client's open cases for these contracts: opening another needs "
        "`allow_duplicate`."
    )


class CaseUpdateIn(Input):
    owner_id: int = unset(description="Reassign the case.")
    effective_end_date: Day = unset(
        description="Move the end date; steps due relative to it move along."
    )
    scope_notes: str = unset(max_length=20000)
    trigger_notes: str = unset(max_length=20000)


class CancelIn(Input):
    reason: str = Field(min_length=1, max_length=5000)


class ApprovalIn(Input):
    decision: Decision
    state_digest: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The `state_digest` you reviewed (from GET /cases/{ref}); a stale one is 409.",
    )
    comment: str = Field("", max_length=5000, description="Required when rejecting.")


class AddendumIn(Input):
    text: str = Field(min_length=1, max_length=20000)
    evidence: EvidenceRefs = Field(default_factory=list)


class StepCompleteIn(Input):
    note: str = Field("", max_length=10000)
    link: str = Field("", max_length=1000, description="http(s) URL of the evidence.")
    attestation: str = Field("", max_length=10000, description="Your statement that it is done.")
    evidence: EvidenceRefs = Field(default_factory=list)


class WaiverIn(Input):
    target_type: WaiverTarget
    target_id: int = Field(description="Id of the step or register item waived.")
    justification: str = Field(min_length=1, max_length=10000)
    expires_at: Moment = Field(description="When the waiver lapses (RFC 3339, with zone).")
    evidence: EvidenceRefs = Field(default_factory=list)


# --- registers ---------------------------------------------------------------------------------


def _value_type(spec: RegisterSpec, f: Any, *, output: bool) -> Any:
    """The Python type of a register field, as sent (`output=False`) or as answered."""
    if f.kind in ("text", "longtext", "currency"):
        return str
    if f.kind == "bool":
        return bool
    if f.kind == "choice":
        if output and not f.required and f.name != "status":
            return Literal[(*f.choices, "")]  # optional choices are blank until chosen
        if not output and f.name == "verification_level":
            return Literal[f.choices] | None  # null clears the verification
        return Literal[f.choices]
    if f.kind == "date":
        return (dt.date if output else Day) | None
    if f.kind == "datetime":
        return (dt.datetime if output else Moment) | None
    if f.kind == "decimal":
        return (decimal.Decimal if output else Amount) | None
    raise ValueError(f"register field kind {f.kind!r} has no API type")


def _describe(spec: RegisterSpec, f: Any) -> str | None:
    parts = []
    if f.kind == "choice":
        parts.append("One of: " + ", ".join(f.choices) + ".")
    if f.kind == "datetime":
        parts.append(
            "When it happened: RFC 3339 with a time zone, not in the future and not before "
            "the contract began; a status change without it means now."
        )
    if f.name == "verification_level":
        parts.append("`observed` is set only by a connector's read; input refuses it.")
    if f.kind == "decimal":
        parts.append('Amount as text, 0 or more with at most two decimals, e.g. "1200.00".')
    if f.kind == "currency":
        parts.append("ISO 4217 code, e.g. EUR.")
    if f.secret_checked:
        parts.append(
            "Values that look like passwords or keys are refused: store where the "
            "secret lives, never the secret."
        )
    if f.name == "status":
        parts.append(f"New items start as `{spec.initial_status}`.")
    return " ".join(parts) or None


def _input_field(spec: RegisterSpec, f: Any, *, partial: bool) -> tuple[Any, Any]:
    limit = {"text": f.max_length, "longtext": 20000, "currency": 3}.get(f.kind)
    extra: dict[str, Any] = {"max_length": limit} if limit else {}
    described = {"description": _describe(spec, f), **extra}
    field = unset(**described) if partial or not f.required else Field(..., **described)
    return _value_type(spec, f, output=False), field


SOURCE_IN_HELP = (
    "How the fact the status asserts is known: `staff` (you attest it; the default when the "
    "status changes) or `vendor_document` (a vendor's document attached to the item confirms "
    "it; give `source_document`). `client_portal` and `observed` are refused: only the client "
    "portal and connectors set them."
)
SOURCE_OUT_HELP = (
    "How the fact the current status asserts is known: `observed` (read back from the system "
    "by a connector), `client_portal` (signed by the client in the portal), `vendor_document` "
    "(confirmed by a vendor's document attached to the item), `staff` (attested by a staff "
    "member); empty while the status settles nothing."
)
SOURCE_DETAIL_HELP = (
    'client_portal: `{"contact": {"id", "name", "email"}, "typed_name", "manifest_sha256"}` '
    "(the digest of the list the client saw; `typed_name` is empty for a dispute); "
    'vendor_document: `{"document_sha256", "vendor"}`; staff: `{"name"}` of the member, plus '
    '`"deemed": true, "reminder_events": [...]` for a deemed acceptance.'
)


def _provenance_fields() -> dict[str, Any]:
    return {
        "occurred_at": (
            dt.datetime | None,
            Field(
                description="When the fact the current status asserts happened (accepted_at, "
                "handed_over_at, actioned_at, …, by status); null if it asserts none."
            ),
        ),
        "recorded_at": (
            dt.datetime | None,
            Field(
                description="When that fact was recorded; later than `occurred_at` for a "
                "late entry."
            ),
        ),
        "recorded_by": (
            UserRef | None,
            Field(description="The staff member who recorded it; null for the client portal."),
        ),
        "source": (Literal[(*Source.values, "")], Field(description=SOURCE_OUT_HELP)),
        "source_detail": (dict[str, Any], Field(description=SOURCE_DETAIL_HELP)),
    }


def _register_schemas(spec: RegisterSpec) -> tuple[type[Schema], type[Schema], type[Schema]]:
    name = "".join(part.capitalize() for part in spec.event_prefix.split("_"))
    common_in: dict[str, Any] = {
        "owner_id": (int, unset(description="Who is responsible (not an auditor).")),
        "evidence": (EvidenceRefs, Field(default_factory=list)),
        "source": (FactSource, unset(description=SOURCE_IN_HELP)),
        "source_document": (
            str,
            unset(
                pattern=r"^[0-9a-fA-F]{64}$",
                description="With `source: vendor_document`: SHA-256 of the vendor's document, "
                "one of the item's evidence files (attached before or in this request).",
            ),
        ),
        "source_vendor": (
            str,
            unset(max_length=200, description="With `source: vendor_document`: who issued it."),
        ),
    }
    create = create_model(  # type: ignore[call-overload]
        f"{name}CreateIn",
        __base__=Input,
        __doc__=f"A new item in the {spec.label} register.",
        **{f.name: _input_field(spec, f, partial=False) for f in spec.fields},
        **common_in,
    )
    update = create_model(  # type: ignore[call-overload]
        f"{name}UpdateIn",
        __base__=Input,
        __doc__="Only the fields sent change; evidence files are added to those attached.",
        **{f.name: _input_field(spec, f, partial=True) for f in spec.fields},
        **common_in,
    )
    out_fields: dict[str, Any] = {
        "id": (int, Field(description="Use in the item's URL and as a waiver's `target_id`.")),
        "owner": (UserRef, ...),
        **{
            f.name: (_value_type(spec, f, output=True), Field(description=_describe(spec, f)))
            for f in spec.fields
        },
        **_provenance_fields(),
        "evidence": (list[EvidenceRef], ...),
        "created_at": (dt.datetime, ...),
        "updated_at": (dt.datetime, ...),
    }
    if spec.key == "access_grants":
        out_fields["actioned_by_id"] = (
            int | None,
            Field(description="Who revoked or transferred it."),
        )
        out_fields["verified_by_id"] = (
            int | None,
            Field(description="Who verified the revocation."),
        )
    out = create_model(f"{name}Out", __base__=Schema, **out_fields)
    return create, update, out


REGISTER_SCHEMAS: dict[str, tuple[type[Schema], type[Schema], type[Schema]]] = {
    key: _register_schemas(spec) for key, spec in REGISTERS.items()
}

RegistersOut = create_model(  # type: ignore[call-overload]
    "RegistersOut",
    __base__=Schema,
    **{key: (list[schemas[2]], ...) for key, schemas in REGISTER_SCHEMAS.items()},  # type: ignore[valid-type]
)


class CaseDetailOut(CaseSummaryOut):
    contracts: list[ContractRef]
    trigger_notes: str
    trigger_evidence: list[EvidenceRef]
    scope: Scope
    scope_notes: str
    fee_type: str
    notice_date: dt.date
    data_return_deadline: dt.date
    cancel_reason: str
    closing_at: dt.datetime | None
    closed_at: dt.datetime | None
    approval_policy: ApprovalPolicyOut
    state_digest: str = Field(
        description="SHA-256 of the canonical JSON of the case and its registers as they stand. "
        "Approve exactly this value."
    )
    unmet_gates: list[GateOut] = Field(description="Empty when the case may close.")
    steps: list[StepOut]
    registers: RegistersOut  # type: ignore[valid-type]
    waivers: list[WaiverOut]
    approvals: list[ApprovalOut]
    addenda: list[AddendumOut]
    closure_receipt: ClosureReceiptOut | None = Field(
        None,
        description="Closed cases: the certificate issued at closure and the receipt emailed "
        "to the client's contacts with it (docs/email.md). Null before closure.",
    )

    @staticmethod
    def resolve_registers(obj: Any) -> dict[str, list[Any]]:
        return {key: list(getattr(obj, key).all()) for key in REGISTERS}
