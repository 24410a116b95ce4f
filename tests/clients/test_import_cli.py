"""`offboard client import FILE.csv [--dry-run]`: each problem as FILE:LINE: column: message
and exit 1 with nothing written; a valid file imported, or only checked with --dry-run."""

import json

import pytest
from typer.testing import CliRunner

from offboard.cli import app
from offboard.clients.models import Client
from tests.clients.test_import import CLIENT, CONTACT, CONTRACT, file_of, written


@pytest.fixture(autouse=True)
def _no_ambient_identity(monkeypatch):
    for name in ("OFFBOARD_ORG", "OFFBOARD_USER"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def valid(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text(file_of(CLIENT, CONTACT, CONTRACT), encoding="utf-8-sig")
    return path


def test_a_valid_file_is_imported(alice, valid):
    before = written()
    result = run("client", "import", str(valid))
    assert result.exit_code == 0, result.output
    assert f"Imported 1 client, 1 contact and 1 contract from {valid}." in result.stdout
    assert written() == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 4)


def test_a_dry_run_checks_and_writes_nothing(alice, valid):
    before = written()
    result = run("client", "import", str(valid), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would add 1 client, 1 contact and 1 contract; nothing was written" in result.stdout
    assert written() == before


def test_problems_are_printed_with_file_line_and_column_and_nothing_is_written(alice, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        file_of(CLIENT, CONTACT.replace("primary", "boss"), CONTRACT.replace("2025-01-01", "x"))
    )
    before = written()
    result = run("client", "import", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:3: role: 'boss' is not one of: primary, legal, finance, technical",
        f"{path}:4: start_date: must be a date written YYYY-MM-DD, e.g. 2026-11-30",
        f"error: {path} has 2 problems; nothing was imported",
    ]
    assert written() == before
    assert run("client", "import", str(path), "--dry-run").exit_code == 1


def test_json_output_lists_the_problems(alice, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"record,client\nclient,Caf\xe9\n")
    result = run("client", "import", str(path), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        {
            "line": 2,
            "column": "client",
            "message": "is not UTF-8 text: save the file as “CSV UTF-8 (comma delimited)”, or "
            "with the encoding set to UTF-8",
        }
    ]
    assert not Client.objects.exists()


def test_only_an_admin_may_import(cast, valid):
    before = written()
    result = run("client", "import", str(valid), "--as", "bob", "--dry-run")
    assert result.exit_code == 1
    assert "may not do this (clients.import); it needs one of: admin" in result.stderr
    assert run("client", "import", str(valid), "--as", "bob").exit_code == 1
    assert written() == before
