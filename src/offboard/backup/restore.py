"""`restore_backup`: into an EMPTY installation only. The whole file is decrypted and checked
into a private temporary directory first (every chunk authenticated, every member against the
manifest, every stored file against its SHA-256); only then are the database, the key files
and the stored files written. Afterwards every organization's ledger is verified from scratch
and the latest checkpoint in the backup must be consistent with the restored log.

Empty means: no organizations, users, ledger events or evidence rows in the database (a
database that is missing, has no tables, or is migrated but empty all qualify) and no objects
under `evidence/` in the file store.
"""

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, connections

from offboard.backup import archive
from offboard.backup.crypto import BackupKey, DecryptingReader
from offboard.backup.database import (
    BackupError,
    check_pg_restore,
    load_postgres,
    load_sqlite,
    sqlite_path,
    vendor,
)

Progress = Callable[[str, int, int], None]
ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class RestoreReport:
    manifest: dict[str, Any]
    restored: bool = False
    organizations: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    key_files: int = 0
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    public: dict[str, Any] = field(default_factory=dict)  # --check: keys and checkpoints

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        manifest = {k: v for k, v in self.manifest.items() if k not in ("members", "_modes")}
        return {
            "ok": self.ok,
            "restored": self.restored,
            "backup": manifest,
            "organizations": self.organizations,
            "files": self.files,
            "key_files": self.key_files,
            "warnings": self.warnings,
            "problems": self.problems,
            **self.public,
        }


# --- is the installation empty? ------------------------------------------------------------------


def installation_contents() -> list[str]:
    """What the installation already holds, in words; [] when it is empty."""
    from offboard.accounts.models import Organization, User
    from offboard.evidence.models import EvidenceFile
    from offboard.ledger.models import LedgerEntry

    found: list[str] = []
    fresh_file = vendor() == "sqlite" and not connection.is_in_memory_db()  # type: ignore[attr-defined]
    if fresh_file and (not sqlite_path().exists() or sqlite_path().stat().st_size == 0):
        tables: list[str] = []  # nothing there: do not even create the file by connecting
    else:
        tables = connection.introspection.table_names()
    if Organization._meta.db_table in tables:
        slugs = list(Organization.objects.order_by("slug").values_list("slug", flat=True)[:6])
        if slugs:
            more = ", …" if len(slugs) > 5 else ""
            found.append(f"organizations {', '.join(slugs[:5])}{more}")
    for model, label in (
        (User, "users"),
        (LedgerEntry, "ledger events"),
        (EvidenceFile, "evidence files"),
    ):
        if model._meta.db_table in tables:
            count = model.objects.count()
            if count:
                found.append(f"{count} {label}")
    stored = _stored_objects()
    if stored:
        found.append(stored)
    return found


def _stored_objects() -> str:
    from django.core.files.storage import default_storage

    try:
        dirs, files = default_storage.listdir("evidence")
    except FileNotFoundError:
        return ""
    except Exception as exc:
        raise BackupError(f"Cannot list the file store to check that it is empty: {exc}") from None
    if not dirs and not files:
        return ""
    where = getattr(default_storage, "location", None) or getattr(
        default_storage, "bucket_name", "the file store"
    )
    return f"stored files under evidence/ in {where}"


def _refuse_if_not_empty() -> None:
    contents = installation_contents()
    if contents:
        raise BackupError(
            f"Refusing to restore into an installation that is not empty: it has "
            f"{'; '.join(contents)}. Restore into a new, empty database and file store "
            '(docs/deploy.md, "Backups and restore"); nothing was written.'
        )


# --- read and check the whole backup ----------------------------------------------------------


def open_backup(
    path: Path, key: BackupKey, into: Path, progress: Progress | None
) -> dict[str, Any]:
    """Decrypt and unpack `path` into `into` and check it all; the manifest."""
    name = path.name
    try:
        total = path.stat().st_size
        source = path.open("rb")
    except OSError as exc:
        raise BackupError(f"Cannot read the backup {path}: {exc.strerror}.") from None

    def advance(n: int) -> None:
        if progress:
            progress("decrypt", n, total)

    with source:
        reader = DecryptingReader(source, key, name=name, progress=advance)
        manifest = archive.extract(reader, into, name)
        reader.finish()
    for row in _read_json(into / archive.CHECKPOINTS, name, list):
        if not isinstance(row, dict) or not isinstance(row.get("signed_note"), str):
            raise BackupError(f"{name}: {archive.CHECKPOINTS} is not a list of checkpoints.")
    _check_files(into, name)
    return manifest


def _read_json(path: Path, name: str, kind: type) -> Any:
    import json

    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise BackupError(f"{name}: {path.name} is missing or not JSON.") from None
    if not isinstance(value, kind):
        raise BackupError(f"{name}: {path.name} is not a {kind.__name__}.")
    return value


