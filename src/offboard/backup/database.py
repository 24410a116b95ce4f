"""The database half of a backup, with each engine's own tools: SQLite's online backup API, and
PostgreSQL's pg_dump (custom format, from an exported snapshot) and pg_restore.

What a backup needs to know about its snapshot (which files it references, the keys and
checkpoints) is read from that same snapshot, never from the live database, so the files and
the manifest describe exactly the database that is in the backup.
"""

import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, connections

from offboard.core.errors import OffboardError


class BackupError(OffboardError):
    """A backup or restore that cannot go on; the message says why and what to do."""

    code = "backup_failed"


@dataclass
class Catalogue:
    """What the snapshot holds that a restore and an auditor want to see without loading it."""

    organizations: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    migrations: list[str] = field(default_factory=list)


def vendor() -> str:
    return str(connection.vendor)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | memoryview | bytearray):
        return bytes(value).hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _rows(cursor: Any, sql: str) -> list[dict[str, Any]]:
    cursor.execute(sql)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, map(_plain, row), strict=True)) for row in cursor.fetchall()]


def read_catalogue(cursor: Any) -> Catalogue:
    """Read the catalogue through a DB-API cursor on the snapshot (plain SQL: both engines)."""
    from offboard.accounts.models import Organization
    from offboard.evidence.models import EvidenceFile
    from offboard.ledger.models import Checkpoint, LogHead, SigningKey

    slugs = {
        r["id"]: r["slug"]
        for r in _rows(cursor, f"SELECT id, slug FROM {Organization._meta.db_table}")  # noqa: S608 - table names from model metadata
    }
    heads = {
        r["org_id"]: r["size"]
        for r in _rows(cursor, f"SELECT org_id, size FROM {LogHead._meta.db_table}")  # noqa: S608 - table names from model metadata
    }
    files = _rows(
        cursor,
        f"SELECT org_id, sha256, size, storage_name FROM {EvidenceFile._meta.db_table} ORDER BY id",  # noqa: S608 - table names from model metadata
    )
    keys = _rows(cursor, f"SELECT * FROM {SigningKey._meta.db_table} ORDER BY id")  # noqa: S608 - table names from model metadata
    key_ids = {k["id"]: k["key_id"] for k in keys}
    checkpoints = _rows(
        cursor,
        "SELECT org_id, size, root, key_id, reason, created_at, signed_note "  # noqa: S608 - table names from model metadata
        f"FROM {Checkpoint._meta.db_table} ORDER BY org_id, size, id",
    )
    catalogue = Catalogue()
    for org_id, slug in sorted(slugs.items(), key=lambda item: item[1]):
        own = [c for c in checkpoints if c["org_id"] == org_id]
        catalogue.organizations.append(
            {
                "slug": slug,
                "log_size": heads.get(org_id, 0),
                "checkpoints": len(own),
                "latest_checkpoint_size": own[-1]["size"] if own else None,
            }
        )
    for f in files:
        catalogue.files.append({**f, "org": slugs.get(f.pop("org_id"))})
    for k in keys:
        k["org"] = slugs.get(k.pop("org_id"))
        k.pop("id")
        catalogue.keys.append(k)
    for c in checkpoints:
        c["org"] = slugs.get(c.pop("org_id"))
        c["key_id"] = key_ids.get(c["key_id"])
        catalogue.checkpoints.append(c)
    catalogue.migrations = sorted(
        f"{r['app']}.{r['name']}" for r in _rows(cursor, "SELECT app, name FROM django_migrations")
    )
    return catalogue


# --- SQLite -------------------------------------------------------------------------------------


def sqlite_path() -> Path:
    return Path(str(connection.settings_dict["NAME"]))


def snapshot_sqlite(dest: Path) -> tuple[Catalogue, dict[str, Any]]:
    """Copy the live database with SQLite's online backup API (a consistent copy even while
    others write: the copy restarts if a writer changes a page it already copied)."""
    connection.ensure_connection()
    source = connection.connection
    copy = sqlite3.connect(dest)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        catalogue = read_catalogue(copy.cursor())
        (check,) = copy.execute("PRAGMA integrity_check").fetchone()
    finally:
        copy.close()
    if check != "ok":
        raise BackupError(f"The database copy failed SQLite's integrity check: {check}.")
    return catalogue, {"tool": f"sqlite {sqlite3.sqlite_version}"}


def load_sqlite(snapshot: Path) -> None:
    """Write the snapshot over the (empty) target database in one step of the backup API: the
    destination changes in a single transaction, so it is whole or untouched."""
    target = sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    connections.close_all()
    source = sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)
    dest = sqlite3.connect(target)
    try:
        source.backup(dest)
    finally:
        dest.close()
        source.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed (it comes with the PostgreSQL client): install the "
            "package postgresql-client of the server's major version or newer, e.g. "
            "`apt-get install postgresql-client-15`, and run the command again."
        )
    return found


