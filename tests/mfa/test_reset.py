"""A member who lost every factor: an admin resets them at the command line (recorded); the
web offers no such thing, so a stolen admin session cannot strip a colleague's factors."""

import dataclasses

import pytest
from typer.testing import CliRunner

from offboard.cli import app
from offboard.core.errors import PermissionDenied
from offboard.ledger.models import LedgerEntry
from offboard.mfa.models import RecoveryCode, TotpDevice
from offboard.mfa.services import reset_member_factors
from tests.mfa.conftest import enrol_totp


@pytest.fixture(autouse=True)
def _no_ambient_identity(monkeypatch):
    monkeypatch.delenv("OFFBOARD_ORG", raising=False)
    monkeypatch.delenv("OFFBOARD_USER", raising=False)


def test_an_admin_resets_a_members_factors_at_the_command_line(cast, timeline):
    enrol_totp(cast["bob"], timeline)
    result = CliRunner().invoke(app, ["user", "reset-factors", "bob", "--org", "acme"])
    assert result.exit_code == 0, result.output
    assert "Removed the second factors of 'bob'" in result.output
    assert not TotpDevice.objects.exists() and not RecoveryCode.objects.exists()
    event = LedgerEntry.objects.get(type="member.factor_removed")
    assert event.data["factor"] == "all" and event.data["recovery_codes"] == 10
    assert event.actor["auth"] == "cli" and event.actor["username"] == "alice"


def test_the_reset_is_not_for_the_web_nor_for_a_manager(cast, timeline):
    from offboard.accounts.selectors import get_member

    enrol_totp(cast["bob"], timeline)
    bob = get_member(cast["alice"].org, cast["bob"].user.pk)
    with pytest.raises(PermissionDenied, match="command line"):
        reset_member_factors(
            actor=dataclasses.replace(cast["alice"], auth_method="session"), membership=bob
        )
    with pytest.raises(PermissionDenied):
        reset_member_factors(
            actor=dataclasses.replace(cast["carol"], auth_method="cli"), membership=bob
        )
    assert TotpDevice.objects.filter(confirmed_at__isnull=False).count() == 1
