"""An installation that moves to an HSM rotates once: its history then holds checkpoints signed
with a file key and with a token key, and both `offboard ledger verify` and the offline pack
verifier accept it (decision 0033)."""

from pathlib import Path
from typing import Any

from django.db import transaction
from typer.testing import CliRunner

from offboard.cli import app
from offboard.core.actor import Actor
from offboard.ledger import keys, services
from offboard.ledger.models import Checkpoint
from offboard.packs.export import iter_pack, start_export
from tests.factories import close_with_approvals, settle_everything
from tests.softhsm import SoftHSM, softhsm

__all__ = ["softhsm"]

runner = CliRunner()


def test_a_file_then_token_history_verifies_in_the_ledger_and_in_the_pack(
    softhsm: SoftHSM, case: Any, cast: dict[str, Actor], settings: Any, tmp_path: Path
) -> None:
    alice = cast["alice"]
    file_key = keys.active_key(alice.org)
    assert file_key.backend == "file"
    settle_everything(case, cast)
    with transaction.atomic():
        services.issue_checkpoint(actor=alice)

    settings.OFFBOARD_PKCS11_MODULE = softhsm.module
    settings.OFFBOARD_PKCS11_TOKEN = softhsm.label
    settings.OFFBOARD_PKCS11_PIN_FILE = str(softhsm.pin_file)
    result = runner.invoke(app, ["ledger", "rotate-key", "--org", "acme", "--as", "alice"])
    assert result.exit_code == 0, result.output
    token_key = keys.active_key(alice.org)
    assert token_key.backend == "pkcs11" and token_key.pk != file_key.pk
    closed = close_with_approvals(case, cast)

    signed_by = set(Checkpoint.objects.filter(org=alice.org).values_list("key__backend", flat=True))
    assert signed_by == {"file", "pkcs11"}
    closure = Checkpoint.objects.get(case=closed, reason="case_closed")
    assert closure.key == token_key
    result = runner.invoke(app, ["ledger", "verify", "--org", "acme"])
    assert result.exit_code == 0, result.output
    assert "acme: OK" in result.output

    pack = tmp_path / "pack.zip"
    plan = start_export(actor=cast["erin"], case=closed)
    with pack.open("wb") as f:
        for chunk in iter_pack(plan):
            f.write(chunk)
    result = runner.invoke(app, ["verify", str(pack), "--key", token_key.verifier_key])
    assert result.exit_code == 0, result.output
    # The pack's checkpoint was signed on the token: the retired file key does not vouch for it.
    result = runner.invoke(app, ["verify", str(pack), "--key", file_key.verifier_key])
    assert result.exit_code == 1
