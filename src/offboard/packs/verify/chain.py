"""A pack proves it is complete, and the closure it shows is the one the client was told of.

Every event of a case carries its place in the case (`seq`: 1, 2, 3, …) and the leaf hash of
the case's previous event (`prev`); the pack's last entry is its own `case.exported` event,
the last leaf of data/checkpoint, whose `seq` is the number of the case's events. So a gap, a
reorder or an omission anywhere breaks the numbering or a link (decision 0010). An erased
event's placeholder stands in the chain only where a `ledger.event_redacted` event of this
case names its index and leaf hash. A closed case has exactly one `case.closed` event, and
with a receipt it is the receipt's.
"""

from __future__ import annotations

import re
from typing import Any

from offboard.packs.verify import layout as fmt
from offboard.packs.verify.run import Entry, Run

_HEX = re.compile(r"[0-9a-f]{64}")
PACK_FORMAT = 2


def _place(entry: Entry) -> tuple[Any, Any]:
    body = entry.body or {}
    return body.get("seq"), body.get("prev")


def _justification(run: Run, entry: Entry) -> Entry | None:
    """The redaction event of this case that names this placeholder's index and leaf hash."""
    assert entry.leaf is not None
    for other in run.entries.values():
        if (
            other.type == "ledger.event_redacted"
            and other.included
            and other.data.get("index") == entry.index
            and other.data.get("leaf_hash") == entry.leaf.hex()
        ):
            return other
    return None


def check_completeness(run: Run) -> None:
    problems: list[str] = []
    ordered = run.ordered()
    previous: Entry | None = None
    for position, entry in enumerate(ordered, start=1):
        if entry.redacted:
            if entry.leaf is None:
                previous = entry
                continue  # malformed: said by the events check
            why = _justification(run, entry)
            if why is None:
                problems.append(
                    f"{entry.path} stands for an erased event, but no ledger.event_redacted "
                    f"event of case {run.case_ref} in the pack names index {entry.index} and "
                    "that leaf hash: an event may have been replaced"
                )
            elif why.data.get("case_seq") not in (None, position):
                problems.append(
                    f"{entry.path} is at place {position} of the case, but {why.path} erased "
                    f"the event at place {why.data.get('case_seq')}"
                )
            previous = entry
            continue
        if entry.body is None:
            previous = entry
            continue  # unreadable or malformed: said by the events check
        seq, prev = _place(entry)
        if "seq" not in entry.body:
            problems.append(
                f"{entry.path} carries no place in its case (event format "
                f"v{entry.body.get('v')}, recorded before case chains existed): this pack "
                "cannot prove that no event of the case is missing"
            )
        elif isinstance(seq, bool) or not isinstance(seq, int) or seq != position:
            gap = "missing before it" if isinstance(seq, int) and seq > position else "out of place"
            problems.append(
                f"{entry.path} is event {seq!r} of the case but the pack's event {position}: "
                f"events are {gap}"
            )
        if "seq" in entry.body:
            if prev is not None and (not isinstance(prev, str) or not _HEX.fullmatch(prev)):
                problems.append(f"{entry.path}: `prev` is not a leaf hash")
            elif previous is None:
                if prev is not None:
                    problems.append(
                        f"{entry.path} is the first entry of the pack but follows another event "
                        f"of the case ({prev[:16]}…): the case's earlier events are missing"
                    )
            elif previous.leaf is not None and prev != previous.leaf.hex():
                problems.append(
                    f"{entry.path} does not follow {previous.path}: its `prev` is not that "
                    "entry's leaf hash (an event between them is missing, or one was replaced)"
                )
        previous = entry
    problems += _ends_with_export(run, ordered)
    count = len(ordered)
    run.add(
        "completeness",
        f"the pack holds every event of case {run.case_ref}: {count} entries numbered 1 to "
        f"{count}, each linked to the one before, ending with the export event at the "
        "checkpoint's last leaf",
        problems,
    )


