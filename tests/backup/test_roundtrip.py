"""Backup and restore end to end, on the database of the pass (SQLite, then PostgreSQL): an
organization with a closed case, evidence files and checkpoints is backed up, restored into
fresh databases and file stores by `offboard restore` in a subprocess, and must come back equal
(row counts, ledger heads, file hashes), verify, and stay consistent with the checkpoint signed
before the backup. Damaged files and wrong keys write nothing; a non-empty target is refused.

The source data is made once for the module, committed (pg_dump reads it from another
process), and removed at the end."""

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from offboard.backup.crypto import BackupKey

# Every test asks for the test database, so that pytest-django sets it up even when this module
# runs alone; the module's data itself is committed before the first test's transaction.
pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
KEY_BYTES = bytes(range(32))
CAST = {"alice": "admin", "bob": "manager", "carol": "manager", "dave": "finance"}


def _build(where: Path) -> dict[str, Any]:
    """Acme with a closed case (evidence, approvals, a closure checkpoint), then more events, a
    checkpoint, and one event after it; Globex with a few events of its own."""
    from offboard.accounts.services import create_organization, create_user
    from offboard.cases.services import open_case
    from offboard.clients.services import add_contact, create_client, create_contract
    from offboard.core.actor import Actor
    from offboard.ledger.checkpoints import issue_checkpoint
    from offboard.playbooks.services import install_builtin_playbooks
    from tests.factories import close_with_approvals, settle_everything, upload

    acme = create_organization(slug="acme", name="Acme Digital")
    cast = {
        name: Actor.from_membership(
            create_user(actor=None, org=acme, username=name, role=role, password="correct horse 1"),
            auth_method="test",
        )
        for name, role in CAST.items()
    }
    alice = cast["alice"]
    playbook = {v.playbook.service_type: v for v in install_builtin_playbooks(actor=alice)}
    client = create_client(actor=alice, name="Northwind Traders")
    add_contact(actor=alice, client=client, name="Nina", email="nina@nw.example", role="primary")
    contract = create_contract(
        actor=alice,
        client=client,
        reference="NW-1",
        service_type="marketing_agency",
        fee_type="retainer",
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2026, 12, 31),
        notice_period_days=30,
        data_return_window_days=30,
    )
    case = open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="non_renewal",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbook["marketing_agency"],
    )
    close_with_approvals(settle_everything(case, cast), cast)
    upload(alice, b"%PDF-1.4 a second file\n", "second.pdf")
    from django.db import transaction

    with transaction.atomic():
        signed = issue_checkpoint(org=acme, reason="requested")
    create_client(actor=alice, name="Late Client Ltd")  # the log outgrows its last checkpoint
    globex = create_organization(slug="globex", name="Globex Partners")
    mallory = create_user(actor=None, org=globex, username="mallory", role="admin")
    upload(Actor.from_membership(mallory, auth_method="test"), b"globex's own\n", "g.txt")
    return {"checkpoint": signed.signed_note, "checkpoint_size": signed.size}


def _fingerprint(cursor: Any, tables: list[str]) -> dict[str, Any]:
    """What must come back equal: every table's row count, each log's head and leaf hashes,
    the evidence rows' hashes."""
    counts = {}
    for table in tables:
        cursor.execute(f'SELECT COUNT(*) FROM "{table}"')
        counts[table] = cursor.fetchone()[0]
    cursor.execute(
        "SELECT o.slug, h.size FROM ledger_loghead h JOIN accounts_organization o ON o.id = h.org_id"
    )
    heads = sorted(cursor.fetchall())
    cursor.execute('SELECT leaf_hash FROM ledger_entry ORDER BY org_id, "index"')
    leaves = hashlib.sha256(b"".join(bytes(r[0]) for r in cursor.fetchall())).hexdigest()
    cursor.execute("SELECT sha256 FROM evidence_evidencefile ORDER BY sha256")
    files = [r[0] for r in cursor.fetchall()]
    return {"counts": counts, "heads": heads, "leaves": leaves, "files": files}


def _stored_hashes(files_dir: Path) -> list[str]:
    if not files_dir.exists():
        return []
    return sorted(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in files_dir.rglob("*") if p.is_file()
    )


