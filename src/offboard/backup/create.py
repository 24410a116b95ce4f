"""`create_backup`: snapshot the database, then stream it, the stored files the snapshot
references (each SHA-256 checked as read), the public keys and checkpoints, optionally the
private key directory, and a manifest, through the encryption into one file.

Plaintext touches the disk only as the database snapshot the engine's tool writes, in a private
temporary directory (0700, file 0600) removed at the end. The output appears under its name only
once it is complete (written beside it, then renamed).
"""

import datetime as dt
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from offboard.backup import archive
from offboard.backup.crypto import BackupKey, EncryptingWriter
from offboard.backup.database import BackupError, Catalogue, snapshot_postgres, snapshot_sqlite
from offboard.backup.database import vendor as db_vendor

Progress = Callable[[str, int, int], None]  # (phase, bytes done now, total bytes of the phase)


def offboard_version() -> str:
    try:
        return version("offboard")
    except PackageNotFoundError:  # pragma: no cover - a source checkout without install
        return "unknown"


class _HashingSink:
    """The output file, hashed as written, so the summary can name the backup's SHA-256."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def _private_key_files() -> list[tuple[str, Path]]:
    root = Path(settings.OFFBOARD_KEY_DIR)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            name = archive.PRIVATE_KEYS + path.relative_to(root).as_posix()
            if archive.safe_member(name):  # temporary files start with a dot
                found.append((name, path))
    return found


def _add_stored_files(writer: archive.ArchiveWriter, catalogue: Catalogue) -> tuple[int, int]:
    from offboard.evidence.storage import open_stored

    seen: set[str] = set()
    total = 0
    for row in catalogue.files:
        name = row["storage_name"]
        if name in seen:
            continue
        seen.add(name)
        where = f"evidence file {name} ({row['org']})"
        try:
            with open_stored(name, sha256=row["sha256"]) as stream:
                size = int(getattr(stream, "size", row["size"]))
                if size != int(row["size"]):
                    raise BackupError(
                        f"{where}: the store holds {size} bytes, the database says "
                        f"{row['size']}. The stored copy is damaged; no backup was written."
                    )
                sha = writer.add(archive.FILES + name, stream, size)
        except BackupError:
            raise
        except FileNotFoundError:
            raise BackupError(
                f"{where} is referenced by the database but missing from storage; no backup "
                "was written. Run `offboard ledger verify` to list what is missing."
            ) from None
        except Exception as exc:  # the store's own errors: name the file, not a traceback
            raise BackupError(
                f"{where} could not be read intact ({exc}); no backup was written."
            ) from None
        if sha != row["sha256"]:
            raise BackupError(
                f"{where}: its stored bytes hash to {sha}, not to the recorded sha256; no "
                "backup was written."
            )
        total += size
    return len(seen), total


def create_backup(
    *,
    out: Path,
    key: BackupKey,
    include_private_keys: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the backup to `out` (which must not exist) and return what it holds."""
    if out.exists():
        raise BackupError(
            f"{out} already exists: backups are never overwritten; choose a new name."
        )
    if not out.parent.is_dir():
        raise BackupError(f"--out {out}: the directory {out.parent} does not exist.")
    engine = db_vendor()
    if engine not in archive.DATABASE:
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {engine}.")
    work = Path(tempfile.mkdtemp(prefix="offboard-backup-"))  # mode 0700
    partial = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        snapshot = work / Path(archive.DATABASE[engine]).name
        if progress:
            progress("database", 0, 0)
        if engine == "sqlite":
            catalogue, tool = snapshot_sqlite(snapshot)
        else:
            catalogue, tool = snapshot_postgres(snapshot)
        os.chmod(snapshot, 0o600)
        keys = _private_key_files() if include_private_keys else []
        unique = {f["storage_name"]: int(f["size"]) for f in catalogue.files}
        total = (
            snapshot.stat().st_size
            + sum(unique.values())
            + sum(path.stat().st_size for _, path in keys)
        )

        def advance(n: int) -> None:
            if progress:
                progress("backup", n, total)

        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            sink = _HashingSink(raw)
            encrypted = EncryptingWriter(sink, key)  # type: ignore[arg-type]
            writer = archive.ArchiveWriter(encrypted, progress=advance)
            with snapshot.open("rb") as db:
                writer.add(archive.DATABASE[engine], db, snapshot.stat().st_size)
            snapshot.unlink()  # the plaintext copy is gone as soon as it is encrypted
            writer.add_json(archive.KEYS, catalogue.keys)
            writer.add_json(archive.CHECKPOINTS, catalogue.checkpoints)
            file_count, file_bytes = _add_stored_files(writer, catalogue)
            for name, path in keys:
                with path.open("rb") as f:
                    writer.add(name, f, path.stat().st_size, mode=path.stat().st_mode & 0o644)
            manifest = {
                "format": archive.FORMAT,
                "version": 1,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "offboard_version": offboard_version(),
                "engine": engine,
                "database": {"member": archive.DATABASE[engine], **tool},
                "migrations": catalogue.migrations,
                "organizations": catalogue.organizations,
                "files": {"count": file_count, "bytes": file_bytes},
                "private_keys_included": include_private_keys,
                "key_dir": str(Path(settings.OFFBOARD_KEY_DIR).resolve()),
            }
            writer.close(manifest)
            encrypted.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "path": str(out),
        "bytes": sink.size,
        "sha256": sink.digest.hexdigest(),
        "engine": engine,
        "organizations": catalogue.organizations,
        "files": file_count,
        "file_bytes": file_bytes,
        "signing_keys": len(catalogue.keys),
        "checkpoints": len(catalogue.checkpoints),
        "private_keys_included": include_private_keys,
    }
