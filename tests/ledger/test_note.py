"""C2SP signed notes and checkpoints: Go's published example, tampering and strict parsing."""

from __future__ import annotations

import base64
import hashlib

import pytest

from offboard.ledger.note import (
    MAX_NOTE_SIZE,
    Checkpoint,
    NoteError,
    NoteSignature,
    Signer,
    Verifier,
    key_id,
    open_checkpoint,
    open_note,
    parse_note,
    sign_note,
)

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline

# The example in golang.org/x/mod/sumdb/note's package documentation and note_test.go.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
GO_NOTE = TEXT + "\n" + PETER_SIG

PETER = Verifier.from_verifier_key(PETER_VKEY)
ENOCH = Verifier.from_verifier_key(ENOCH_VKEY)
ROOT = hashlib.sha256(b"a root").digest()


@pytest.fixture(scope="module")
def log_key() -> Signer:
    return Signer.generate("offboard.example/offboard/acme")


def _signed_checkpoint(signer: Signer, size: int = 42) -> str:
    return sign_note(Checkpoint(signer.name, size, ROOT).text(), signer)


def test_key_id_is_the_first_four_bytes_of_sha256_of_name_newline_alg_and_key():
    public = base64.b64decode(PETER_VKEY.split("+", 2)[2])[1:]
    assert key_id("PeterNeumann", public).hex() == "c74f20a3"
    assert (
        key_id("PeterNeumann", public)
        == hashlib.sha256(b"PeterNeumann\n\x01" + public).digest()[:4]
    )


def test_go_signer_key_gives_go_verifier_key_and_round_trips():
    signer = Signer.from_signer_key(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.verifier_key() == PETER_VKEY
    assert signer.to_signer_key() == PETER_SKEY
    assert PETER.verifier_key() == PETER_VKEY
    assert "AYEKFALV" not in repr(signer)  # the private key stays out of logs


def test_signing_reproduces_go_published_signature_exactly():
    assert sign_note(TEXT, Signer.from_signer_key(PETER_SKEY)) == GO_NOTE


def test_go_published_note_verifies():
    note = open_note(GO_NOTE, [PETER])
    assert note.text == TEXT
    assert [(s.name, s.key_id.hex(), s.verified) for s in note.signatures] == [
        ("PeterNeumann", "c74f20a3", True)
    ]


def test_go_doubly_signed_note_verifies_both_and_keeps_unknown_signers_unverified():
    doubly = GO_NOTE + ENOCH_SIG
    both = open_note(doubly, [PETER, ENOCH])
    assert [s.verified for s in both.signatures] == [True, True]
    only_peter = open_note(doubly, [PETER])
    assert [(s.name, s.verified) for s in only_peter.signatures] == [
        ("PeterNeumann", True),
        ("EnochRoot", False),
    ]


def test_c2sp_example_note_with_a_blank_line_in_its_text_splits_at_the_last_blank_line():
    example = (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
        "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
    )
    note = parse_note(example)
    assert note.text.endswith("di sole:\n\ned è subito sera.\n")
    assert [(s.name, s.verified) for s in note.signatures] == [
        ("quasimodo.example/salvatore", False)
    ]


def test_sign_and_open_round_trip(log_key):
    other = Signer.generate("witness.example")
    signed = sign_note("hello\nworld\n", log_key, other)
    note = open_note(signed, [log_key.verifier(), other.verifier()])
    assert note.text == "hello\nworld\n"
    assert [s.name for s in note.signatures] == [log_key.name, "witness.example"]
    assert all(s.verified for s in note.signatures)
    assert Verifier.from_verifier_key(log_key.verifier_key()) == log_key.verifier()
    assert Signer.from_signer_key(log_key.to_signer_key()).verifier_key() == log_key.verifier_key()


def test_a_note_from_another_key_with_the_same_name_is_rejected(log_key):
    impostor = Signer.generate(log_key.name)
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(_signed_checkpoint(impostor), [log_key.verifier()])
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(GO_NOTE, [])


def test_a_bad_signature_from_a_known_key_rejects_the_note_even_beside_a_good_one():
    forged = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        open_note(forged, [PETER])
    with pytest.raises(NoteError, match="invalid signature for key EnochRoot"):
        open_note(GO_NOTE + ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:], [PETER, ENOCH])


