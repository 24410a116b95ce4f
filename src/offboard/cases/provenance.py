"""How a register fact is known and when (decision 0008): the four sources, who may set
each, and the words the workspace, the CLI and the certificate use for them.

A register item's status asserts a fact (accepted, acknowledged, revoked, paid, …). The
item says when that fact happened (`occurred_at`, from the status's own time field), how it
is known (`source`, `source_detail`) and when and by whom it was recorded (`recorded_at`,
`recorded_by`). Staff may record only what they attest or what a vendor's document they
attach confirms; the client's own acknowledgement comes only from the portal and a system's
observation only from a connector.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from offboard.cases.models import Source

# What staff input may set; the other two are set by the portal and by connectors.
STAFF_SOURCES = (Source.STAFF.value, Source.VENDOR_DOCUMENT.value)
# Recorded more than this long after it happened: a late entry, shown with both times.
LATE_AFTER = dt.timedelta(hours=1)

# Badge text per source: short, distinct, the same on every surface.
BADGES: dict[str, str] = {
    Source.CLIENT_PORTAL: "Client · portal",
    Source.STAFF: "Staff",
    Source.VENDOR_DOCUMENT: "Vendor document",
    Source.OBSERVED: "Observed",
}
# How a count of facts from one source reads: "3 acknowledged by the client in the portal".
SOURCE_PHRASES: dict[str, str] = {
    Source.CLIENT_PORTAL: "by the client in the portal",
    Source.STAFF: "recorded by staff",
    Source.VENDOR_DOCUMENT: "confirmed by a vendor's document",
    Source.OBSERVED: "observed by a system read",
}


def status_words(status: str) -> str:
    text = str(status or "").replace("_", " ")
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Provenance:
    """One item's settled fact: what it asserts, how it is known, when it happened and was
    recorded. `by` is the person the source names (the contact, the staff member)."""

    status: str
    source: str
    detail: dict[str, Any]
    occurred_at: dt.datetime | None
    recorded_at: dt.datetime | None

    @property
    def badge(self) -> str:
        return BADGES.get(self.source, self.source)

    @property
    def by(self) -> str:
        if self.source == Source.CLIENT_PORTAL:
            return str((self.detail.get("contact") or {}).get("name") or "")
        if self.source == Source.VENDOR_DOCUMENT:
            return str(self.detail.get("vendor") or "")
        return str(self.detail.get("name") or "")

    @property
    def deemed(self) -> bool:
        return bool(self.detail.get("deemed"))

    @property
    def late(self) -> bool:
        """Recorded more than an hour after it happened: both times are worth showing."""
        if self.occurred_at is None or self.recorded_at is None:
            return False
        return self.recorded_at - self.occurred_at > LATE_AFTER

    @property
    def digest(self) -> str:
        """The sha256 the source rests on: the list the client saw, or the vendor's document."""
        return str(self.detail.get("manifest_sha256") or self.detail.get("document_sha256") or "")

    def how(self) -> str:
        """`Acknowledged by the client in the portal — Nina North`,
        `Acknowledged — recorded by staff (Alice Whitford)`."""
        verb = status_words(self.status)
        if self.source == Source.OBSERVED:
            return self.source_phrase()
        if self.source == Source.CLIENT_PORTAL:
            return f"{verb} {self.source_phrase()[:1].lower()}{self.source_phrase()[1:]}"
        return f"{verb} — {self.source_phrase()[:1].lower()}{self.source_phrase()[1:]}"

    def source_phrase(self) -> str:
        """The source alone, for a place that shows the status already: `By the client in the
        portal — Nina North`, `Recorded by staff (Alice Whitford)`."""
        by = self.by
        if self.source == Source.CLIENT_PORTAL:
            return "By the client in the portal" + (f" — {by}" if by else "")
        if self.source == Source.VENDOR_DOCUMENT:
            return "Confirmed by a vendor's document" + (f" ({by})" if by else "")
        if self.source == Source.OBSERVED:
            return observed_phrase(self.detail)
        if self.deemed:
            reminders = len(self.detail.get("reminder_events") or [])
            after = f" after {reminders} logged reminders" if reminders else ""
            return f"Deemed by staff{after}" + (f" ({by})" if by else "")
        return "Recorded by staff" + (f" ({by})" if by else "")


def _stamp(value: Any) -> str:
    at = _time(value)
    return at.astimezone(dt.UTC).strftime("%-d %b %Y %H:%M UTC") if at else ""


def observed_phrase(detail: dict[str, Any]) -> str:
    """`Revoked by connector Directory (scim) at 4 Dec 2026 10:02 UTC · verified absent at
    4 Dec 2026 10:02 UTC`: who did it and when the read that proves it was made."""
    name = detail.get("connection") or "a connector"
    kind = f" ({detail['connector']})" if detail.get("connector") else ""
    revoked = _stamp(detail.get("revoked_at"))
    read = _stamp(detail.get("read_at"))
    at = f" at {read}" if read else ""
    if revoked:
        return f"Revoked by connector {name}{kind} at {revoked} · verified absent{at}"
    return f"Verified absent by connector {name}{kind}{at}"


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value)
    return value if isinstance(value, dt.datetime) else None


def from_state(state: dict[str, Any]) -> Provenance | None:
    """The same, from an item's state as events and `case show --json` carry it."""
    if not state.get("source"):
        return None
    return Provenance(
        status=str(state.get("status") or ""),
        source=str(state["source"]),
        detail=dict(state.get("source_detail") or {}),
        occurred_at=_time(state.get("occurred_at")),
        recorded_at=_time(state.get("recorded_at")),
    )


def provenance(item: Any) -> Provenance | None:
    """The item's settled fact, or None while its status settles nothing."""
    if not item.source:
        return None
    return Provenance(
        status=item.status,
        source=item.source,
        detail=dict(item.source_detail or {}),
        occurred_at=item.occurred_at,
        recorded_at=item.recorded_at,
    )


def source_counts(items: list[Any]) -> list[tuple[str, list[str], int]]:
    """(source, the names it cites, how many items) for the items' settled facts, in the order
    client, observed, vendor document, staff — strongest first."""
    order = (Source.CLIENT_PORTAL, Source.OBSERVED, Source.VENDOR_DOCUMENT, Source.STAFF)
    found: dict[str, tuple[list[str], int]] = {}
    for item in items:
        p = provenance(item)
        if p is None:
            continue
        names, n = found.get(p.source, ([], 0))
        if p.by and p.by not in names:
            names = [*names, p.by]
        found[p.source] = (names, n + 1)
    return [(s.value, *found[s]) for s in order if s in found]
