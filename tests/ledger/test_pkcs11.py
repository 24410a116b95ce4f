"""Checkpoint keys on a PKCS#11 token (SoftHSM2, decision 0033): made there, never extractable,
signing notes that verify exactly like file keys' — and a token that does not work signs nothing."""

import json
from pathlib import Path
from typing import Any

import pkcs11 as p11
import pytest
from django.test import Client
from typer.testing import CliRunner

from offboard.cli import app
from offboard.core.actor import Actor
from offboard.ledger import keys, pkcs11, services
from offboard.ledger.models import Checkpoint, SigningKey
from offboard.ledger.note import Verifier, key_id, open_checkpoint, parse_note
from tests.softhsm import SoftHSM, on_token, softhsm

__all__ = ["on_token", "softhsm"]

runner = CliRunner()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def key_files(settings: Any) -> list[Path]:
    directory = Path(settings.OFFBOARD_KEY_DIR)
    return sorted(directory.rglob("*.key")) if directory.exists() else []


def test_a_checkpoint_is_signed_on_the_token_and_verifies_like_a_file_keys(
    on_token: SoftHSM, alice: Actor, settings: Any
) -> None:
    key = keys.active_key(alice.org)
    assert key.backend == "pkcs11" and key.private_key_path == ""
    assert key.location.startswith("pkcs11:token=offboard;id=%")
    assert key_files(settings) == []  # nothing of it on disk

    checkpoint = services.issue_checkpoint(actor=alice)

    # The same signed-note format and key id derivation as file keys: name ‖ 0x0A ‖ 0x01 ‖ key.
    verifier = Verifier.from_verifier_key(key.verifier_key)
    assert key_id(key.name, verifier.public_key.public_bytes_raw()).hex() == key.key_id
    [signature] = parse_note(checkpoint.signed_note).signatures
    assert (signature.name, signature.key_id.hex()) == (key.name, key.key_id)
    body = open_checkpoint(checkpoint.signed_note, [verifier], origin=keys.origin(alice.org))
    assert body.size == checkpoint.size
    result = cli("ledger", "verify", "--org", "acme")
    assert result.exit_code == 0, result.output
    assert "acme: OK" in result.output


def test_the_private_key_never_leaves_the_token(on_token: SoftHSM, alice: Actor) -> None:
    key = keys.active_key(alice.org)
    assert keys.custody(key) == {
        "extractable": False,
        "sensitive": True,
        "never_extractable": True,
        "always_sensitive": True,
        "local": True,
    }
    config = keys.token_config()
    assert config is not None
    location = pkcs11.KeyLocation.parse(key.location)
    with pkcs11.session(config) as opened:
        private = opened.get_key(object_class=p11.ObjectClass.PRIVATE_KEY, id=location.key_id)
        with pytest.raises(p11.AttributeSensitive):
            private[p11.Attribute.VALUE]  # the token refuses to read it out
    with pytest.raises(keys.KeyUnavailable, match="its private half cannot be read out"):
        keys.load_signer(key)


def test_rotation_makes_the_new_key_on_the_token_and_retires_the_old(
    on_token: SoftHSM, alice: Actor, settings: Any
) -> None:
    old = keys.active_key(alice.org)
    new = services.rotate_signing_key(actor=alice)
    old.refresh_from_db()
    assert old.retired_at is not None and new.retired_at is None
    assert new.backend == "pkcs11" and new.location != old.location
    assert (
        pkcs11.KeyLocation.parse(new.location).key_id
        != pkcs11.KeyLocation.parse(old.location).key_id
    )
    rotated = Checkpoint.objects.get(org=alice.org, reason="key_rotated")
    assert rotated.key == new
    assert open_checkpoint(rotated.signed_note, [Verifier.from_verifier_key(new.verifier_key)])
    assert key_files(settings) == []
    result = cli("ledger", "rotate-key", "--org", "acme", "--as", "alice")
    assert result.exit_code == 0, result.output
    assert SigningKey.objects.filter(org=alice.org, backend="pkcs11").count() == 3
    assert cli("ledger", "verify", "--org", "acme").exit_code == 0