def _check_files(into: Path, name: str) -> None:
    """Every stored file is named by its SHA-256: check the bytes against the name."""
    import hashlib

    root = into / archive.FILES
    if not root.is_dir():
        return
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        expected = path.name
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(archive.COPY):
                digest.update(chunk)
        if len(expected) == 64 and digest.hexdigest() != expected:
            raise BackupError(
                f"{name}: stored file {path.relative_to(root)} does not hash to its name."
            )


def _check_compatible(manifest: dict[str, Any], name: str) -> None:
    from django.db.migrations.loader import MigrationLoader

    engine = manifest.get("engine")
    here = vendor()
    if engine != here:
        raise BackupError(
            f"{name} was made on {ENGINE_NAMES.get(str(engine), engine)}; this installation uses "
            f"{ENGINE_NAMES.get(here, here)}. Restore it into an installation on "
            f"{ENGINE_NAMES.get(str(engine), engine)} (set or unset DATABASE_URL); moving between "
            "engines is not supported. Nothing was written."
        )
    known = {f"{app}.{migration}" for app, migration in MigrationLoader(None).disk_migrations}
    newer = sorted(set(manifest.get("migrations", [])) - known)
    if newer:
        raise BackupError(
            f"{name} was made by a newer Offboard ({manifest.get('offboard_version')}; "
            f"migrations this one lacks: {', '.join(newer[:3])}). Upgrade this installation, "
            "then restore. Nothing was written."
        )
    if here == "postgresql":
        check_pg_restore(str(manifest.get("database", {}).get("tool", "")))


def _key_files_plan(into: Path, manifest: dict[str, Any]) -> list[tuple[Path, Path, int]]:
    """(from, to, mode) for each private key file; refuses before writing if one would replace
    a different file already there."""
    root = into / archive.PRIVATE_KEYS.rstrip("/")
    if not root.is_dir():
        return []
    key_dir = Path(settings.OFFBOARD_KEY_DIR)
    modes = manifest.get("_modes", {})
    plan = []
    for source in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = source.relative_to(root)
        target = key_dir / relative
        if target.exists() and target.read_bytes() != source.read_bytes():
            raise BackupError(
                f"The key directory already has a different {target}: move it away (or restore "
                "without the private keys). Nothing was written."
            )
        mode = int(modes.get(f"{archive.PRIVATE_KEYS}{relative.as_posix()}", 0o600)) & 0o644
        plan.append((source, target, mode))
    return plan


# --- write -----------------------------------------------------------------------------------------


def _load_database(into: Path, manifest: dict[str, Any], work: Path) -> None:
    from django.core.management import call_command

    member = into / manifest["database"]["member"]
    if vendor() == "sqlite":
        load_sqlite(member)
    else:
        load_postgres(member, work)
    connections.close_all()
    call_command("migrate", interactive=False, verbosity=0)  # a backup from an older release


def _write_key_files(plan: list[tuple[Path, Path, int]], manifest: dict[str, Any]) -> None:
    import os

    from offboard.ledger.models import SigningKey

    for source, target, mode in plan:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if target.exists():
            continue  # the same bytes (checked by the plan)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(source.read_bytes())
        os.chmod(target, mode)
    # Key rows name their file by absolute path: follow the key directory if it moved.
    old_dir = Path(str(manifest.get("key_dir", "")))
    new_dir = Path(settings.OFFBOARD_KEY_DIR).resolve()
    if old_dir == new_dir or not str(old_dir):
        return
    for key in SigningKey.objects.exclude(private_key_path=""):
        path = Path(key.private_key_path)
        if path.is_relative_to(old_dir) and not path.exists():
            moved = new_dir / path.relative_to(old_dir)
            if moved.exists():
                SigningKey.objects.filter(pk=key.pk).update(private_key_path=str(moved))


def _store_files(into: Path, progress: Progress | None) -> int:
    from offboard.evidence import storage

    root = into / archive.FILES.rstrip("/")
    if not root.is_dir():
        return 0
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in paths)
    for path in paths:
        name = path.relative_to(root).as_posix()
        with path.open("rb") as f:
            try:
                storage.put(name, f)
            except Exception as exc:
                raise BackupError(
                    f"Storing {name} failed ({exc}). The database is restored but the file "
                    "store is incomplete: empty both and run the restore again."
                ) from None
        if progress:
            progress("files", path.stat().st_size, total)
    return len(paths)


# --- verify ----------------------------------------------------------------------------------------


def checkpoint_problem(
    org: Any, signed_note: str, verifier_keys: list[str], root: bytes
) -> str | None:
    """Whether a signed checkpoint (held before the backup) is consistent with the restored log
    whose recomputed root is `root`: its signature, and an RFC 9162 consistency proof from its
    size to the log's size built from the restored nodes. None when it is."""
    from offboard.ledger import merkle, store
    from offboard.ledger.note import Checkpoint as CheckpointBody
    from offboard.ledger.note import NoteError, Verifier, open_note

    try:
        verifiers = [Verifier.from_verifier_key(k) for k in verifier_keys]
        body = CheckpointBody.parse(open_note(signed_note, verifiers).text)
    except NoteError as exc:
        return f"checkpoint does not verify: {exc}"
    size = store.size(org)
    if body.size > size:
        return f"checkpoint of size {body.size} covers more than the restored log ({size} events)"
    if body.size == 0:
        proof: list[bytes] = []
    else:
        proof = store.consistency_proof(org, body.size, size)
    if not merkle.verify_consistency(body.size, size, body.root, root, proof):
        return f"checkpoint of size {body.size} is not consistent with the restored log"
    return None


