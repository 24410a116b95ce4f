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

from offboard.cases.models import Source
from offboard.cases.provenance import STAFF_SOURCES
from offboard.cases.registers import Field, RegisterSpec
from offboard.labels import field_value

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
# How staff say a fact is known (decision 0008): the client portal and connectors set the rest.
SOURCE_CHOICES = [
    (Source.STAFF.value, "Recorded by staff — I attest it"),
    (Source.VENDOR_DOCUMENT.value, "Confirmed by a vendor's document"),
]
# The vendor's document is "the file attached with this change": its sha256 is known only
# once the request's files are stored (`resolve_attached`).
ATTACHED = "attached"
ATTACHED_LABEL = "The file attached with this change"


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
    """A choice field's options, each code with its words (offboard.labels)."""
    return [(value, _capfirst(str(field_value(name, value)))) for value in _values(spec, name)]


def _capfirst(text: str) -> str:
    return text[:1].upper() + text[1:]


def _choices_for(spec: RegisterSpec, f: Field, item: Any) -> list[tuple[str, str]]:
    """A select's options; `observed` is a connector's to set, so staff are not offered it
    (an item a connector verified still shows it)."""
    choices = choice_labels(spec, f.name)
    if f.name == "verification_level" and getattr(item, f.name, "") != "observed":
        choices = [c for c in choices if c[0] != "observed"]
    return choices


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
                choices=_choices_for(spec, f, item) if f.kind == "choice" else [],
                required=f.required,
                blank=not f.required and f.name != "status",
                max_length=f.max_length if f.kind in ("text", "currency") else 20000,
                errors=errors.get(f.name, []),
            )
        )
    views += source_fields(prefix=prefix, item=item, submitted=submitted, errors=errors)
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


def shown_source(item: Any) -> tuple[str, str, str]:
    """(source, document sha256, vendor) as an item's form shows them: only what staff may set."""
    if item is None or item.source not in STAFF_SOURCES:
        return "", "", ""
    detail = (item.source_detail or {}) if item.source == Source.VENDOR_DOCUMENT else {}
    return item.source, str(detail.get("document_sha256", "")), str(detail.get("vendor", ""))


def document_choices(item: Any) -> list[tuple[str, str]]:
    """The files a vendor's document can be: the item's evidence, or one attached now."""
    files = list(item.evidence.all()) if item is not None else []
    return [(f.sha256, f"{f.original_name} · {f.sha256[:10]}…") for f in files] + [
        (ATTACHED, ATTACHED_LABEL)
    ]


def source_fields(
    *,
    prefix: str,
    item: Any = None,
    submitted: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[FieldView]:
    """How the fact is known: staff or a vendor's document (which file, which vendor)."""
    errors = errors or {}
    source, document, vendor = shown_source(item)
    if item is None:
        source = Source.STAFF.value
    shown = {"source": source, "source_document": document, "source_vendor": vendor}
    if submitted is not None:
        shown = {k: submitted.get(k, v) for k, v in shown.items()}
    return [
        FieldView(
            name="source",
            label="How it is known",
            widget="select",
            id=f"{prefix}-source",
            value=shown["source"],
            choices=SOURCE_CHOICES,
            blank=item is not None,
            errors=errors.get("source", []),
        ),
        FieldView(
            name="source_document",
            label="Vendor's document",
            widget="select",
            id=f"{prefix}-source_document",
            value=shown["source_document"],
            choices=document_choices(item),
            errors=errors.get("source_document", []),
        ),
        FieldView(
            name="source_vendor",
            label="Vendor",
            widget="text",
            id=f"{prefix}-source_vendor",
            value=shown["source_vendor"],
            max_length=200,
            errors=errors.get("source_vendor", []),
        ),
    ]


def source_values(post: QueryDict, item: Any = None, *, status_set: bool) -> dict[str, Any]:
    """The source inputs a form gives the service: with a status change whatever is chosen,
    otherwise only what differs from what the form showed."""
    given = (
        post.get("source", "").strip(),
        post.get("source_document", "").strip(),
        post.get("source_vendor", "").strip(),
    )
    source, document, vendor = given
    if not any(given):
        return {}
    if not status_set:
        if item is None and source == Source.STAFF and not (document or vendor):
            return {}  # the add form's default, for an item that settles nothing yet
        if item is not None and given == shown_source(item):
            return {}
    values: dict[str, Any] = {"source": source} if source else {}
    if document or source == Source.VENDOR_DOCUMENT:
        values["source_document"] = document
    if vendor or source == Source.VENDOR_DOCUMENT:
        values["source_vendor"] = vendor
    return values


def resolve_attached(values: dict[str, Any], files: list[Any]) -> None:
    """The `ATTACHED` choice names the first file the request stored."""
    if values.get("source_document") == ATTACHED:
        values["source_document"] = files[0].sha256 if files else ""


def fact_time(spec: RegisterSpec, post: QueryDict, name: str) -> dict[str, Any]:
    """A quick action's "when it happened" input, if given (empty means now)."""
    f = spec.field(name)
    raw = post.get(name, "").strip()
    return {name: parsed(f, raw)} if f is not None and raw else {}


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
    status = values.get("status")
    values.update(source_values(post, status_set=bool(status) and status != spec.initial_status))
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
    values.update(source_values(post, item, status_set="status" in values))
    return values


def submitted_values(post: QueryDict) -> dict[str, str]:
    """The raw inputs of a refused form, to show them again next to their errors."""
    return {k: str(post.get(k, "")) for k in post if k not in ("csrfmiddlewaretoken", "evidence")}
