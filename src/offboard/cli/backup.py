"""`offboard backup --out FILE` and `offboard restore FILE`: an encrypted snapshot of the whole
installation, and its restore into an empty one (docs/deploy.md, "Backups and restore")."""

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from offboard.cli.common import JsonOption, byte_bar, emit_json, ensure_django, fail, say

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        envvar="OFFBOARD_BACKUP_KEY_FILE",
        dir_okay=False,
        help="A file holding a 32-byte key (raw, base64 or hex; e.g. `openssl rand -base64 32`), "
        "or $OFFBOARD_BACKUP_KEY_FILE. Or set a passphrase in $OFFBOARD_BACKUP_KEY instead.",
    ),
]


def _key(key_file: Path | None) -> Any:
    from offboard.backup.crypto import KEY_ENV, BackupKey, BackupKeyError

    passphrase = os.environ.get(KEY_ENV, "")
    try:
        if key_file is not None and passphrase:
            fail(f"Give one key: --key-file or ${KEY_ENV}, not both.")
        if key_file is not None:
            return BackupKey.from_file(key_file)
        if passphrase:
            return BackupKey.from_passphrase(passphrase)
    except BackupKeyError as exc:
        fail(str(exc))
    fail(
        f"A backup is encrypted: give a key file with --key-file PATH, or a passphrase in "
        f'${KEY_ENV} (docs/deploy.md, "Backups and restore").'
    )


class _Bars:
    """One transient bar per phase, on stderr, only on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.progress = byte_bar(Console(stderr=True), "{task.description}", quiet)
        self.tasks: dict[str, Any] = {}

    def __call__(self, phase: str, advance: int, total: int) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=total or None)
        self.progress.update(self.tasks[phase], advance=advance, total=total or None)

    def __enter__(self) -> "_Bars":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


def _errors() -> tuple[type[BaseException], ...]:
    from offboard.backup.crypto import BackupDamaged, BackupKeyError

    return (BackupDamaged, BackupKeyError)


def backup(
    out: Annotated[
        Path,
        typer.Option("--out", dir_okay=False, help="The backup file to write (never overwritten)."),
    ],
    key_file: KeyFileOption = None,
    include_private_keys: Annotated[
        bool,
        typer.Option(
            "--include-private-keys",
            help="Also back up OFFBOARD_KEY_DIR (checkpoint signing keys, the sealing key, "
            "document-signing keys). Off by default: key custody is separate; without them a "
            "restored installation must rotate its signing keys and re-enter sealed secrets.",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Write an encrypted, consistent backup: the database (SQLite's online backup, or pg_dump
    on PostgreSQL), every stored file it references (SHA-256 checked), the public keys and
    checkpoints, and a manifest of every member's SHA-256."""
    key = _key(key_file)
    ensure_django()
    from offboard.backup.create import create_backup

    with _Bars(json_out) as bars:
        try:
            summary = create_backup(
                out=out, key=key, include_private_keys=include_private_keys, progress=bars
            )
        except _errors() as exc:
            fail(str(exc))
    if json_out:
        emit_json(summary)
        return
    orgs = ", ".join(f"{o['slug']} ({o['log_size']} events)" for o in summary["organizations"])
    say(
        f"Backup written to {summary['path']}: {summary['bytes']:,} bytes, "
        f"{summary['engine']} database, {summary['files']} stored files, "
        f"{summary['checkpoints']} checkpoints; organizations: {orgs or 'none'}.",
        "bold",
    )
    say(f"SHA-256 {summary['sha256']}")
    if not summary["private_keys_included"]:
        say(
            "Private keys are not in it (see --include-private-keys): keep OFFBOARD_KEY_DIR "
            "in key custody, or a restore must rotate signing keys and re-enter sealed secrets."
        )


def restore(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", dir_okay=False, help="A file `offboard backup` wrote.")
    ],
    key_file: KeyFileOption = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only decrypt and check the whole backup and print what it holds; write nothing.",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Restore a backup into an EMPTY installation (refused otherwise), then verify every
    organization's ledger and that the backup's latest checkpoint is consistent with it.

    The whole file is decrypted and checked first: a wrong key or a damaged file writes nothing.
    """
    key = _key(key_file)
    ensure_django()
    from offboard.backup.restore import restore_backup

    with _Bars(json_out) as bars:
        try:
            report = restore_backup(path=file, key=key, check_only=check, progress=bars)
        except _errors() as exc:
            fail(str(exc))
    if json_out:
        emit_json(report.as_dict())
    elif check:
        m = report.manifest
        say(
            f"{file.name} is intact: made {m.get('created_at')} by Offboard "
            f"{m.get('offboard_version')} on {m.get('engine')}, {report.files} stored files, "
            f"private keys {'included' if m.get('private_keys_included') else 'not included'}.",
            "bold",
        )
        for o in report.organizations:
            say(
                f"  {o['slug']}: {o['log_size']} events, {o['checkpoints']} checkpoints "
                f"(latest of size {o['latest_checkpoint_size']})"
            )
    else:
        for o in report.organizations:
            consistent = {True: "consistent", False: "NOT consistent", None: "none"}[
                o["latest_checkpoint_consistent"]
            ]
            say(
                f"{o['slug']}: {'OK' if o['ok'] else 'FAILED'} — {o['events']} events, "
                f"{o['checkpoints']} checkpoints, {o['files']} evidence files; latest checkpoint "
                f"in the backup (size {o['latest_checkpoint_size']}): {consistent}; "
                f"root {o['root'][:16]}…",
                style="green" if o["ok"] else "red",
            )
        say(f"Restored {report.files} stored files and {report.key_files} key files.")
        say(
            "These checks use the keys and checkpoints the backup itself carries: they show the "
            "restored log is the one that was backed up, not that it is the one you published: "
            "that takes a checkpoint held outside the backup (in a pack you handed over, or a "
            "timestamped one), checked against the restored log."
        )
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if not report.ok:
        typer.echo(
            f"error: the restored installation does not verify: {report.problems[0]}", err=True
        )
        for problem in report.problems[1:10]:
            typer.echo(f"  also: {problem}", err=True)
        raise typer.Exit(1)
