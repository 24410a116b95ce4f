"""How a case looks on the command line: plain dicts for --json, Rich tables for people."""

from datetime import UTC
from itertools import groupby
from typing import Any

from rich.table import Table
from rich.text import Text

from offboard.cli.common import out, plain

STATE_STYLES = {
    "draft": "dim",
    "active": "cyan",
    "closing": "yellow",
    "closed": "green",
    "cancelled": "red",
}
STEP_STYLES = {"pending": "", "in_progress": "cyan", "done": "green", "not_applicable": "dim"}
SETTLED_STEP = ("done", "not_applicable")


def label(code: Any, vocabulary: str) -> str:
    """A stored code in words (offboard.labels, which needs Django: loaded when first used, so
    `offboard --help` runs without a database)."""
    from offboard.labels import label as words

    return words(code, vocabulary)


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def _username(user: Any) -> str | None:
    return user.username if user is not None else None


def case_summary(case: Any) -> dict[str, Any]:
    """The case's header, as `case list` and the other commands report it."""
    version = case.playbook_version
    summary = {
        "ref": case.ref,
        "state": case.state,
        "client": {"id": case.client_id, "name": case.client.name},
        "trigger": case.trigger,
        "trigger_date": case.trigger_date,
        "scope": case.scope,
        "fee_type": case.fee_type,
        "notice_date": case.notice_date,
        "effective_end_date": case.effective_end_date,
        "data_return_deadline": case.data_return_deadline,
        "owner": case.owner.username,
        "playbook": {
            "slug": version.playbook.slug,
            "version": version.version,
            "sha256": case.playbook_sha256,
        },
        "created_at": case.created_at,
        "closing_at": case.closing_at,
        "closed_at": case.closed_at,
        "cancel_reason": case.cancel_reason,
    }
    if hasattr(case, "steps_total"):
        summary["steps"] = {"required": case.steps_total, "settled": case.steps_settled}
    return summary


def _evidence(item: Any) -> list[str]:
    return sorted(f.sha256 for f in item.evidence.all())


def step_dict(step: Any, today: Any) -> dict[str, Any]:
    return {
        "key": step.key,
        "phase": step.phase,
        "title": step.title,
        "status": step.status,
        "required": step.required,
        "owner": step.owner.username,
        "owner_role": step.owner_role,
        "due_date": step.due_date,
        "overdue": step.status not in SETTLED_STEP and step.due_date < today,
        "depends_on": list(step.depends_on),
        "evidence_required": list(step.evidence_required),
        "not_applicable_reason": step.not_applicable_reason,
        "completed_at": step.completed_at,
        "evidence": _evidence(step),
    }


def case_detail(
    case: Any, *, gates: list[Any], digest: str, events: list[Any], addenda: list[Any], today: Any
) -> dict[str, Any]:
    """Everything `case show --json` reports. `case` must be loaded with state.with_everything."""
    from offboard.cases.registers import REGISTERS, item_state
    from offboard.core import clock

    now = clock.now()
    detail = case_summary(case)
    detail["contracts"] = sorted(c.reference for c in case.contracts.all())
    detail["scope_notes"] = case.scope_notes
    detail["trigger_notes"] = case.trigger_notes
    detail["steps"] = [
        step_dict(s, today) for s in sorted(case.steps.all(), key=lambda s: s.position)
    ]
    detail["registers"] = {
        key: [
            {
                **item_state(spec, item),
                "label": item.label(),
                "owner": item.owner.username,
                "recorded_by": _username(item.recorded_by),
                "evidence": _evidence(item),
            }
            for item in sorted(getattr(case, key).all(), key=lambda i: i.pk)
        ]
        for key, spec in REGISTERS.items()
    }
    detail["waivers"] = [
        {
            "id": w.pk,
            "target_type": w.target_type,
            "target_id": w.target_id,
            "target": w.target_label,
            "justification": w.justification,
            "approver": w.approver.username,
            "granted_at": w.granted_at,
            "expires_at": w.expires_at,
            "in_force": w.is_in_force(now),
        }
        for w in case.waivers.all()
    ]
    detail["approvals"] = [
        {
            "approver": a.approver.username,
            "role": a.role,
            "decision": a.decision,
            "comment": a.comment,
            "at": a.at,
            "state_digest": a.state_digest,
            "current": a.invalidated_at is None and a.state_digest == digest,
        }
        for a in sorted(case.approvals.all(), key=lambda a: a.pk)
    ]
    detail["addenda"] = [
        {"author": a.author.username, "at": a.at, "text": a.text, "evidence": _evidence(a)}
        for a in addenda
    ]
    detail["unmet_gates"] = [g.as_dict() for g in gates]
    detail["state_digest"] = digest
    detail["events"] = [
        {
            "id": e.pk,
            "at": e.at,
            "type": e.type,
            "actor": (e.actor or {}).get("username"),
            "data": e.data,
            "files": e.files,
        }
        for e in events
    ]
    return detail


