"""One line saying what an event changed, for timelines (pages, certificate, CLI)."""

from typing import Any

_LABEL_KEYS = ("title", "name", "system", "dataset", "kind")
_QUOTED = ("reason", "comment", "justification", "text", "note")


def event_summary(data: dict[str, Any]) -> str:
    """What an event changed, in one line: the object, old → new values, the words given."""
    if not isinstance(data, dict):
        return ""
    raw_item, raw_old = data.get("item"), data.get("old")
    item: dict[str, Any] = raw_item if isinstance(raw_item, dict) else {}
    parts: list[str] = []
    label = next((item[k] for k in _LABEL_KEYS if item.get(k)), None)
    label = label or data.get("title") or data.get("step") or data.get("name") or data.get("target")
    if label:
        parts.append(str(label))
    old: dict[str, Any] = raw_old if isinstance(raw_old, dict) else {}
    current = item or data
    for key, before in old.items():
        after = current.get(key, "?")
        parts.append(f"{key.replace('_', ' ')}: {before or '—'} → {after or '—'}")
    if not old and item.get("status"):
        parts.append(f"status {item['status']}")
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
    return " · ".join(parts)