def _verify(report: RestoreReport, into: Path) -> None:
    from offboard.accounts.models import Organization
    from offboard.ledger.verify import verify_log

    checkpoints = _read_json(into / archive.CHECKPOINTS, "backup", list)
    keys = _read_json(into / archive.KEYS, "backup", list)
    expected = {o["slug"]: o for o in report.manifest.get("organizations", [])}
    for org in Organization.objects.order_by("slug"):
        result = verify_log(org)
        problems = list(result.problems)
        wanted = expected.get(org.slug, {})
        if wanted and wanted.get("log_size") != result.entries:
            problems.append(
                f"the backup recorded {wanted.get('log_size')} events, {result.entries} restored"
            )
        own = [c for c in checkpoints if c.get("org") == org.slug]
        latest = own[-1] if own else None
        consistent = None
        if latest is not None:
            verifier_keys = [k["verifier_key"] for k in keys if k.get("org") == org.slug]
            problem = checkpoint_problem(org, latest["signed_note"], verifier_keys, result.root)
            consistent = problem is None
            if problem:
                problems.append(f"latest checkpoint in the backup: {problem}")
        report.organizations.append(
            {
                "slug": org.slug,
                "ok": not problems,
                "events": result.entries,
                "checkpoints": result.checkpoints,
                "files": result.files,
                "root": result.root.hex(),
                "latest_checkpoint_size": latest["size"] if latest else None,
                "latest_checkpoint_consistent": consistent,
                "problems": problems,
            }
        )
        report.problems.extend(f"{org.slug}: {p}" for p in problems)
    missing = sorted(set(expected) - {o["slug"] for o in report.organizations})
    report.problems.extend(f"{slug}: in the backup but not restored" for slug in missing)


def _key_warnings(report: RestoreReport) -> None:
    """What a restore without the private key directory leaves to do, said plainly."""
    from django.apps import apps
    from django.db.models import CharField, Q, TextField

    from offboard.core import sealing
    from offboard.ledger.keys import KeyUnavailable, load_signer
    from offboard.ledger.models import SigningKey

    for key in SigningKey.objects.filter(retired_at__isnull=True).select_related("org"):
        if getattr(key, "backend", "file") != "file":
            continue  # on a token (PKCS#11): nothing on disk to restore
        try:
            load_signer(key)
        except KeyUnavailable:
            report.warnings.append(
                f"{key.org.slug}: the private half of signing key {key.key_id} is not on this "
                "machine, so no new checkpoint (and no case closure) can be signed until an "
                f"admin runs `offboard ledger rotate-key --org {key.org.slug}`."
            )
    sealed = 0
    holders = []
    for model in apps.get_models():
        fields = [
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, CharField | TextField) and "sealed" in f.name
        ]
        if not fields:
            continue
        condition = Q()
        for name in fields:
            condition |= ~Q(**{name: ""})
        count = model._default_manager.filter(condition).count()
        if count:
            sealed += count
            holders.append(model._meta.verbose_name_plural)
    if sealed and not sealing.key_path().is_file():
        report.warnings.append(
            f"{sealed} sealed secret(s) ({', '.join(sorted(map(str, holders)))}) cannot be "
            f"opened: the sealing key ({sealing.key_path()}) is not on this machine. Restore that "
            "file from key custody, or enter those secrets again (rotate webhook and connector "
            "secrets; members re-enrol second factors)."
        )


def restore_backup(
    *, path: Path, key: BackupKey, check_only: bool = False, progress: Progress | None = None
) -> RestoreReport:
    """Check the backup whole, then (unless `check_only`) load it into this empty installation
    and verify the result."""
    if not check_only:
        _refuse_if_not_empty()
    work = Path(tempfile.mkdtemp(prefix="offboard-restore-"))  # mode 0700
    try:
        into = work / "backup"
        into.mkdir(mode=0o700)
        manifest = open_backup(path, key, into, progress)
        report = RestoreReport(manifest=manifest)
        if check_only:
            report.organizations = list(manifest.get("organizations", []))
            report.files = int(manifest.get("files", {}).get("count", 0))
            report.public = {
                "keys": _read_json(into / archive.KEYS, path.name, list),
                "checkpoints": _read_json(into / archive.CHECKPOINTS, path.name, list),
            }
            return report
        _check_compatible(manifest, path.name)
        plan = _key_files_plan(into, manifest)
        _refuse_if_not_empty()  # again, just before writing: nobody started using it meanwhile
        _load_database(into, manifest, work)
        report.restored = True
        _write_key_files(plan, manifest)
        report.key_files = len(plan)
        report.files = _store_files(into, progress)
        _verify(report, into)
        _key_warnings(report)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
