"""Template helpers for the staff pages."""

from typing import Any

from django import template

from offboard import labels
from offboard.ledger.summary import event_summary

register = template.Library()


@register.filter("event_summary")
def summary(data: dict[str, Any]) -> str:
    """What an event changed, its stored codes in words."""
    return event_summary(data, labels.field_value)


@register.filter
def label(code: Any, vocabulary: str) -> str:
    """`{{ contract.fee_type|label:"fee_type" }}` → "time and materials" (offboard.labels)."""
    return labels.label(code, vocabulary)


@register.filter
def any_of(codes: Any, vocabulary: str) -> str:
    """`{{ step.evidence_required|any_of:"evidence" }}` → "file or client acknowledgement"."""
    return labels.labels(codes, vocabulary, " or ")


@register.filter
def all_of(codes: Any, vocabulary: str) -> str:
    """`{{ spec.fee_types|all_of:"fee_type" }}` → "fixed fee, time and materials, retainer"."""
    return labels.labels(codes, vocabulary, ", ")


@register.filter
def due_rule(step: Any) -> str:
    """When a playbook step is due: "14 days after the end date", "on the trigger date"."""
    days = int(getattr(step, "due_offset_days", 0))
    anchor = labels.label(getattr(step, "due_anchor", ""), "due_from")
    if not days:
        return f"on {anchor}"
    unit = "day" if abs(days) == 1 else "days"
    return f"{abs(days)} {unit} {'after' if days > 0 else 'before'} {anchor}"


register.filter("event_type", labels.event_type)
register.filter("item_label", labels.item_label)
