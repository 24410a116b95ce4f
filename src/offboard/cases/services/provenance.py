"""Staff input about *when* a register fact happened and *how* it is known (decision 0008).

The register service calls these inside its transaction: `take_source` splits the source
inputs off the values, `check_fact_times` refuses times in the future or before the contract
began, and `settle_provenance` sets the item's source, its detail and who recorded it when.
The portal sets `client_portal` itself (portal/services.py); `observed` is for connectors.
"""

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Min

from offboard.cases.models import OffboardingCase, RegisterItem, Source
from offboard.cases.provenance import STAFF_SOURCES
from offboard.cases.registers import RegisterSpec, fact_time_fields
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.validation import Errors

# A fact time may run this far ahead of our clock: the sender's clock may be a little fast.
CLOCK_SKEW = dt.timedelta(minutes=5)
SOURCE_INPUTS = ("source", "source_document", "source_vendor")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

REFUSED_SOURCES: dict[str, str] = {
    Source.CLIENT_PORTAL.value: "is set only by the client portal, when the client signs for the item "
    "themselves; send them a portal link rather than recording it for them",
    Source.OBSERVED.value: "is set only by a connector that reads the system back; record what you "
    "saw as 'staff', or as 'vendor_document' with the vendor's document attached",
}
REFUSED_OBSERVED_VERIFICATION = (
    "'observed' is set only by a connector's own read of the system; record what you saw as "
    "attested, with the screenshot or log attached"
)


@dataclass(frozen=True)
class SourceInput:
    """What staff said about how the fact is known; empty strings when they said nothing."""

    source: str = ""
    document: str = ""
    vendor: str = ""

    @property
    def given(self) -> bool:
        return bool(self.source or self.document or self.vendor)


def take_source(values: dict[str, Any], errors: Errors) -> tuple[dict[str, Any], SourceInput]:
    """The register values without the source inputs, and those inputs checked as text."""
    rest = {k: v for k, v in values.items() if k not in SOURCE_INPUTS}
    source = errors.text("source", values.get("source"), max_length=40, required=False)
    document = errors.text(
        "source_document", values.get("source_document"), max_length=64, required=False
    ).lower()
    vendor = errors.text(
        "source_vendor", values.get("source_vendor"), max_length=200, required=False
    )
    if source in REFUSED_SOURCES:
        errors.add("source", f"'{source}' {REFUSED_SOURCES[source]}")
    elif source and source not in STAFF_SOURCES:
        errors.add("source", f"'{source}' is not one of: {', '.join(STAFF_SOURCES)}")
    if document and not _SHA256.match(document):
        errors.add("source_document", f"'{document}' is not a SHA-256 (64 hex digits)")
    return rest, SourceInput(source=source, document=document, vendor=vendor)


def contract_start(case: OffboardingCase) -> dt.date | None:
    """When the case's earliest contract began: no fact of the exit can be older."""
    start: dt.date | None = case.contracts.aggregate(start=Min("start_date"))["start"]
    return start


def check_fact_times(
    spec: RegisterSpec, clean: dict[str, Any], case: OffboardingCase, errors: Errors
) -> None:
    """Every fact time given must lie between the contract's start and now (plus skew)."""
    given = [
        (name, clean[name])
        for name in fact_time_fields(spec)
        if isinstance(clean.get(name), dt.datetime) and clean[name].tzinfo is not None
    ]
    if not given:
        return
    now = clock.now()
    start = contract_start(case)
    for name, value in given:
        at = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        if value > now + CLOCK_SKEW:
            errors.add(name, f"{at} is in the future; give the time it actually happened")
        elif start is not None and value < dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC):
            errors.add(
                name,
                f"{at} is before the contract began on {start.isoformat()}; "
                "give the time it actually happened",
            )


def default_fact_time(
    item: RegisterItem, clean: dict[str, Any], status_set: bool, now: dt.datetime
) -> None:
    """A status change that gives no time for its fact happened now."""
    name = item.occurred_field
    if status_set and name and clean.get(name) is None:
        setattr(item, name, now)


def settle_provenance(
    spec: RegisterSpec,
    item: RegisterItem,
    *,
    actor: Actor,
    given: SourceInput,
    changed: dict[str, Any],
    status_set: bool,
    evidence_hashes: set[str],
    errors: Errors,
    now: dt.datetime,
) -> None:
    """Set how the item's fact is known and who recorded it when, after a change by staff.

    The fact is (re)recorded when the status changes, when its time changes, or when staff
    name a source. A fact the client signed in the portal, or a connector observed, is never
    re-attributed by staff: they record a new status instead."""
    occurred = item.occurred_field
    time_changed = occurred is not None and occurred in changed
    if not (status_set or time_changed or given.given):
        return
    settled = item.status != spec.initial_status  # type: ignore[attr-defined]
    if not settled:
        if given.given:
            errors.add(
                "source",
                f"nothing is settled yet: the item is {item.status}; a source says "  # type: ignore[attr-defined]
                "how a settled status (accepted, revoked, paid, …) is known",
            )
        item.source, item.source_detail = "", {}
        item.recorded_at, item.recorded_by = None, None
        return
    if not status_set and item.source in (Source.CLIENT_PORTAL, Source.OBSERVED):
        how = (
            "signed by the client in the portal"
            if item.source == Source.CLIENT_PORTAL
            else ("observed by a connector")
        )
        errors.add(
            (occurred or "source") if time_changed else "source",
            f"the item's {item.status} was {how}; staff cannot change when it happened or "  # type: ignore[attr-defined]
            "how it is known — record a new status instead",
        )
        return
    if given.source:
        source = given.source
    elif status_set:
        source = Source.STAFF
    else:
        source = item.source or Source.STAFF
    detail: dict[str, Any]
    if source == Source.VENDOR_DOCUMENT:
        kept = item.source_detail if item.source == Source.VENDOR_DOCUMENT else {}
        document = given.document or ("" if status_set else str(kept.get("document_sha256", "")))
        vendor = given.vendor or ("" if status_set else str(kept.get("vendor", "")))
        if not document:
            errors.add(
                "source_document",
                "a vendor_document source needs the document: give the SHA-256 of one of the "
                "item's evidence files (attach it first or with this change)",
            )
        elif document not in evidence_hashes:
            errors.add(
                "source_document",
                f"{document[:12]}… is not one of this item's evidence files; attach the "
                "vendor's document to the item first or with this change",
            )
        detail = {"document_sha256": document, "vendor": vendor}
    else:
        if given.document or given.vendor:
            field = "source_document" if given.document else "source_vendor"
            errors.add(field, "only a vendor_document source names a document and its vendor")
        detail = {"name": actor.display_name}
    old = (item.source, dict(item.source_detail or {}))
    item.source, item.source_detail = str(source), detail
    item.recorded_at, item.recorded_by = now, actor.user
    if old[0] and old != (item.source, item.source_detail):  # a settled fact re-attributed
        changed["source"], changed["source_detail"] = old


def refuse_observed_verification(
    clean: dict[str, Any], changed: dict[str, Any], errors: Errors
) -> None:
    """Only a connector's read may say a revocation was observed (verification level)."""
    if "verification_level" in changed and clean.get("verification_level") == "observed":
        errors.add("verification_level", REFUSED_OBSERVED_VERIFICATION)
