"""One line saying what an event changed, for timelines (pages, certificate, CLI)."""

from collections.abc import Callable
from typing import Any

_LABEL_KEYS = ("title", "name", "system", "dataset", "kind")
_QUOTED = ("reason", "comment", "justification", "text", "note")


def _as_is(field: str, value: Any) -> Any:
    return value


def event_summary(data: dict[str, Any], word: Callable[[str, Any], Any] = _as_is) -> str:
    """What an event changed, in one line: the object, old → new values, the words given.
    `word(field, value)` says a stored code in words (offboard.labels.field_value)."""
    if not isinstance(data, dict):
        return ""
    raw_item, raw_old = data.get("item"), data.get("old")
    item: dict[str, Any] = raw_item if isinstance(raw_item, dict) else {}
    parts: list[str] = []
    named_by = next((k for k in _LABEL_KEYS if item.get(k)), None)
    label = word(named_by, item[named_by]) if named_by else None
    label = label or data.get("title") or data.get("step") or data.get("name") or data.get("target")
    if label:
        parts.append(str(label))
    old: dict[str, Any] = raw_old if isinstance(raw_old, dict) else {}
    current = item or data
    for key, before in old.items():
        after = current.get(key, "?")
        before, after = word(key, before), word(key, after)
        parts.append(f"{key.replace('_', ' ')}: {before or '—'} → {after or '—'}")
    if not old and item.get("status"):
        parts.append(f"status {word('status', item['status'])}")
    for key in _QUOTED:
        value = data.get(key)
        if isinstance(value, str) and value:
            parts.append(f"“{value[:140]}{'…' if len(value) > 140 else ''}”")
    if data.get("state_digest"):
        parts.append(f"state {str(data['state_digest'])[:12]}…")
    recipients = data.get("recipients")
    if isinstance(recipients, list) and recipients:
        parts.append("to " + ", ".join(str(r) for r in recipients))
    if data.get("returned_to_active"):
        parts.append("case returned to active, approvals invalidated")
    completes = data.get("completes_steps")
    if isinstance(completes, list) and completes:
        keys = [str(c.get("step")) for c in completes if isinstance(c, dict)]
        parts.append(f"completes step{'s' if len(keys) > 1 else ''} {', '.join(keys)}")
    return " · ".join(parts)