def _major(tool: str) -> tuple[int, str]:
    text = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout  # noqa: S603 - fixed argv, no shell
    found = re.search(r"(\d+)(?:\.(\d+))?", text)
    if not found:
        raise BackupError(f"Cannot tell the version of {tool} from {text.strip()!r}.")
    return int(found[1]), found[0]


def _server_major() -> int:
    connection.ensure_connection()
    return int(connection.pg_version) // 10000  # type: ignore[attr-defined]


def _pg_args_env() -> tuple[list[str], dict[str, str]]:
    """Connection options for the PostgreSQL tools; the password goes by environment only."""
    s = connection.settings_dict
    args = ["--no-password"]
    if s.get("HOST"):
        args += ["--host", str(s["HOST"])]
    if s.get("PORT"):
        args += ["--port", str(s["PORT"])]
    if s.get("USER"):
        args += ["--username", str(s["USER"])]
    env = {**os.environ}
    if s.get("PASSWORD"):
        env["PGPASSWORD"] = str(s["PASSWORD"])
    options = s.get("OPTIONS") or {}
    for option, variable in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT")):
        if options.get(option):
            env[variable] = str(options[option])
    return args, env


def _run(argv: list[str], env: dict[str, str], what: str, **kwargs: Any) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603 - fixed argv, no shell
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        detail = lines[0] if lines else f"exit code {done.returncode}"
        raise BackupError(f"{what} failed: {detail}")


def snapshot_postgres(dest: Path) -> tuple[Catalogue, dict[str, Any]]:
    """pg_dump (custom format) of an exported snapshot, and the catalogue read in a transaction
    on that same snapshot: the dump and the list of files agree to the row."""
    pg_dump = _tool("pg_dump")
    client, client_version = _major(pg_dump)
    server = _server_major()
    if client < server:
        raise BackupError(
            f"pg_dump {client_version} cannot dump a PostgreSQL {server} server: install "
            f"postgresql-client-{server} (or newer) and run the command again."
        )
    args, env = _pg_args_env()
    if connection.in_atomic_block:
        raise BackupError("A backup cannot run inside another transaction.")
    connection.set_autocommit(False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cursor.fetchone()
            _run(
                [
                    pg_dump,
                    *args,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    "--file",
                    str(dest),
                    "--dbname",
                    str(connection.settings_dict["NAME"]),
                ],
                env,
                "pg_dump",
            )
            catalogue = read_catalogue(cursor)
    finally:
        connection.rollback()
        connection.set_autocommit(True)
    os.chmod(dest, 0o600)
    return catalogue, {"tool": f"pg_dump {client_version}", "server_major": server}


def check_pg_restore(made_with: str) -> None:
    """pg_restore reads archives of its own major version and older ones only."""
    _tool("psql")
    restore_major, restore_version = _major(_tool("pg_restore"))
    found = re.search(r"(\d+)", made_with)
    dump_major = int(found[1]) if found else 0
    if restore_major < dump_major:
        raise BackupError(
            f"The backup's database was dumped by {made_with}; pg_restore {restore_version} "
            f"cannot read it: install postgresql-client-{dump_major} (or newer)."
        )


def load_postgres(dump: Path, work: Path) -> None:
    """pg_restore's SQL, piped into psql in ONE transaction together with the removal of the
    (empty) target's tables: the target ends up as the backup, or unchanged. The schema,
    triggers and functions are the dump's own, exactly as the migrations made them."""
    args, env = _pg_args_env()
    tables = [t for t in connection.introspection.table_names() if t]
    drops = work / "drop-empty-tables.sql"
    quote = connection.ops.quote_name
    drops.write_text(
        "".join(f"DROP TABLE IF EXISTS {quote(t)} CASCADE;\n" for t in tables), encoding="utf-8"
    )
    connections.close_all()
    pg_restore = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--file=-",
            str(dump),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        _run(
            [
                _tool("psql"),
                *args,
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--single-transaction",
                "--dbname",
                str(connection.settings_dict["NAME"]),
                "--file",
                str(drops),
                "--file=-",
            ],
            env,
            "Loading the database (psql)",
            stdin=pg_restore.stdout,
        )
    finally:
        assert pg_restore.stdout is not None and pg_restore.stderr is not None
        pg_restore.stdout.close()
        failure = pg_restore.stderr.read().decode(errors="replace").strip()
        pg_restore.stderr.close()
        code = pg_restore.wait()
    if code != 0:
        raise BackupError(f"pg_restore failed: {failure.splitlines()[0] if failure else code}")
