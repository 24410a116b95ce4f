"""How the certificate words where each register fact comes from and when it happened
(decision 0008, docs/certificate.md).

Facts are counted by source, never merged: "3 acknowledged by the client in the portal (Nina
North); 6 handed over, recorded by staff (Oscar Brennan)" — a staff member's record of an
acknowledgement is never worded as the client's own. A row shows the time a fact happened,
and also when it was recorded if that was more than an hour later (a late entry).
"""

import datetime as dt
from collections.abc import Iterable
from typing import Any

from offboard.cases.models import Source
from offboard.cases.provenance import Provenance, provenance, status_words

# Strongest first; items whose status settles nothing come last.
ORDER = (Source.CLIENT_PORTAL, Source.OBSERVED, Source.VENDOR_DOCUMENT, Source.STAFF, "")
# Where a file name may break in a narrow table cell: after these, never inside a word.
BREAK_AFTER = "_./\\"
ZWSP = "\u200b"


def when(value: dt.datetime | dt.date | None) -> str:
    """A time as a reader writes it: UTC, to the minute; dates as ISO dates."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def breakable(name: str) -> str:
    """A file name with break opportunities after `_ . / \\` (a hyphen is one already), so a
    narrow cell wraps it at those points, not mid-word."""
    return "".join(c + ZWSP if c in BREAK_AFTER else c for c in name)


def _phrase(n: int, source: str, status: str, names: list[str], deemed: bool) -> str:
    verb = status_words(status).lower()
    who = f" ({', '.join(names)})" if names else ""
    if source == Source.CLIENT_PORTAL:
        return f"{n} {verb} by the client in the portal{who}"
    if source == Source.OBSERVED:
        return f"{n} {verb}, observed by a system read"
    if source == Source.VENDOR_DOCUMENT:
        return f"{n} {verb}, confirmed by a vendor's document{who}"
    if source == Source.STAFF and deemed:
        return f"{n} {verb} by staff after the client's silence and logged reminders{who}"
    if source == Source.STAFF:
        return f"{n} {verb}, recorded by staff{who}"
    return f"{n} {verb}"


def phrases(items: Iterable[Any], *, settled_only: bool = False) -> list[str]:
    """One phrase per (source, status): how many, and the people or vendors it cites."""
    groups: dict[tuple[str, bool, str], tuple[list[str], int]] = {}
    for item in items:
        p = provenance(item)
        if p is None and settled_only:
            continue
        key = (p.source, p.deemed, item.status) if p else ("", False, item.status)
        names, n = groups.get(key, ([], 0))
        by = p.by if p else ""
        if by and by not in names:
            names = [*names, by]
        groups[key] = (names, n + 1)
    ranked = sorted(groups, key=lambda k: ORDER.index(k[0]) if k[0] in ORDER else len(ORDER))
    return [_phrase(groups[k][1], k[0], k[2], groups[k][0], k[1]) for k in ranked]


def how_known(items: Iterable[Any]) -> str:
    """`How each is known: 3 acknowledged by the client in the portal (Nina North); …` over
    the items whose status settles something; empty if none does."""
    found = phrases(items, settled_only=True)
    return f"How each is known: {'; '.join(found)}." if found else ""


def sources_line(items: list[Any], one: str, many: str | None = None) -> str:
    """`9 handover items: 3 acknowledged by the client in the portal (Nina North); …`."""
    if not items:
        return ""
    noun = one if len(items) == 1 else (many or one + "s")
    return f"{len(items)} {noun}: {'; '.join(phrases(items))}."


def row_fact(item: Any) -> dict[str, str]:
    """What a table row says about the item's fact: how it is known (`how` with the status,
    `source` without it), when it happened (`occurred`) and, for a late entry only, when it
    was recorded (`recorded`)."""
    p: Provenance | None = provenance(item)
    if p is None:
        return {"how": "", "source": "", "occurred": "", "recorded": ""}
    return {
        "how": p.how(),
        "source": p.source_phrase(),
        "occurred": when(p.occurred_at) if p.occurred_at else "",
        "recorded": when(p.recorded_at) if p.late else "",
    }
