"""Showing manifest values (plain JSON: ISO dates as text) the way people read them."""

import datetime as dt

from django import template

register = template.Library()


@register.filter
def day(value: object) -> str:
    """`2026-11-03T10:00:00Z` or `2026-11-03` → `3 Nov 2026`; anything else as given."""
    text = str(value or "")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return f"{parsed.day} {parsed:%b %Y}"


@register.filter
def extension(name: object) -> str:
    """`final-report.pdf` → `PDF`: a file's kind as its name says (shown, never trusted)."""
    stem, dot, ext = str(name or "").rpartition(".")
    return ext[:4].upper() if dot and stem and ext.isalnum() else "FILE"
