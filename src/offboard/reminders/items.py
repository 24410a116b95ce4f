"""The shapes shared by the jobs, the queue and the outbox: a planned message, and the items a
message lists (each a small dict that is stored in the notice and recorded in its event)."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Planned:
    """One message a job wants to send: to whom, which kind, the sent-log keys it covers
    (item, day) and what it says (`payload["items"]`, each with its `key`)."""

    user_id: int
    kind: str
    keys: list[tuple[str, dt.date]]
    payload: dict[str, Any] = field(default_factory=dict)


# The columns of a step a message shows; read with .values(), never as model instances.
STEP_FIELDS = ("pk", "title", "due_date", "owner_id", "case_id", "case__ref", "case__client__name")


def step_item(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "key": key,
        "type": "step",
        "id": row["pk"],
        "case_id": row["case_id"],
        "ref": row["case__ref"],
        "client": row["case__client__name"],
        "title": row["title"],
        "date": row["due_date"].isoformat(),
        "anchor": f"step-{row['pk']}",
    }