def test_a_wrong_pin_signs_nothing_and_says_what_to_check(
    on_token: SoftHSM, alice: Actor, settings: Any, tmp_path: Path
) -> None:
    keys.active_key(alice.org)
    before = Checkpoint.objects.count()
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("not-the-pin\n")
    settings.OFFBOARD_PKCS11_PIN_FILE = str(wrong)
    try:
        result = cli("ledger", "checkpoint", "--org", "acme", "--as", "alice")
        assert result.exit_code == 1
        assert "the token 'offboard' refused the PIN: check OFFBOARD_PKCS11_PIN_FILE" in (
            result.stderr
        )
        assert "not-the-pin" not in result.output and on_token.pin not in result.output
        assert Checkpoint.objects.count() == before

        status, body = ready()
        assert status == 503
        assert (
            "1 on the PKCS#11 token, which cannot be used"
            in (body["checks"]["signing_keys"]["problem"])
        )
        assert "not-the-pin" not in json.dumps(body) and "/" not in json.dumps(
            body["checks"]["signing_keys"]
        )
    finally:
        settings.OFFBOARD_PKCS11_PIN_FILE = str(on_token.pin_file)
    assert ready()[0] == 200  # the right PIN again: ready, and signing works
    assert services.issue_checkpoint(actor=alice).key.backend == "pkcs11"


def test_a_missing_token_or_module_makes_no_key_and_no_checkpoint(
    on_token: SoftHSM, alice: Actor, settings: Any
) -> None:
    keys.active_key(alice.org)
    settings.OFFBOARD_PKCS11_TOKEN = "hsm-in-the-other-rack"
    with pytest.raises(keys.KeyUnavailable) as made:
        services.rotate_signing_key(actor=alice)
    assert "no token labelled 'hsm-in-the-other-rack'" in str(made.value)
    assert "check that the HSM is connected and OFFBOARD_PKCS11_TOKEN" in str(made.value)
    assert SigningKey.objects.filter(org=alice.org).count() == 1  # the rotation rolled back
    assert SigningKey.objects.get(org=alice.org).retired_at is None

    settings.OFFBOARD_PKCS11_TOKEN = on_token.label
    settings.OFFBOARD_PKCS11_MODULE = "/usr/lib/nowhere/libhsm.so"
    before = Checkpoint.objects.count()
    result = cli("ledger", "checkpoint", "--org", "acme", "--as", "alice")
    assert result.exit_code == 1
    assert "the PKCS#11 module /usr/lib/nowhere/libhsm.so does not exist" in result.stderr
    assert Checkpoint.objects.count() == before

    settings.OFFBOARD_PKCS11_MODULE = ""
    with pytest.raises(keys.KeyUnavailable, match="OFFBOARD_PKCS11_MODULE is not set"):
        services.issue_checkpoint(actor=alice)
    assert Checkpoint.objects.count() == before


def test_a_key_gone_from_the_token_is_named_and_signs_nothing(
    on_token: SoftHSM, alice: Actor
) -> None:
    key = keys.active_key(alice.org)
    config = keys.token_config()
    assert config is not None
    location = pkcs11.KeyLocation.parse(key.location)
    with pkcs11.session(config) as opened:
        opened.get_key(object_class=p11.ObjectClass.PRIVATE_KEY, id=location.key_id).destroy()
    before = Checkpoint.objects.count()
    with pytest.raises(keys.KeyUnavailable) as failed:
        services.issue_checkpoint(actor=alice)
    assert f"no private key with id {location.key_id.hex()} on token 'offboard'" in str(
        failed.value
    )
    assert Checkpoint.objects.count() == before
    status, body = ready()
    assert status == 503 and body["checks"]["signing_keys"]["ok"] is False


def test_a_token_key_that_is_not_the_recorded_key_signs_nothing(
    on_token: SoftHSM, alice: Actor, mallory: Actor
) -> None:
    """Pointing a key's row at another key on the token (an admin with the database) gives a
    signature that does not verify with the published key: refused before it is stored."""
    ours, theirs = keys.active_key(alice.org), keys.active_key(mallory.org)
    SigningKey.objects.filter(pk=ours.pk).update(location=theirs.location)
    with pytest.raises(keys.KeyUnavailable, match="does not match signing key"):
        services.issue_checkpoint(actor=alice)
    assert not Checkpoint.objects.filter(org=alice.org).exists()


def test_no_pin_configured_is_a_clear_error(
    on_token: SoftHSM, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.OFFBOARD_PKCS11_PIN_FILE = ""
    monkeypatch.delenv("OFFBOARD_PKCS11_PIN", raising=False)
    with pytest.raises(keys.KeyUnavailable, match="set OFFBOARD_PKCS11_PIN_FILE to a file"):
        keys.token_config()
    monkeypatch.setenv("OFFBOARD_PKCS11_PIN", on_token.pin)
    config = keys.token_config()
    assert config is not None and config.pin == on_token.pin
    assert on_token.pin not in repr(config)
    settings.OFFBOARD_PKCS11_PIN_FILE = "/nonexistent/pin"
    with pytest.raises(keys.KeyUnavailable, match="Cannot read the PKCS#11 PIN file /nonexist"):
        keys.token_config()


def ready() -> tuple[int, dict[str, Any]]:
    response = Client().get("/health/ready")
    return response.status_code, response.json()
