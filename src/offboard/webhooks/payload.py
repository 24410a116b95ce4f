"""The body of a delivery: the event as a receiver may see it.

    {"type": "case.closed", "timestamp": "2026-11-30T10:04:05Z",
     "data": {"event_index": 41, "organization": "acme", "case": "C-2026-0001",
              "actor": {"name": "Alice", "role": "admin"}, "fields": {...}, "files": [...]}}

Built from the ledger entry at each attempt, not stored: an event redacted (erased for a
lawful request) before it left goes as `{"redacted": true}` and nothing of its content.
What never leaves: the actor's IP address, user agent, username and id, the event's nonce,
and any field whose name says secret, token, password, key material or an address of a
device (`HIDDEN`), at any depth. The bytes are RFC 8785 canonical JSON, the same for every
attempt of a delivery.
"""

import re
from typing import Any

from offboard.core.canonical import canonical_json
from offboard.ledger.models import LedgerEntry

HIDDEN = re.compile(
    r"secret|token|password|passphrase|private|sealed|nonce|user_agent|(^|_)ip(_|$)",
    re.IGNORECASE,
)


def public(value: Any) -> Any:
    """`value` without the fields a receiver must not get, at any depth."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if not HIDDEN.search(str(k))}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


def event_data(entry: LedgerEntry, case_ref: str | None) -> dict[str, Any]:
    event = entry.event
    data: dict[str, Any] = {
        "event_index": entry.index,
        "organization": event.get("org"),
        "case": case_ref,
    }
    if entry.redacted:
        data["redacted"] = True
        return data
    actor = event.get("actor") or {}
    data["actor"] = {"name": actor.get("name"), "role": actor.get("role")}
    data["fields"] = public(event.get("data") or {})
    data["files"] = list(event.get("files") or [])
    return data


def payload(entry: LedgerEntry, *, org_slug: str, case_ref: str | None) -> bytes:
    """The exact bytes posted (and signed) for the event of `entry`."""
    data = event_data(entry, case_ref)
    data["organization"] = org_slug
    return canonical_json({"type": entry.type, "timestamp": entry.at, "data": data})
