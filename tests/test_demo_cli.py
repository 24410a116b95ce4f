"""The demo from the command line and its reset: each needs a database of its own (a
transactional test), so they live apart from tests/test_demo.py's shared, loaded demo."""

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner


def test_reset_erases_the_database_and_loads_the_demo_again(transactional_db):
    from offboard.accounts.models import Organization
    from offboard.accounts.services import create_organization
    from offboard.cases.models import OffboardingCase
    from offboard.demo import load_demo

    load_demo()
    create_organization(slug="scratch", name="Scratch")

    reloaded = load_demo(reset=True)

    assert reloaded["created"] is True
    assert list(Organization.objects.values_list("slug", flat=True)) == ["brightline"]
    assert OffboardingCase.objects.count() == 6


def test_offboard_demo_prints_the_logins(transactional_db, monkeypatch):
    from offboard.cli import app

    result = CliRunner().invoke(app, ["demo", "--port", "9000"])

    assert result.exit_code == 0, result.output
    assert "offboard-demo" in result.stdout
    for username in ("alice", "bob", "carol", "dave", "erin", "oscar"):
        assert username in result.stdout
    assert "closed" in result.stdout
    assert "Next: offboard serve --port 9000   (then sign in at http://127.0.0.1:9000/)" in (
        result.stdout
    )
    assert ":8000" not in result.stdout


def test_the_sign_in_address_follows_the_host_and_port_served():
    from offboard.cli.system import serve_hint

    assert serve_hint() == "Next: offboard serve   (then sign in at http://127.0.0.1:8000/)"
    assert serve_hint("0.0.0.0", 9000) == (
        "Next: offboard serve --host 0.0.0.0 --port 9000   (then sign in at http://0.0.0.0:9000/)"
    )


def test_make_run_passes_its_host_and_port_to_the_demo_it_loads():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    dry_run = subprocess.run(
        ["make", "-n", "run", "HOST=0.0.0.0", "PORT=9000"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert "offboard demo --host 0.0.0.0 --port 9000" in dry_run.stdout