# --- Rich rendering --------------------------------------------------------------------------


def print_case_table(summaries: list[dict[str, Any]]) -> None:
    table = Table(
        title=f"{len(summaries)} case{'s' if len(summaries) != 1 else ''}", title_justify="left"
    )
    for column in ("Ref", "Client", "State", "Owner", "Trigger", "End date", "Required steps"):
        table.add_column(column, no_wrap=column in ("Ref", "State", "End date"))
    for s in summaries:
        steps = s.get("steps")
        table.add_row(
            plain(s["ref"]),
            plain(s["client"]["name"]),
            state_text(s["state"]),
            plain(s["owner"]),
            plain(label(s["trigger"], "trigger")),
            plain(s["effective_end_date"]),
            plain(f"{steps['settled']}/{steps['required']}" if steps else None),
        )
    out.print(table)


def _header(d: dict[str, Any]) -> None:
    title = Text.assemble(
        (d["ref"], "bold"), "  ", d["client"]["name"], "  ", state_text(d["state"])
    )
    out.print(title)
    pb = d["playbook"]
    lines = [
        f"Trigger: {label(d['trigger'], 'trigger')} on {d['trigger_date']} · "
        f"{label(d['scope'], 'scope')} · {label(d['fee_type'], 'fee_type')}",
        f"Contracts: {', '.join(d['contracts'])}",
        f"Notice {d['notice_date']} · effective end {d['effective_end_date']} · "
        f"data return by {d['data_return_deadline']}",
        f"Owner: {d['owner']} · playbook {pb['slug']} v{pb['version']} (sha256 {pb['sha256'][:16]}…)",
    ]
    if d["scope_notes"]:
        lines.append(f"Scope: {d['scope_notes']}")
    if d["cancel_reason"]:
        lines.append(f"Cancelled: {d['cancel_reason']}")
    for line in lines:
        out.print(Text(line))


def _steps(steps: list[dict[str, Any]]) -> None:
    settled = sum(1 for s in steps if s["status"] in SETTLED_STEP)
    overdue = sum(1 for s in steps if s["overdue"])
    out.print()
    out.print(Text(f"Steps — {settled}/{len(steps)} settled, {overdue} overdue", style="bold"))
    for phase, group in groupby(steps, key=lambda s: s["phase"]):
        table = Table(title=phase, title_justify="left", show_edge=False)
        for column in ("Step", "Title", "Status", "Owner", "Due"):
            table.add_column(column, no_wrap=column in ("Step", "Status", "Due"))
        for s in group:
            due = Text(str(s["due_date"]), style="bold red" if s["overdue"] else "")
            if s["overdue"]:
                due.append(" overdue")
            title = s["title"] + ("" if s["required"] else " (optional)")
            table.add_row(
                plain(s["key"]),
                plain(title),
                Text(label(s["status"], "status"), style=STEP_STYLES.get(s["status"], "")),
                plain(s["owner"]),
                due,
            )
        out.print(table)


def _item_name(key: str, item: dict[str, Any]) -> str:
    """An item as people name it: `Ad account: Google Ads account`, not `ad_account: …`."""
    if key == "handover_items":
        kind = label(item["kind"], "kind")
        return f"{kind[:1].upper()}{kind[1:]}: {item['name']}"
    if key == "settlements":
        kind = label(item["kind"], "kind")
        return f"{kind[:1].upper()}{kind[1:]} {item['reference']}".strip()
    return str(item["label"])


def _register_detail(key: str, item: dict[str, Any]) -> str:
    if key == "deliverables":
        return " · ".join(x for x in (item["sow_reference"], item["delivery_method"]) if x)
    if key == "handover_items":
        return f"to {item['new_owner']}" if item["new_owner"] else item["method"]
    if key == "access_grants":
        arrow = "us → client" if item["direction"] == "provider_in_client" else "client → us"
        level = item["verification_level"]
        verified = f"verified: {label(level, 'verification')}" if level else ""
        return " · ".join(x for x in (arrow, f"plan: {item['planned_action']}", verified) if x)
    if key == "data_dispositions":
        parts = [item["action"], label(item["method"], "method") if item["method"] else ""]
        if item["legal_hold"]:
            parts.append("LEGAL HOLD")
        if item["action"] == "retain":
            parts.append(f"basis: {item['retention_basis'][:60]}")
        return " · ".join(p for p in parts if p)
    if key == "settlements":
        return f"{item['amount']} {item['currency']}" if item["amount"] else ""
    return ""