def _ends_with_export(run: Run, ordered: list[Entry]) -> list[str]:
    cp = run.checkpoint
    last = ordered[-1] if ordered else None
    if last is None or cp is None:
        return []
    if last.type != "case.exported" or last.index != cp.size - 1:
        return [
            f"the pack does not end with its own case.exported event at the last leaf of "
            f"{fmt.CHECKPOINT} (#{cp.size - 1}); its last entry is {last.path} "
            f"({last.type or 'erased'}): events of the case recorded after it may be missing"
        ]
    data = last.data
    problems = []
    if data.get("pack_format") != PACK_FORMAT:
        problems.append(
            f"{last.path} made a pack of format {data.get('pack_format')!r}, not {PACK_FORMAT}"
        )
    if data.get("events") != len(ordered) or _place(last)[0] != len(ordered):
        problems.append(
            f"{last.path} says the case had {data.get('events')!r} events; the pack holds "
            f"{len(ordered)}"
        )
    return problems


def export_event(run: Run) -> Entry | None:
    """The pack's own export event, if it is where it must be."""
    last = run.last_entry()
    cp = run.checkpoint
    if last is None or cp is None or last.type != "case.exported" or last.index != cp.size - 1:
        return None
    return last


def closed_events(run: Run) -> list[Entry]:
    return [e for e in run.ordered() if e.type == "case.closed"]


def check_closure(run: Run) -> None:
    """What state the pack claims the case is in, against its events; the receipt's closure."""
    problems: list[str] = []
    exported = export_event(run)
    closures = closed_events(run)
    stated = exported.data.get("case_state") if exported else None
    bag_state = next(iter(run.bag_info.get("Offboard-Case-State") or []), None)
    claims = {
        f"{fmt.BAG_INFO} (Offboard-Case-State)": bag_state,
        f"{exported.path if exported else 'the export event'} (case_state)": stated,
    }
    closed_claims = [where for where, state in claims.items() if state == "closed"]
    if len(closures) > 1:
        shown = ", ".join(e.path for e in closures)
        problems.append(
            f"the case was closed {len(closures)} times ({shown}): a closed case is never "
            "closed again, so the later closure is not genuine"
        )
    if closed_claims and not closures:
        problems.append(
            f"{' and '.join(closed_claims)} say the case is closed, but the pack holds no "
            "case.closed event: an open case presented as closed"
        )
    if closures and stated not in (None, "closed"):
        problems.append(
            f"{exported.path if exported else 'the export event'} says the case is {stated}, "
            f"but {closures[0].path} closed it"
        )
    cancelled = [e for e in run.ordered() if e.type == "case.cancelled"]
    if closures and cancelled:
        problems.append(f"the case was both cancelled ({cancelled[0].path}) and closed")
    if run.receipt is not None:
        problems += _receipt_closure(run, closures)
    if closures and not [e for e in run.ordered() if e.type == "case.certificate_issued"]:
        problems.append(
            "the case is closed, but the pack holds no case.certificate_issued event: the "
            "closure certificate is not bound to the record"
        )
    if closures:
        summary = f"the case was closed once ({closures[0].path})"
        if run.receipt is not None and not problems:
            summary += ": the closure in your receipt"
    else:
        summary = f"the case is not closed ({stated or 'state unknown'}): an interim pack"
    run.add("closure", summary, problems)


def _receipt_closure(run: Run, closures: list[Entry]) -> list[str]:
    receipt = run.receipt
    assert receipt is not None
    held = run.entries.get(receipt.closed_index)
    if held is None or held.type != "case.closed" or held.leaf != receipt.closed_leaf:
        what = "is not in the pack" if held is None else f"is {held.path} ({held.type or 'erased'})"
        return [
            f"the closure in your receipt (event #{receipt.closed_index}, leaf "
            f"{receipt.closed_leaf.hex()[:16]}…) {what}: this is not the closure you were told of"
        ]
    return [
        f"{e.path} closes the case outside your receipt's checkpoint (size "
        f"{run.receipt_checkpoint.size if run.receipt_checkpoint else '?'})"
        for e in closures
        if e.index != receipt.closed_index
    ]