class Install:
    """A target installation for a subprocess: its own database and var/ directory."""

    def __init__(self, name: str, base: Path, pg: dict[str, Any] | None) -> None:
        self.var = base / name
        self.var.mkdir()
        self.pg = pg
        self.db_name = f"{pg['NAME']}_{name}" if pg else ""
        if pg:
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            _pg_admin(f'CREATE DATABASE "{self.db_name}"')

    @property
    def files(self) -> Path:
        return self.var / "files"

    @property
    def sqlite(self) -> Path:
        return self.var / "offboard.sqlite3"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OFFBOARD_", "DATABASE_URL", "DJANGO_"))
        }
        env.update(OFFBOARD_DEBUG="true", OFFBOARD_VAR_DIR=str(self.var))
        if self.pg:
            env["DATABASE_URL"] = _pg_url(self.pg, self.db_name)
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "offboard", *args],
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "offboard", *args],
            env=self.env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def tables(self) -> list[str]:
        with self.cursor() as cursor:
            if self.pg:
                cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            else:
                cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return sorted(r[0] for r in cursor.fetchall())

    def cursor(self) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def opened() -> Any:
            if self.pg:
                import psycopg

                with psycopg.connect(_pg_url(self.pg, self.db_name)) as db, db.cursor() as c:
                    yield c
            else:
                db = sqlite3.connect(f"file:{self.sqlite}?mode=ro", uri=True)
                try:
                    yield db.cursor()
                finally:
                    db.close()

        return opened()

    def fingerprint(self, tables: list[str]) -> dict[str, Any]:
        with self.cursor() as cursor:
            return _fingerprint(cursor, tables)

    def drop(self) -> None:
        if self.pg:
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


def _pg_url(pg: dict[str, Any], name: str) -> str:
    user = pg.get("USER") or "postgres"
    return f"postgres://{user}@{pg.get('HOST') or '127.0.0.1'}:{pg.get('PORT') or 5432}/{name}"