def _minute(value: Any) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def known(item: dict[str, Any]) -> str:
    """How a settled item's fact is known and when: `Acknowledged by the client in the portal
    — Nina North · 2026-10-21 14:02 · list sha256 3fa9…`; a late entry shows both times."""
    from offboard.cases.models import Source
    from offboard.cases.provenance import from_state

    p = from_state(item)
    if p is None:
        return ""
    parts = [p.how()]
    if p.late:
        parts.append(f"happened {_minute(p.occurred_at)} · recorded {_minute(p.recorded_at)}")
    elif p.occurred_at is not None or p.recorded_at is not None:
        parts.append(_minute(p.occurred_at or p.recorded_at))
    if p.digest:
        what = "list" if p.source == Source.CLIENT_PORTAL else "document"
        parts.append(f"{what} sha256 {p.digest[:8]}…")
    return " · ".join(parts)


def _registers(registers: dict[str, list[dict[str, Any]]]) -> None:
    from offboard.cases.registers import REGISTERS

    for key, items in registers.items():
        out.print()
        table = Table(
            title=f"{REGISTERS[key].label} ({len(items)})", title_justify="left", show_edge=False
        )
        for column in ("#", "Item", "Status", "Owner", "Detail", "How it is known"):
            table.add_column(column, no_wrap=column in ("#", "Status"))
        for item in items:
            table.add_row(
                plain(item["id"]),
                plain(_item_name(key, item)),
                plain(label(item["status"], "status")),
                plain(item["owner"]),
                plain(_register_detail(key, item)),
                plain(known(item)),
            )
        out.print(table)


def _exceptions_and_approvals(d: dict[str, Any]) -> None:
    if d["waivers"]:
        out.print()
        table = Table(title="Waivers", title_justify="left", show_edge=False)
        for column in ("Covers", "Justification", "Approver", "Expires", "In force"):
            table.add_column(column)
        for w in d["waivers"]:
            table.add_row(
                plain(f"{label(w['target_type'], 'item')}: {w['target']}"),
                plain(w["justification"]),
                plain(w["approver"]),
                plain(str(w["expires_at"])[:10]),
                plain("yes" if w["in_force"] else "no"),
            )
        out.print(table)
    if d["approvals"]:
        out.print()
        table = Table(title="Approvals", title_justify="left", show_edge=False)
        for column in ("Approver", "Role", "Decision", "At", "On state", "Comment"):
            table.add_column(column)
        for a in d["approvals"]:
            on = a["state_digest"][:12] + ("… (current)" if a["current"] else "… (outdated)")
            table.add_row(
                plain(a["approver"]),
                plain(a["role"]),
                plain(a["decision"]),
                plain(str(a["at"])[:16]),
                plain(on),
                plain(a["comment"]),
            )
        out.print(table)
    for a in d["addenda"]:
        out.print(Text(f"Addendum by {a['author']} at {str(a['at'])[:16]}: {a['text']}"))


def _gates(gates: list[dict[str, Any]]) -> None:
    out.print()
    if not gates:
        out.print(Text("Gates: all met", style="bold green"))
        return
    out.print(Text(f"Unmet gates ({len(gates)})", style="bold red"))
    for g in gates:
        name = label(g["code"], "gate")
        out.print(
            Text.assemble(
                "  ", (name[:1].upper() + name[1:], "bold"), f" ({g['code']}): ", g["message"]
            )
        )
        out.print(Text(f"    resolve: {g['resolve']}", style="dim"))


def _events(events: list[dict[str, Any]], limit: int) -> None:
    out.print()
    shown = events[-limit:] if limit > 0 else []
    earlier = len(events) - len(shown)
    title = f"Events ({len(events)}" + (f", last {len(shown)} shown" if earlier else "") + ")"
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in ("#", "At (UTC)", "Event", "By"):
        table.add_column(column, no_wrap=True)
    for e in shown:
        table.add_row(plain(e["id"]), plain(str(e["at"])[:19]), plain(e["type"]), plain(e["actor"]))
    out.print(table)


def print_case_detail(d: dict[str, Any], *, events: int) -> None:
    _header(d)
    _steps(d["steps"])
    _registers(d["registers"])
    _exceptions_and_approvals(d)
    _gates(d["unmet_gates"])
    out.print(Text(f"State digest: {d['state_digest']}"))
    _events(d["events"], events)
