"""Register forms for the case workspace, generated from the register Field specs.

A form is a list of `FieldView`s (what the template renders) and the reverse: the values a
submitted form gives the register service. An edit sends only the fields the user changed,
so an untouched date-time (shown to the minute) is never "changed" by being shown.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from django.utils import timezone

from offboard.cases.registers import Field, RegisterSpec

LABELS = {
    "sow_reference": "SOW reference",
    "owner_id": "Owner",
    "new_owner": "New owner",
    "keep_reason": "Reason to keep",
    "planned_action": "Planned action",
    "verification_level": "Verification",
    "verification_note": "Verification note",
    "retention_basis": "Retention basis",
    "retain_until": "Retain until",
    "zero_balance_confirmed": "Zero balance confirmed",
    "handed_over_at": "Handed over at",
    "acknowledged_at": "Acknowledged at",
}
WIDGETS = {
    "text": "text",
    "longtext": "textarea",
    "choice": "select",
    "date": "date",
    "datetime": "datetime",
    "bool": "checkbox",
    "decimal": "amount",
    "currency": "currency",
}
DATETIME_INPUT = "%Y-%m-%dT%H:%M"


@dataclass
class FieldView:
    name: str
    label: str
    widget: str
    id: str
    value: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False
    blank: bool = True
    max_length: int = 300
    errors: list[str] = field(default_factory=list)

    @property
    def wide(self) -> bool:
        return self.widget == "textarea"


def label_for(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def choice_labels(spec: RegisterSpec, name: str) -> list[tuple[str, str]]:
    model_field: Any = spec.model._meta.get_field(name)
    labels = dict(model_field.choices or ())
    return [
        (value, str(labels.get(value, value)).replace("_", " ")) for value in _values(spec, name)
    ]


def _values(spec: RegisterSpec, name: str) -> tuple[str, ...]:
    f = spec.field(name)
    return f.choices if f else ()


def shown(f: Field, value: Any) -> str:
    """A stored value as the form input shows it."""
    if value is None:
        return ""
    if f.kind == "bool":
        return "on" if value else ""
    if f.kind == "datetime" and isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime(DATETIME_INPUT)
    if f.kind == "date" and isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def parsed(f: Field, raw: str) -> Any:
    """A submitted input as the register service takes it (it validates and explains)."""
    if f.kind == "bool":
        return raw == "on"
    if f.kind in ("date", "decimal"):
        return raw or None
    if f.kind == "datetime":
        if not raw:
            return None
        for pattern in (DATETIME_INPUT, DATETIME_INPUT + ":%S"):
            try:
                return timezone.make_aware(dt.datetime.strptime(raw, pattern))
            except ValueError:
                continue
        return raw  # the service names the problem
    return raw


def register_fields(
    spec: RegisterSpec,
    *,
    prefix: str,
    item: Any = None,
    members: list[tuple[str, str]],
    default_owner: str,
    submitted: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[FieldView]:
    """The inputs of an add form (no item) or of an item's edit form."""
    errors = errors or {}
    views = []
    for f in spec.fields:
        if item is not None:
            value = shown(f, getattr(item, f.name))
        elif f.name == "status":
            value = spec.initial_status
        else:
            value = ""
        if submitted is not None and f.name in submitted:
            value = submitted[f.name]
        elif submitted is not None and f.kind == "bool":
            value = ""
        views.append(
            FieldView(
                name=f.name,
                label=label_for(f.name),
                widget=WIDGETS[f.kind],
                id=f"{prefix}-{f.name}",
                value=value,
                choices=choice_labels(spec, f.name) if f.kind == "choice" else [],
                required=f.required,
                blank=not f.required and f.name != "status",
                max_length=f.max_length if f.kind in ("text", "currency") else 20000,
                errors=errors.get(f.name, []),
            )
        )
    owner = str(item.owner_id) if item is not None else default_owner
    if submitted is not None and "owner_id" in submitted:
        owner = submitted["owner_id"]
    views.append(
        FieldView(
            name="owner_id",
            label="Owner",
            widget="select",
            id=f"{prefix}-owner_id",
            value=owner,
            choices=members,
            required=True,
            blank=False,
            errors=errors.get("owner_id", []),
        )
    )
    return views


def values_to_add(spec: RegisterSpec, post: QueryDict, default_owner: str) -> dict[str, Any]:
    """What an add form gives: every field filled in (required ones always)."""
    values: dict[str, Any] = {}
    for f in spec.fields:
        raw = post.get(f.name, "").strip() if f.kind != "longtext" else post.get(f.name, "")
        if f.kind == "bool":
            if raw == "on":
                values[f.name] = True
        elif raw or f.required:
            values[f.name] = parsed(f, raw)
    owner = post.get("owner_id", "")
    if owner and owner != default_owner:
        values["owner_id"] = owner
    return values


def values_to_update(spec: RegisterSpec, item: Any, post: QueryDict) -> dict[str, Any]:
    """What an edit form changes: only the fields whose input differs from what was shown."""
    values: dict[str, Any] = {}
    for f in spec.fields:
        if f.kind != "bool" and f.name not in post:
            continue  # a partial form (a quick action) leaves the other fields alone
        raw = post.get(f.name, "")
        if f.kind not in ("longtext",):
            raw = raw.strip()
        if raw == shown(f, getattr(item, f.name)):
            continue
        if f.kind == "bool" and "_bools" not in post:
            continue
        if f.kind == "choice" and raw == "" and not f.required and f.name != "verification_level":
            continue  # the service has no "unset" for these; leave them as they are
        values[f.name] = parsed(f, raw)
    owner = post.get("owner_id", "")
    if owner and owner != str(item.owner_id):
        values["owner_id"] = owner
    return values


def submitted_values(post: QueryDict) -> dict[str, str]:
    """The raw inputs of a refused form, to show them again next to their errors."""
    return {k: str(post.get(k, "")) for k in post if k not in ("csrfmiddlewaretoken", "evidence")}
