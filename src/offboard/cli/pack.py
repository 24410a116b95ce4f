"""`offboard export REF --out FILE.zip` writes a case's evidence pack; `offboard verify FILE.zip`
checks one offline. `verify` never touches Django or a database: it needs only this package.
"""

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    byte_bar,
    emit_json,
    ensure_django,
    out,
    resolve_actor,
    say,
)

if TYPE_CHECKING:
    from offboard.packs.verify import Report

MAX_OPTION_FILE = 16 * 1024 * 1024


def export(
    ref: Annotated[
        str, typer.Argument(metavar="CASE_REF", help="Case reference, e.g. C-2026-0042.")
    ],
    out_path: Annotated[
        Path,
        typer.Option("--out", dir_okay=False, help="Where to write the pack, e.g. pack.zip."),
    ],
    org: OrgOption = None,
    as_user: AsOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write the case's evidence pack (a zipped BagIt bag) for a third party to verify offline.

    Recorded as an event; auditors, managers and admins only. Works for open cases (interim).
    """
    ensure_django()
    from offboard.cases.selectors import get_case
    from offboard.packs.export import iter_pack, start_export

    actor = resolve_actor(org, as_user)
    plan = start_export(actor=actor, case=get_case(actor.org, ref))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.{os.getpid()}.part")
    sha, size = hashlib.sha256(), 0
    console = Console(stderr=True)
    try:
        with partial.open("wb") as f, byte_bar(console, f"[bold]{ref}[/] files", json_out) as bar:
            task = bar.add_task("files", total=plan.file_bytes or None)
            for chunk in iter_pack(plan, progress=lambda n: bar.advance(task, n)):
                f.write(chunk)
                sha.update(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    cp = plan.checkpoint
    summary = {
        "pack": str(out_path),
        "case": plan.case.ref,
        "interim": plan.case.state != "closed",
        "bytes": size,
        "sha256": sha.hexdigest(),
        "events": len(plan.event_indices),
        "files": len(plan.files),
        "checkpoint": {"size": cp.size, "root": bytes(cp.root).hex(), "key": cp.key.verifier_key},
    }
    if json_out:
        emit_json(summary)
        return
    kind = (
        "Evidence pack"
        if plan.case.state == "closed"
        else "Interim evidence pack (case not closed)"
    )
    say(f"{kind} of {plan.case.ref} written to {out_path} ({size:,} bytes).", "bold")
    say(
        f"  {len(plan.event_indices)} events, {len(plan.files)} evidence files, checkpoint size {cp.size}"
    )
    say(f"  sha256 {sha.hexdigest()}")
    say(
        f"  check it with: offboard verify {out_path} --receipt {plan.case.ref}-closure-receipt.txt"
        if plan.case.state == "closed"
        else f"  check it with: offboard verify {out_path} --key KEY (the organization's "
        "verifier key, from Settings → Signing key; the client uses their closure receipt)"
    )


def _option_file(path: Path, option: str) -> bytes:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_OPTION_FILE + 1)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from None
    if len(raw) > MAX_OPTION_FILE:
        raise typer.BadParameter(f"{path} is too large", param_hint=option)
    return raw


def _key(value: str) -> Any:
    from offboard.packs.verify import parse_key

    text = value
    candidate = Path(value)
    if "+" not in value or candidate.is_file():
        raw = _option_file(candidate, "--key")
        text = raw.decode("utf-8", "replace").strip().split("\n", 1)[0]
    try:
        return parse_key(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not a note verifier key: {exc}", param_hint="--key") from None


def _print_after_receipt(report: "Report") -> None:
    if not report.after_receipt:
        return
    size = (report.receipt or {}).get("checkpoint_size")
    out.print()
    out.print(
        Text(f"Recorded after your receipt (the log beyond size {size})", style="bold"),
        soft_wrap=True,
    )
    for row in report.after_receipt:
        anchored = (
            ""
            if row["anchored"]
            else "  [not anchored: data/checkpoint is signed by a key you did not give]"
        )
        who = f" by {row['actor']}" if row["actor"] else ""
        out.print(
            Text(f"   - {row['path']}: {row['type']} {row['at'] or ''}{who}{anchored}"),
            soft_wrap=True,
        )


OUTCOME_LINES = {
    "verified": ("VERIFIED: all {n} checks passed, anchored by {anchors}.", "green bold"),
    "failed": ("NOT VERIFIED: {failed} of {n} checks failed; nothing is proven.", "red bold"),
    "unanchored": (
        "UNANCHORED: all {n} checks passed, but only against what the pack says about itself. "
        "Give --receipt (the closure receipt) or --key (the organization's key, obtained from "
        "them); nothing is proven without one.",
        "yellow bold",
    ),
}


def _print_report(report: "Report") -> None:
    cp = report.checkpoint or {}
    where = f", log {cp['origin']} at size {cp['size']}" if cp else ""
    say(f"{Path(report.pack).name}: case {report.case_ref or '?'}{where}", "bold")
    for answer in report.answers:
        out.print()
        out.print(Text(f"{answer.number}. {answer.question}", style="bold"))
        verdict = "PROVEN" if answer.proven else "NOT PROVEN"
        out.print(Text(f"   {verdict}", style="green bold" if answer.proven else "yellow bold"))
        for reason in answer.reasons:
            out.print(Text(f"   - {reason}"), soft_wrap=True)
    _print_after_receipt(report)
    out.print()
    out.print(Text("Checks", style="bold"))
    for check in report.checks:
        status = Text(
            "  ok      " if check.ok else "  FAILED  ", style="green" if check.ok else "red bold"
        )
        if check.ok:
            out.print(status + Text(f"{check.name}: {check.summary}"), soft_wrap=True)
            continue
        out.print(status + Text(f"{check.name}: {check.problems[0]}"), soft_wrap=True)
        for problem in check.problems[1:20]:
            out.print(Text(f"          {problem}"), soft_wrap=True)
        if len(check.problems) > 20:
            out.print(Text(f"          … and {len(check.problems) - 20} more"))
    failed = [c for c in report.checks if not c.ok]
    line, style = OUTCOME_LINES[report.outcome]
    out.print()
    out.print(
        Text(
            line.format(
                n=len(report.checks), failed=len(failed), anchors=" and ".join(report.anchors)
            ),
            style=style,
        ),
        soft_wrap=True,
    )


def verify(
    pack: Annotated[
        Path,
        typer.Argument(metavar="FILE.zip", exists=True, dir_okay=False, help="The evidence pack."),
    ],
    receipt: Annotated[
        Path | None,
        typer.Option(
            "--receipt",
            exists=True,
            dir_okay=False,
            help="The closure receipt the client received (<REF>-closure-receipt.txt): its key "
            "and checkpoint are trusted, nothing in the pack is. The answers come from the "
            "history up to it; later events are listed apart.",
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            metavar="VKEY",
            help="A verifier key of the organization (name+id+key), or a file holding it, "
            "obtained from them directly, never from the pack. data/checkpoint must be signed "
            "by one. Repeatable.",
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            exists=True,
            dir_okay=False,
            help="A signed checkpoint you hold: the pack's log must extend it. Needs --key or "
            "--receipt for the key that signed it.",
        ),
    ] = None,
    tsa_roots: Annotated[
        Path | None,
        typer.Option(
            "--tsa-roots",
            exists=True,
            dir_okay=False,
            help="PEM root certificates of the time-stamping authorities, to anchor the "
            "timestamps (a timestamp proves when, never who).",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Check an evidence pack offline, with no database: the five questions, then every check.

    Trust comes only from outside the pack: --receipt (the closure receipt the client
    received) or --key (the organization's key, obtained from them). Checks fixity, every
    event's inclusion in the signed checkpoint, that the pack holds every event of the case,
    the closure, the timestamps, the evidence files, and consistency with what you hold.

    Exit codes: 0 verified (every check passed, anchored by --receipt or --key); 1 a check
    failed (nothing is proven); 2 usage error; 3 unanchored (consistent, but nothing outside
    the pack vouches for it: nothing is proven).
    """
    from offboard.packs.verify import parse_roots, verify_pack

    keys = [_key(k) for k in key or []]
    if checkpoint is not None and not keys and receipt is None:
        raise typer.BadParameter(
            "a checkpoint names no key you can trust; give --key (the organization's key) or "
            "--receipt with it",
            param_hint="--checkpoint",
        )
    roots = None
    if tsa_roots is not None:
        try:
            roots = parse_roots(_option_file(tsa_roots, "--tsa-roots"))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tsa-roots") from None
    client = _option_file(checkpoint, "--checkpoint") if checkpoint is not None else None
    held = _option_file(receipt, "--receipt") if receipt is not None else None
    console = Console(stderr=True)
    with byte_bar(console, "reading", json_out) as bar:
        task = bar.add_task("reading", total=pack.stat().st_size)
        report = verify_pack(
            pack,
            keys=keys,
            receipt=held,
            client_checkpoint=client,
            tsa_roots=roots,
            progress=lambda n: bar.advance(task, n),
        )
    if json_out:
        emit_json(report.as_dict())
    elif report.error is None:
        _print_report(report)
    if report.error is not None:
        typer.echo(f"error: {' '.join(report.error.split())}", err=True)
    raise typer.Exit(report.exit_code)
