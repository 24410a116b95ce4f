"""The backup file's encryption: whatever is cut, flipped, moved or appended is detected, a
wrong key is told apart from a damaged file, and memory stays bounded by the chunk size."""

import io
import os

import pytest

from offboard.backup.crypto import (
    HEADER_SIZE,
    TAG,
    BackupDamaged,
    BackupKey,
    BackupKeyError,
    DecryptingReader,
    EncryptingWriter,
)

pytestmark = pytest.mark.offline

CHUNK = 4096


def key_file_key(seed: int = 1) -> BackupKey:
    return BackupKey(1, bytes([seed]) * 32, "key file test.key")


def encrypt(data: bytes, key: BackupKey, chunk: int = CHUNK) -> bytes:
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, key, chunk=chunk)
    for at in range(0, len(data), 1000):  # odd-sized writes across chunk boundaries
        writer.write(data[at : at + 1000])
    writer.close()
    return sink.getvalue()


def decrypt(blob: bytes, key: BackupKey) -> bytes:
    reader = DecryptingReader(io.BytesIO(blob), key, name="b.obk")
    out = reader.read(777) + reader.read()
    reader.finish()
    return out


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_what_is_written_reads_back_exactly_at_every_chunk_boundary(size):
    data = os.urandom(size)
    blob = encrypt(data, key_file_key())
    assert decrypt(blob, key_file_key()) == data
    chunks = max(1, -(-size // CHUNK))  # every chunk full but the last (which may be empty)
    assert len(blob) == HEADER_SIZE + chunks * TAG + size


def test_two_backups_of_the_same_bytes_share_no_ciphertext():
    data = b"a" * 10_000
    first, second = encrypt(data, key_file_key()), encrypt(data, key_file_key())
    assert first[HEADER_SIZE:][:64] != second[HEADER_SIZE:][:64]  # a fresh salt, a fresh file key


def test_a_wrong_key_is_named_as_such_before_anything_is_read():
    blob = encrypt(b"secret" * 1000, key_file_key(1))
    with pytest.raises(BackupKeyError, match=r"does not open b\.obk: it was made with another key"):
        DecryptingReader(io.BytesIO(blob), key_file_key(2), name="b.obk")


def test_a_passphrase_opens_its_backup_and_a_key_file_is_refused_for_it():
    passphrase = BackupKey.from_passphrase("correct horse battery staple")
    blob = encrypt(b"hello" * 3000, passphrase)
    assert decrypt(blob, BackupKey.from_passphrase("correct horse battery staple")) == (
        b"hello" * 3000
    )
    with pytest.raises(BackupKeyError, match="does not open"):
        DecryptingReader(io.BytesIO(blob), BackupKey.from_passphrase("correct horse battery stapl"))
    with pytest.raises(BackupKeyError, match="encrypted with a passphrase"):
        DecryptingReader(io.BytesIO(blob), key_file_key())


def test_a_short_passphrase_is_refused():
    with pytest.raises(BackupKeyError, match="shorter than 12 characters"):
        BackupKey.from_passphrase("short")


def test_every_single_flipped_byte_is_detected():
    data = os.urandom(2 * CHUNK + 100)
    blob = encrypt(data, key_file_key())
    # every byte of the header, and bytes spread over every chunk and tag
    positions = list(range(HEADER_SIZE)) + list(range(HEADER_SIZE, len(blob), 97)) + [len(blob) - 1]
    for at in positions:
        damaged = bytearray(blob)
        damaged[at] ^= 0x01
        with pytest.raises((BackupDamaged, BackupKeyError)):
            decrypt(bytes(damaged), key_file_key())


@pytest.mark.parametrize(
    "cut",
    [
        1,  # inside the last tag
        TAG + 100,  # the whole last chunk and some of the one before
        100 + TAG,  # exactly the last chunk: what is left ends on a chunk boundary
    ],
)
def test_a_truncated_file_is_refused(cut):
    blob = encrypt(os.urandom(2 * CHUNK + 100), key_file_key())
    with pytest.raises(BackupDamaged, match="ends early or is damaged"):
        decrypt(blob[:-cut], key_file_key())


def test_a_file_cut_inside_its_header_is_named_truncated():
    blob = encrypt(b"x", key_file_key())
    with pytest.raises(BackupDamaged, match="truncated"):
        decrypt(blob[:30], key_file_key())


def test_bytes_appended_after_the_last_chunk_are_refused():
    blob = encrypt(os.urandom(CHUNK + 10), key_file_key())
    with pytest.raises(BackupDamaged, match="is damaged at chunk 1"):
        decrypt(blob + b"\0" * 20, key_file_key())


def test_swapped_chunks_are_refused():
    blob = encrypt(os.urandom(3 * CHUNK + 10), key_file_key())
    size = CHUNK + TAG
    first = HEADER_SIZE
    swapped = (
        blob[:first]
        + blob[first + size : first + 2 * size]
        + blob[first : first + size]
        + blob[first + 2 * size :]
    )
    with pytest.raises(BackupDamaged, match="is damaged at chunk 0"):
        decrypt(swapped, key_file_key())


def test_a_file_that_is_not_a_backup_says_so():
    with pytest.raises(BackupDamaged, match="is not an Offboard backup"):
        DecryptingReader(io.BytesIO(b"PK\x03\x04" + b"\0" * 200), key_file_key(), name="x.zip")


@pytest.mark.parametrize(
    "content",
    [
        os.urandom(32),
        b"  " + __import__("base64").b64encode(os.urandom(32)) + b"\n",
        os.urandom(32).hex().encode(),
    ],
    ids=["raw", "base64", "hex"],
)
def test_a_key_file_holds_32_bytes_raw_base64_or_hex(tmp_path, content):
    path = tmp_path / "backup.key"
    path.write_bytes(content)
    assert len(BackupKey.from_file(path).secret) == 32


def test_a_key_file_of_another_length_is_refused(tmp_path):
    path = tmp_path / "backup.key"
    path.write_text("too short\n")
    with pytest.raises(BackupKeyError, match="does not hold a 32-byte key"):
        BackupKey.from_file(path)
    with pytest.raises(BackupKeyError, match="Cannot read the key file"):
        BackupKey.from_file(tmp_path / "missing.key")
