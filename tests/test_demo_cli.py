"""The demo from the command line and its reset: each needs a database of its own (a
transactional test), so they live apart from tests/test_demo.py's shared, loaded demo."""

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

    result = CliRunner().invoke(app, ["demo"])

    assert result.exit_code == 0, result.output
    assert "offboard-demo" in result.stdout
    for username in ("alice", "bob", "carol", "dave", "erin", "oscar"):
        assert username in result.stdout
    assert "closed" in result.stdout
