"""Sealed secrets: AES-256-GCM under a 0600 key file outside the database, bound to their
row, and a clear refusal (never a wrong value) when they cannot be opened."""

import stat

import pytest

from offboard.core.sealing import SealedValueUnavailable, key_path, seal, unseal

pytestmark = pytest.mark.offline  # files and cryptography: no database


def test_a_value_opens_in_its_own_context_only():
    sealed = seal(b"whsec_secret", context="inbound-endpoint:1:abc")

    assert unseal(sealed, context="inbound-endpoint:1:abc") == b"whsec_secret"
    assert b"whsec_secret" not in sealed.encode()
    with pytest.raises(SealedValueUnavailable, match="altered or moved"):
        unseal(sealed, context="inbound-endpoint:2:abc")


def test_the_key_is_made_once_in_a_file_only_its_owner_reads():
    first = seal(b"a", context="x")
    second = seal(b"a", context="x")

    assert first != second  # a fresh nonce each time
    assert stat.S_IMODE(key_path().stat().st_mode) == 0o600
    assert first.split(":")[1] == second.split(":")[1]  # one key
    assert [p.name for p in key_path().parent.iterdir() if "sealing" in p.name] == ["sealing.key"]


def test_an_altered_value_is_refused():
    sealed = seal(b"value", context="x")
    version, key_id, payload = sealed.split(":")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]

    with pytest.raises(SealedValueUnavailable):
        unseal(f"{version}:{key_id}:{flipped}", context="x")
    with pytest.raises(SealedValueUnavailable, match="not in a form"):
        unseal("plain text", context="x")


def test_without_its_key_a_value_is_refused_naming_the_file(settings, tmp_path):
    sealed = seal(b"value", context="x")
    key_path().unlink()

    with pytest.raises(SealedValueUnavailable, match="Cannot read the sealing key"):
        unseal(sealed, context="x")

    seal(b"other", context="x")  # a new key
    with pytest.raises(SealedValueUnavailable, match="sealed under key"):
        unseal(sealed, context="x")