def _pg_admin(sql: str) -> None:
    import psycopg
    from django.db import connection

    with psycopg.connect(_pg_url(connection.settings_dict, "postgres"), autocommit=True) as db:
        db.execute(sql)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The source data (committed), three in-process backups of it — before the data (a
    migrated, empty install), without and with the private keys — and the targets' base dir."""
    from django.core.management import call_command
    from django.db import connection
    from django.test import override_settings

    from offboard.backup.create import create_backup
    from offboard.ledger import triggers

    base = tmp_path_factory.mktemp("backup")
    source = base / "source"
    key = BackupKey(1, KEY_BYTES, "key file test.key")
    (base / "backup.key").write_bytes(KEY_BYTES)
    overrides = override_settings(
        MEDIA_ROOT=str(source / "files"),
        OFFBOARD_KEY_DIR=source / "keys",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        OFFBOARD_TSA_URLS=[],
        OFFBOARD_TSA_ON_COMMIT="off",
        OFFBOARD_RECEIPT_ON_COMMIT="off",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    with django_db_blocker.unblock(), overrides:
        name = str(connection.settings_dict["NAME"])
        assert "memory" in name or Path(name).name.startswith("test_"), (
            f"not a test database: {name}"
        )
        try:
            empty = create_backup(out=base / "empty.obk", key=key)
            facts = _build(source)
            plain = create_backup(out=base / "acme.obk", key=key)
            with_keys = create_backup(
                out=base / "acme-keys.obk", key=key, include_private_keys=True
            )
            tables = sorted(connection.introspection.django_table_names(only_existing=True))
            with connection.cursor() as cursor:
                expected = _fingerprint(cursor, tables)
            pg = dict(connection.settings_dict) if connection.vendor == "postgresql" else None
            # The key directory is gone from "this machine" from now on: a restore without the
            # private keys cannot find them anywhere.
            (source / "keys").rename(source / "keys-in-custody")
            yield {
                "base": base,
                "key_file": str(base / "backup.key"),
                "empty": Path(empty["path"]),
                "plain": Path(plain["path"]),
                "with_keys": Path(with_keys["path"]),
                "expected": expected,
                "tables": tables,
                "stored": _stored_hashes(source / "files"),
                "pg": pg,
                **facts,
            }
        finally:
            if connection.vendor == "sqlite":  # DELETE there, which the triggers refuse
                triggers.remove(connection)
                try:
                    call_command("flush", interactive=False, verbosity=0)
                finally:
                    triggers.install(connection)
            else:  # TRUNCATE, which row triggers do not see
                call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def restored(world):
    """`offboard restore` (a subprocess) of the backup without private keys into a fresh, empty
    installation: no database tables at all, no files."""
    target = Install("t1", world["base"], world["pg"])
    done = target.run("restore", str(world["plain"]), "--key-file", world["key_file"], "--json")
    yield target, json.loads(done.stdout), done.stderr
    target.drop()


def test_the_restored_installation_equals_the_backed_up_one(world, restored):
    target, report, _ = restored
    assert report["ok"] and report["restored"], report
    assert target.fingerprint(world["tables"]) == world["expected"]
    assert world["expected"]["counts"]["ledger_entry"] > 50
    assert _stored_hashes(target.files) == world["stored"]
    assert sorted(set(world["expected"]["files"])) == sorted(set(world["stored"]))
    assert {o["slug"]: o["events"] for o in report["organizations"]} == dict(
        world["expected"]["heads"]
    )


def test_the_latest_checkpoint_before_the_backup_is_consistent_with_the_restored_log(
    world, restored
):
    _, report, _ = restored
    acme = next(o for o in report["organizations"] if o["slug"] == "acme")
    assert acme["latest_checkpoint_size"] == world["checkpoint_size"]
    assert acme["events"] > world["checkpoint_size"]  # a real consistency proof, not equality
    assert acme["latest_checkpoint_consistent"] is True
    assert acme["checkpoints"] >= 2  # the closure's and the one requested after


def test_offboard_ledger_verify_passes_on_the_restored_installation(restored):
    target, _, _ = restored
    done = target.run("ledger", "verify", "--json")
    verified = json.loads(done.stdout)
    assert verified["ok"] is True
    assert [o["org"] for o in verified["organizations"]] == ["acme", "globex"]
    assert verified["organizations"][0]["files"] >= 1  # evidence files events refer to, read


def test_a_restore_without_private_keys_says_the_signing_keys_must_be_rotated(restored):
    _, report, stderr = restored
    assert any(
        "the private half of signing key" in w and "offboard ledger rotate-key --org acme" in w
        for w in report["warnings"]
    ), report["warnings"]
    assert "warning: acme: the private half of signing key" in stderr


def test_a_backup_with_private_keys_restores_them_into_a_migrated_empty_install(world):
    """Restored over a migrated but empty installation (made by restoring a backup taken before
    any data); the keys land in the new key directory, 0600, and the key rows follow them."""
    target = Install("t2", world["base"], world["pg"])
    try:
        first = target.run(
            "restore", str(world["empty"]), "--key-file", world["key_file"], "--json"
        )
        assert json.loads(first.stdout)["organizations"] == []
        assert "django_migrations" in target.tables()

        done = target.run(
            "restore", str(world["with_keys"]), "--key-file", world["key_file"], "--json"
        )
        report = json.loads(done.stdout)
        assert report["ok"] and report["key_files"] >= 2, report
        assert not [w for w in report["warnings"] if "signing key" in w], report["warnings"]
        assert target.fingerprint(world["tables"]) == world["expected"]
        keys = sorted((target.var / "keys").glob("acme-*.key"))
        assert len(keys) == 1 and keys[0].stat().st_mode & 0o777 == 0o600
        with target.cursor() as cursor:
            cursor.execute(
                "SELECT k.private_key_path FROM ledger_signing_key k "
                "JOIN accounts_organization o ON o.id = k.org_id WHERE o.slug = 'acme'"
            )
            assert [r[0] for r in cursor.fetchall()] == [str(keys[0].resolve())]

        # A backup made by the CLI of the restored installation is whole and holds the same.
        again = world["base"] / "again.obk"
        target.run("backup", "--out", str(again), "--key-file", world["key_file"])
        from offboard.backup.restore import restore_backup

        checked = restore_backup(path=again, key=BackupKey(1, KEY_BYTES, "k"), check_only=True)
        assert checked.ok and not checked.restored
        public = checked.as_dict()  # what an auditor reads without restoring
        assert {k["org"] for k in public["keys"]} == {"acme", "globex"}
        assert world["checkpoint"] in [c["signed_note"] for c in public["checkpoints"]]
        assert [(o["slug"], o["log_size"]) for o in checked.organizations] == [
            tuple(h) for h in world["expected"]["heads"]
        ]
    finally:
        target.drop()


def _damaged_copies(world) -> dict[str, tuple[Path, str]]:
    blob = world["plain"].read_bytes()
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x40
    copies = {
        "flipped": (bytes(flipped), "is damaged at chunk"),
        "truncated": (blob[: len(blob) - 1000], "ends early or is damaged"),
    }
    out = {}
    for name, (data, message) in copies.items():
        path = world["base"] / f"{name}.obk"
        path.write_bytes(data)
        out[name] = (path, message)
    return out


def test_a_damaged_backup_or_a_wrong_key_writes_nothing(world):
    target = Install("t3", world["base"], world["pg"])
    wrong = world["base"] / "wrong.key"
    wrong.write_bytes(bytes(32))
    try:
        runs = {
            name: (target.start("restore", str(path), "--key-file", world["key_file"]), message)
            for name, (path, message) in _damaged_copies(world).items()
        }
        runs["wrong key"] = (
            target.start("restore", str(world["plain"]), "--key-file", str(wrong)),
            "does not open acme.obk: it was made with another key",
        )
        for name, (process, message) in runs.items():
            _, stderr = process.communicate(timeout=180)
            assert process.returncode == 1, (name, stderr)
            assert stderr.startswith("error: ") and message in stderr, (name, stderr)
            assert len(stderr.strip().splitlines()) == 1, stderr
        # Nothing written: no database file (or no table), no stored file, no key.
        assert not target.sqlite.exists() if not world["pg"] else target.tables() == []
        assert not target.files.exists() or not any(target.files.rglob("*"))
        assert not (target.var / "keys").exists() or not any((target.var / "keys").iterdir())
    finally:
        target.drop()


def test_a_restore_into_an_installation_with_data_is_refused_naming_it(world, django_db_blocker):
    """In this process, whose database holds the source data."""
    from django.test import override_settings

    from offboard.backup.database import BackupError
    from offboard.backup.restore import restore_backup

    before = None
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=str(world["base"] / "source" / "files")),
    ):
        from django.db import connection

        with connection.cursor() as cursor:
            before = _fingerprint(cursor, world["tables"])
        with pytest.raises(BackupError) as refused:
            restore_backup(path=world["plain"], key=BackupKey(1, KEY_BYTES, "k"))
        with connection.cursor() as cursor:
            assert _fingerprint(cursor, world["tables"]) == before
    message = refused.value.message
    assert message.startswith("Refusing to restore into an installation that is not empty")
    assert "organizations acme, globex" in message
    assert "ledger events" in message and "stored files under evidence/" in message


