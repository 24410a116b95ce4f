"""What each register holds: its fields, their rules and the statuses that settle a gate.

One declaration drives input validation in services, the API's schemas and the digest.
"""

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

from offboard.cases.models import (
    REGISTER_MODELS,
    AccessGrant,
    DataDisposition,
    Deliverable,
    HandoverItem,
    RegisterItem,
    Settlement,
)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | longtext | choice | date | datetime | bool | decimal | currency
    choices: tuple[str, ...] = ()
    required: bool = False
    max_length: int = 300
    secret_checked: bool = False


def _choices(enum: Any) -> tuple[str, ...]:
    return tuple(enum.values)


@dataclass(frozen=True)
class RegisterSpec:
    key: str
    model: type[RegisterItem]
    label: str
    fields: tuple[Field, ...]
    statuses: tuple[str, ...]
    initial_status: str

    @property
    def event_prefix(self) -> str:
        return self.model.event_prefix

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


REGISTERS: dict[str, RegisterSpec] = {
    "deliverables": RegisterSpec(
        key="deliverables",
        model=Deliverable,
        label="Deliverables",
        fields=(
            Field("title", "text", required=True),
            Field("description", "longtext"),
            Field("sow_reference", "text", max_length=100),
            Field("due_date", "date"),
            Field("status", "choice", _choices(Deliverable.Status)),
            Field("delivered_at", "datetime"),
            Field("delivery_method", "text"),
            Field("accepted_at", "datetime"),
            Field("acceptance_note", "longtext"),
            Field("notes", "longtext"),
        ),
        statuses=_choices(Deliverable.Status),
        initial_status=Deliverable.Status.PENDING,
    ),
    "handover_items": RegisterSpec(
        key="handover_items",
        model=HandoverItem,
        label="Handover",
        fields=(
            Field("kind", "choice", _choices(HandoverItem.Kind), required=True),
            Field("name", "text", required=True, secret_checked=True),
            Field("description", "longtext", secret_checked=True),
            Field("reference", "text", max_length=500, secret_checked=True),
            Field("new_owner", "text", secret_checked=True),
            Field("method", "text", secret_checked=True),
            Field("status", "choice", _choices(HandoverItem.Status)),
            Field("handed_over_at", "datetime"),
            Field("acknowledged_at", "datetime"),
            Field("notes", "longtext", secret_checked=True),
        ),
        statuses=_choices(HandoverItem.Status),
        initial_status=HandoverItem.Status.PLANNED,
    ),
    "access_grants": RegisterSpec(
        key="access_grants",
        model=AccessGrant,
        label="Access",
        fields=(
            Field("direction", "choice", _choices(AccessGrant.Direction), required=True),
            Field("system", "text", required=True, max_length=200),
            Field("principal", "text", secret_checked=True),
            Field("privilege", "text", max_length=200),
            Field("planned_action", "choice", _choices(AccessGrant.PlannedAction), required=True),
            Field("keep_reason", "longtext"),
            Field("status", "choice", _choices(AccessGrant.Status)),
            Field("actioned_at", "datetime"),
            Field("verification_level", "choice", _choices(AccessGrant.Verification)),
            Field("verification_note", "longtext", secret_checked=True),
            Field("verified_at", "datetime"),
            Field("notes", "longtext", secret_checked=True),
        ),
        statuses=_choices(AccessGrant.Status),
        initial_status=AccessGrant.Status.ACTIVE,
    ),
    "data_dispositions": RegisterSpec(
        key="data_dispositions",
        model=DataDisposition,
        label="Data",
        fields=(
            Field("dataset", "text", required=True),
            Field("location", "text", required=True),
            Field("action", "choice", _choices(DataDisposition.Action), required=True),
            Field("method", "choice", _choices(DataDisposition.Method)),
            Field("legal_hold", "bool"),
            Field("retention_basis", "longtext"),
            Field("retain_until", "date"),
            Field("status", "choice", _choices(DataDisposition.Status)),
            Field("completed_at", "datetime"),
            Field("notes", "longtext"),
        ),
        statuses=_choices(DataDisposition.Status),
        initial_status=DataDisposition.Status.PLANNED,
    ),
    "settlements": RegisterSpec(
        key="settlements",
        model=Settlement,
        label="Settlement",
        fields=(
            Field("kind", "choice", _choices(Settlement.Kind), required=True),
            Field("description", "text"),
            Field("reference", "text", max_length=100),
            Field("amount", "decimal"),
            Field("currency", "currency", max_length=3),
            Field("status", "choice", _choices(Settlement.Status)),
            Field("settled_at", "datetime"),
            Field("zero_balance_confirmed", "bool"),
            Field("notes", "longtext"),
        ),
        statuses=_choices(Settlement.Status),
        initial_status=Settlement.Status.OUTSTANDING,
    ),
}
assert set(REGISTERS) == set(REGISTER_MODELS)
assert all(set(s.model.occurred_fields) <= set(s.statuses) for s in REGISTERS.values())

# The register an event prefix or waiver target names.
BY_PREFIX = {spec.event_prefix: spec for spec in REGISTERS.values()}


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def item_state(spec: RegisterSpec, item: RegisterItem) -> dict[str, Any]:
    """The item as it stands: what events carry and the state digest covers.

    Besides its fields: `occurred_at` (when the fact its status asserts happened),
    `recorded_at` / `recorded_by_id` (when and by which staff member it was recorded; null
    for the portal), `source` and `source_detail` (how it is known; decision 0008)."""
    state: dict[str, Any] = {"id": item.pk, "owner_id": item.owner_id}
    for f in spec.fields:
        state[f.name] = _plain(getattr(item, f.name))
    extra = {
        "access_grants": ("actioned_by_id", "verified_by_id"),
    }.get(spec.key, ())
    for name in extra:
        state[name] = getattr(item, name)
    state["occurred_at"] = _plain(item.occurred_at)
    state["recorded_at"] = _plain(item.recorded_at)
    state["recorded_by_id"] = item.recorded_by_id
    state["source"] = item.source
    state["source_detail"] = dict(item.source_detail or {})
    return state


def fact_time_fields(spec: RegisterSpec) -> tuple[str, ...]:
    """The register's date-time fields: each is the time a fact happened (delivered,
    accepted, revoked, …), never bookkeeping."""
    return tuple(f.name for f in spec.fields if f.kind == "datetime")
