"""`offboard export REF --out FILE.zip` writes a case's evidence pack; `offboard verify FILE.zip`
checks one offline. `verify` never touches Django or a database: it needs only this package.
"""

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    out,
    resolve_actor,
    say,
)

if TYPE_CHECKING:
    from offboard.packs.verify import Report

MAX_OPTION_FILE = 16 * 1024 * 1024


def _bar(console: Console, label: str, disable: bool) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=disable or not console.is_terminal,
    )


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
        with partial.open("wb") as f, _bar(console, f"[bold]{ref}[/] files", json_out) as bar:
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
    say(f"  check it with: offboard verify {out_path} --key '{cp.key.verifier_key}'")


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
    out.print()
    if failed:
        out.print(
            Text(
                f"NOT VERIFIED: {len(failed)} of {len(report.checks)} checks failed.",
                style="red bold",
            )
        )
    else:
        out.print(Text(f"VERIFIED: all {len(report.checks)} checks passed.", style="green bold"))


def verify(
    pack: Annotated[
        Path,
        typer.Argument(metavar="FILE.zip", exists=True, dir_okay=False, help="The evidence pack."),
    ],
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="VKEY",
            help="The organization's note verifier key (name+id+key), or a file holding it, "
            "obtained independently of the pack. The checkpoint must be signed by it.",
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            exists=True,
            dir_okay=False,
            help="A signed checkpoint you hold (e.g. your closure receipt): the pack must show "
            "that its log extends it.",
        ),
    ] = None,
    tsa_roots: Annotated[
        Path | None,
        typer.Option(
            "--tsa-roots",
            exists=True,
            dir_okay=False,
            help="PEM root certificates of the time-stamping authorities to anchor the tokens.",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Check an evidence pack offline, with no database: the five questions, then every check.

    Checks bag fixity, every event's inclusion in the signed checkpoint, the signature, the
    timestamps, the evidence files, and consistency with a checkpoint you hold. Exit 0 only if
    every check passed.
    """
    from offboard.packs.verify import parse_roots, verify_pack

    trusted = _key(key) if key is not None else None
    roots = None
    if tsa_roots is not None:
        try:
            roots = parse_roots(_option_file(tsa_roots, "--tsa-roots"))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tsa-roots") from None
    client = _option_file(checkpoint, "--checkpoint") if checkpoint is not None else None
    console = Console(stderr=True)
    with _bar(console, "reading", json_out) as bar:
        task = bar.add_task("reading", total=pack.stat().st_size)
        report = verify_pack(
            pack,
            key=trusted,
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
    raise typer.Exit(0 if report.ok else 1)