def test_only_the_files_of_an_empty_store_count_as_empty(world, tmp_path, django_db_blocker):
    """A store with objects is not empty even when the database is."""
    from django.test import override_settings

    from offboard.backup.restore import _stored_objects

    (tmp_path / "files" / "evidence" / "1").mkdir(parents=True)
    with override_settings(MEDIA_ROOT=str(tmp_path / "files")):
        assert "stored files under evidence/" in _stored_objects()
    with override_settings(MEDIA_ROOT=str(tmp_path / "nothing")):
        assert _stored_objects() == ""


def test_a_checkpoint_the_restored_log_does_not_extend_is_reported(world, django_db_blocker):
    """The consistency check itself: a validly signed checkpoint of another root fails it."""
    from offboard.accounts.models import Organization
    from offboard.backup.restore import checkpoint_problem
    from offboard.ledger.note import Checkpoint as Body
    from offboard.ledger.note import Signer, sign_note
    from offboard.ledger.verify import verify_log

    with django_db_blocker.unblock():
        acme = Organization.objects.get(slug="acme")
        root = verify_log(acme).root
        note = world["checkpoint"]
        body = Body.parse(note.split("\n\n")[0] + "\n")
        signer = Signer.generate(body.origin)
        forged = sign_note(Body(origin=body.origin, size=body.size, root=bytes(32)).text(), signer)
        genuine = sign_note(body.text(), signer)
        keys = [signer.verifier_key()]
        assert checkpoint_problem(acme, genuine, keys, root) is None
        assert checkpoint_problem(acme, forged, keys, root) == (
            f"checkpoint of size {body.size} is not consistent with the restored log"
        )
        assert "does not verify" in (checkpoint_problem(acme, genuine, [], root) or "")


def test_a_backup_from_the_other_engine_is_refused(world, tmp_path):
    """A SQLite backup offered to a PostgreSQL installation (or the reverse) says so."""
    other = "sqlite" if world["pg"] else "postgresql"
    from offboard.backup.database import BackupError
    from offboard.backup.restore import _check_compatible

    with pytest.raises(BackupError, match="moving between engines is not supported"):
        _check_compatible({"engine": other, "migrations": []}, "x.obk")
    with pytest.raises(BackupError, match="made by a newer Offboard"):
        _check_compatible(
            {"engine": "postgresql" if world["pg"] else "sqlite", "migrations": ["ledger.9999_x"]},
            "x.obk",
        )
    shutil.rmtree(tmp_path, ignore_errors=True)
