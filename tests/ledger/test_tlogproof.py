"""C2SP tlog-proof@v1: round trips, strict parsing, robustness, and offline verification."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from offboard.ledger.merkle import MerkleTree, leaf_hash
from offboard.ledger.note import Checkpoint, NoteError, Signer, key_id, sign_note
from offboard.ledger.tlogproof import (
    HEADER,
    TlogProof,
    TlogProofError,
    encode_tlog_proof,
    parse_tlog_proof,
    verify_tlog_proof,
)

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline

ORIGIN = "offboard.example/offboard/acme"
# A fixed test key (seed 00 01 .. 1f), so the hypothesis examples below are reproducible.
_SEED = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
SIGNER = Signer(ORIGIN, key_id(ORIGIN, _SEED.public_key().public_bytes_raw()), _SEED)
ENTRIES = [f"event {i}".encode() for i in range(13)]
TREE = MerkleTree(leaf_hash(e) for e in ENTRIES)
SIGNED_CHECKPOINT = sign_note(Checkpoint(ORIGIN, TREE.size, TREE.root()).text(), SIGNER)
PROOF_TEXT = encode_tlog_proof(5, TREE.inclusion_proof(5), SIGNED_CHECKPOINT)
WITH_EXTRA = encode_tlog_proof(5, TREE.inclusion_proof(5), SIGNED_CHECKPOINT, b"case C-2026-0042")


def test_encoding_follows_the_spec_layout():
    lines = PROOF_TEXT.split("\n")
    assert lines[0] == HEADER == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "index 5"
    assert lines[2:6] == [base64.b64encode(h).decode() for h in TREE.inclusion_proof(5)]
    assert lines[6] == ""
    assert "\n".join(lines[7:]) == SIGNED_CHECKPOINT
    assert WITH_EXTRA.split("\n")[1] == "extra " + base64.b64encode(b"case C-2026-0042").decode()
    assert WITH_EXTRA.split("\n")[2] == "index 5"


@pytest.mark.parametrize("text", [PROOF_TEXT, WITH_EXTRA])
def test_parse_and_encode_round_trip_exactly(text):
    proof = parse_tlog_proof(text)
    assert proof.index == 5
    assert proof.hashes == TREE.inclusion_proof(5)
    assert proof.checkpoint_text == SIGNED_CHECKPOINT
    assert proof.extra == (b"case C-2026-0042" if text is WITH_EXTRA else None)
    assert encode_tlog_proof(proof.index, proof.hashes, proof.checkpoint_text, proof.extra) == text
    assert parse_tlog_proof(text.encode()) == proof


def test_a_proof_with_no_hashes_for_a_one_entry_log():
    signed = sign_note(Checkpoint(ORIGIN, 1, leaf_hash(b"only")).text(), SIGNER)
    text = encode_tlog_proof(0, [], signed)
    assert text.startswith(f"{HEADER}\nindex 0\n\n{ORIGIN}\n1\n")
    assert parse_tlog_proof(text) == TlogProof(0, [], signed, None)
    verify_tlog_proof(text, leaf_hash(b"only"), [SIGNER.verifier()], origin=ORIGIN)


def test_verify_accepts_the_right_entry_and_returns_the_checkpoint():
    for index, entry in enumerate(ENTRIES):
        text = encode_tlog_proof(index, TREE.inclusion_proof(index), SIGNED_CHECKPOINT)
        checkpoint = verify_tlog_proof(text, leaf_hash(entry), [SIGNER.verifier()], origin=ORIGIN)
        assert (checkpoint.size, checkpoint.root) == (13, TREE.root())


def test_verify_rejects_another_entry_an_untrusted_key_and_another_log():
    verifiers = [SIGNER.verifier()]
    with pytest.raises(
        TlogProofError, match="entry 5 is not included in the checkpointed tree of size 13"
    ):
        verify_tlog_proof(PROOF_TEXT, leaf_hash(ENTRIES[6]), verifiers, origin=ORIGIN)
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        verify_tlog_proof(
            PROOF_TEXT, leaf_hash(ENTRIES[5]), [Signer.generate("PeterNeumann").verifier()]
        )
    with pytest.raises(NoteError, match=r"not 'offboard\.example/offboard/globex'"):
        verify_tlog_proof(
            PROOF_TEXT, leaf_hash(ENTRIES[5]), verifiers, origin="offboard.example/offboard/globex"
        )
    beyond = encode_tlog_proof(13, TREE.inclusion_proof(5), SIGNED_CHECKPOINT)
    with pytest.raises(TlogProofError, match="entry 13 is beyond the checkpoint's tree size 13"):
        verify_tlog_proof(beyond, leaf_hash(ENTRIES[5]), verifiers)


HASH64 = base64.b64encode(b"h" * 32).decode()
BODY = f"\n\n{SIGNED_CHECKPOINT}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no blank line before the checkpoint"),
        # Without its own blank line, the checkpoint's lines are read as proof hashes.
        (f"{HEADER}\nindex 5\n{HASH64}\n{SIGNED_CHECKPOINT}", "proof hash 2 is not valid base64"),
        (f"c2sp.org/tlog-proof@v2\nindex 5{BODY}", "first line must be 'c2sp.org/tlog-proof@v1'"),
        (f"{HEADER} \nindex 5{BODY}", "first line must be"),
        (f"{HEADER}{BODY}", "missing the 'index N' line"),
        (f"{HEADER}\n{HASH64}{BODY}", "missing the 'index N' line"),
        (f"{HEADER}\nindex 5\nextra aGk={BODY}", "proof hash 1 is not valid base64"),
        (f"{HEADER}\nextra {BODY}", "the extra line has no data"),
        (f"{HEADER}\nextra !!!!\nindex 5{BODY}", "extra data is not valid base64"),
        (f"{HEADER}\nindex 05{BODY}", "'05' is not a decimal number without leading zeros"),
        (f"{HEADER}\nindex -5{BODY}", "not a decimal number"),
        (f"{HEADER}\nindex  5{BODY}", "not a decimal number"),
        (f"{HEADER}\nindex {2**63}{BODY}", "not a decimal number"),
        (f"{HEADER}\nindex {'9' * 5000}{BODY}", "not a decimal number"),
        (f"{HEADER}\nindex 5\n{HASH64[:-4]}{BODY}", "proof hash 1 is 30 bytes, not 32"),
        (f"{HEADER}\nindex 5\n{HASH64[:-2]}h={BODY}", "proof hash 1 is not canonical base64"),
        (f"{HEADER}\nindex 5\n{HASH64}\n{HASH64[:-1]}{BODY}", "proof hash 2 is not valid base64"),
        (f"{HEADER}\nindex 5" + f"\n{HASH64}" * 64 + BODY, "more than 63 proof hashes"),
        (f"{HEADER}\r\nindex 5{BODY}", "first line must be"),
        (f"{HEADER}\nindex 5\n\nnot a note\n", "checkpoint: malformed note"),
        (f"{HEADER}\nindex 5{BODY}\n", "checkpoint: malformed note"),
        (f"{HEADER}\nindex 5{BODY}trailing\n", "checkpoint: malformed note"),
        (
            f"{HEADER}\nindex 5\n\n" + sign_note("hello\n", SIGNER),
            "checkpoint: checkpoint needs an origin",
        ),
    ],
)
def test_parse_refuses_malformed_proofs_with_a_clear_message(text, message):
    with pytest.raises(TlogProofError, match=message):
        parse_tlog_proof(text)


def test_encode_refuses_what_parse_would_refuse():
    with pytest.raises(TlogProofError, match="index -1 is out of range"):
        encode_tlog_proof(-1, [], SIGNED_CHECKPOINT)
    with pytest.raises(TlogProofError, match="32 bytes"):
        encode_tlog_proof(0, [b"short"], SIGNED_CHECKPOINT)
    with pytest.raises(TlogProofError, match="pass None to omit"):
        encode_tlog_proof(0, [], SIGNED_CHECKPOINT, b"")
    with pytest.raises(TlogProofError, match="checkpoint: malformed note"):
        encode_tlog_proof(0, [], "example.com/log\n1\n")


ALPHABET = st.sampled_from(list("\n =+/0123456789AQZagxz—-ç\r\x00\t")) | st.characters()


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from([PROOF_TEXT, WITH_EXTRA]),
    st.integers(min_value=0),
    st.sampled_from(["replace", "insert", "delete"]),
    ALPHABET,
)
def test_any_single_character_change_parses_to_something_else_or_raises_a_value_error(
    text, at, how, char
):
    original = parse_tlog_proof(text)
    i = at % len(text)
    mutated = {
        "replace": text[:i] + char + text[i + 1 :],
        "insert": text[:i] + char + text[i:],
        "delete": text[:i] + text[i + 1 :],
    }[how]
    if mutated == text:
        return
    try:
        proof = parse_tlog_proof(mutated)
    except ValueError:
        return
    # One text per proof: whatever still parses is a different proof that encodes back to it.
    assert proof != original
    assert (
        encode_tlog_proof(proof.index, proof.hashes, proof.checkpoint_text, proof.extra) == mutated
    )