def test_every_flipped_bit_of_the_checkpoint_text_is_rejected(log_key):
    signed = _signed_checkpoint(log_key).encode()
    text_length = len(Checkpoint(log_key.name, 42, ROOT).text().encode())
    for i in range(text_length * 8):
        tampered = bytearray(signed)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(NoteError):
            open_checkpoint(bytes(tampered), [log_key.verifier()])


def test_every_flipped_bit_of_the_signature_is_rejected(log_key):
    signed = _signed_checkpoint(log_key)
    head, _, sig64 = signed.rstrip("\n").rpartition(" ")
    raw = base64.b64decode(sig64)
    for i in range(len(raw) * 8):
        tampered = bytearray(raw)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(NoteError):
            open_note(f"{head} {base64.b64encode(tampered).decode()}\n", [log_key.verifier()])


@pytest.mark.parametrize(
    ("signed", "message"),
    [
        (TEXT + PETER_SIG, "no blank line"),
        (TEXT, "no blank line"),
        (TEXT + "\n", "no signature lines"),
        (GO_NOTE[:-1], "does not end with a newline"),
        (TEXT + "\n" + PETER_SIG.replace("—", "-"), "em dash"),
        (TEXT + "\n" + PETER_SIG.replace("—", "–"), "em dash"),  # en dash
        (TEXT + "\n" + PETER_SIG.replace("— ", "—"), "em dash"),
        (TEXT + "\n" + PETER_SIG.replace("x08go", "x08g!"), "not valid base64"),
        (TEXT + "\n" + PETER_SIG.replace("AM=", "AN="), "not canonical base64"),
        (TEXT + "\n" + PETER_SIG.replace("AM=", "AM"), "not valid base64"),
        (TEXT + "\n" + PETER_SIG.replace(" x08", "  x08"), "not valid base64"),
        (TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter Neumann"), "not valid base64"),
        (TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"), "invalid key name"),
        (TEXT + "\n" + "— PeterNeumann AAAA\n", "too short"),
        (GO_NOTE + "Unexpected line.\n", "signature line 2 must start with an em dash"),
        ("\x01" + GO_NOTE, "control character"),
        (GO_NOTE.replace("\n", "\r\n"), "control character"),
        (b"\xff" + GO_NOTE.encode(), "not valid UTF-8"),
        (TEXT + "\n" + PETER_SIG * 101, "101 signatures, over the limit of 100"),
        ("x" * MAX_NOTE_SIZE + GO_NOTE, "over the 1048576-byte limit"),
    ],
)
def test_malformed_notes_are_refused_with_a_clear_message(signed, message):
    with pytest.raises(NoteError, match=message):
        open_note(signed, [PETER])


def test_repeated_signature_lines_are_listed_once_and_100_signatures_are_accepted():
    note = open_note(TEXT + "\n" + PETER_SIG * 100, [PETER])
    assert note.signatures == [
        NoteSignature(
            "PeterNeumann", bytes.fromhex("c74f20a3"), base64.b64decode(PETER_SIG[15:-1])[4:], True
        )
    ]


def test_signing_refuses_text_that_cannot_be_a_note(log_key):
    for text, message in [
        ("no newline", "must end with a newline"),
        ("tab\there\n", "control character"),
        ("x" * MAX_NOTE_SIZE + "\n", "over the"),
    ]:
        with pytest.raises(NoteError, match=message):
            sign_note(text, log_key)
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note("hello\n")
    with pytest.raises(NoteError, match="at most 100"):
        sign_note("hello\n", *[log_key] * 101)


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\tb", "tab\u2003space", "nb\u00a0sp", "line\u2028sep"]
)
def test_key_names_must_be_non_empty_without_spaces_or_plus(name):
    with pytest.raises(NoteError, match="invalid key name"):
        Signer.generate(name)


def test_every_mangling_of_the_go_keys_is_refused():
    """Port of Go's TestNewVerifier/TestNewSigner: every proper substring and every
    single-character increment of a valid key must fail to parse."""
    for key, parse in [
        (PETER_VKEY, Verifier.from_verifier_key),
        (PETER_SKEY, Signer.from_signer_key),
    ]:
        for i in range(len(key) + 1):
            for j in range(i + 1, len(key) + 1):
                if (i, j) != (0, len(key)):
                    with pytest.raises(NoteError):
                        parse(key[i:j])
        for i in range(len(key)):
            with pytest.raises(NoteError):
                parse(key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :])
    # Go's own bad keys: a too-long key (Go tolerates its non-canonical base64; we do not)
    # and an unknown algorithm, each with an id that matches.
    with pytest.raises(NoteError, match="not canonical base64"):
        Verifier.from_verifier_key(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
    long_key = base64.b64encode(base64.b64decode(PETER_VKEY.split("+", 2)[2]) + b"BAD").decode()
    with pytest.raises(NoteError, match="32 bytes"):
        Verifier.from_verifier_key(f"PeterNeumann+c74f20a3+{long_key}")
    with pytest.raises(NoteError, match="unknown key algorithm"):
        Verifier.from_verifier_key(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )


def test_a_verifier_whose_key_id_does_not_match_its_key_cannot_be_built():
    with pytest.raises(NoteError, match="does not match the key"):
        Verifier("PeterNeumann", bytes.fromhex("c74f20a4"), PETER.public_key)
    with pytest.raises(NoteError, match="does not match the key"):
        Verifier.from_verifier_key(PETER_VKEY.replace("c74f20a3", "c74f20a4"))


def test_checkpoint_text_and_parse_round_trip():
    plain = Checkpoint("example.com/log", 20852163, ROOT)
    assert plain.text() == f"example.com/log\n20852163\n{base64.b64encode(ROOT).decode()}\n"
    assert Checkpoint.parse(plain.text()) == plain
    extended = Checkpoint("example.com/log", 0, ROOT, ("ext one", "ext two"))
    assert Checkpoint.parse(extended.text()) == extended
    # The example from the C2SP tlog-checkpoint spec.
    spec = Checkpoint.parse(
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    assert (spec.origin, spec.size, len(spec.root)) == ("example.com/behind-the-sofa", 20852163, 32)


ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"log\n7\n{ROOT64}", "end with a newline"),
        ("log\n7\n", "needs an origin, a tree size and a root hash"),
        (f"\n7\n{ROOT64}\n", "origin line is empty"),
        (f"log\n07\n{ROOT64}\n", "without leading zeros"),
        (f"log\n+7\n{ROOT64}\n", "without leading zeros"),
        (f"log\n-1\n{ROOT64}\n", "without leading zeros"),
        (f"log\n 7\n{ROOT64}\n", "without leading zeros"),
        (f"log\n٧\n{ROOT64}\n", "without leading zeros"),  # Arabic-Indic seven
        (f"log\n{2**63}\n{ROOT64}\n", "without leading zeros"),
        (f"log\n{'9' * 5000}\n{ROOT64}\n", "without leading zeros"),
        (f"log\n7\n{ROOT64[:-2]}\n", "not valid base64"),
        (f"log\n7\n{base64.b64encode(ROOT[:31]).decode()}\n", "31 bytes, not 32"),
        (f"log\n7\n{ROOT64}\n\n", "extension lines must not be empty"),
        (f"log\n7\n{ROOT64}\next\n\n", "extension lines must not be empty"),
    ],
)
def test_checkpoint_parsing_is_strict(text, message):
    with pytest.raises(NoteError, match=message):
        Checkpoint.parse(text)


def test_checkpoint_cannot_be_built_with_impossible_fields():
    for args in [
        ("", 1, ROOT),
        ("a\nb", 1, ROOT),
        ("log", -1, ROOT),
        ("log", 2**63, ROOT),
        ("log", 1, b"x"),
    ]:
        with pytest.raises(NoteError):
            Checkpoint(*args)
    with pytest.raises(NoteError, match="extension line"):
        Checkpoint("log", 1, ROOT, ("",))


def test_open_checkpoint_checks_signature_and_origin(log_key):
    signed = _signed_checkpoint(log_key)
    checkpoint = open_checkpoint(signed, [log_key.verifier()], origin=log_key.name)
    assert (checkpoint.size, checkpoint.root) == (42, ROOT)
    with pytest.raises(NoteError, match=r"not 'offboard\.example/offboard/globex'"):
        open_checkpoint(signed, [log_key.verifier()], origin="offboard.example/offboard/globex")
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_checkpoint(signed, [PETER])
