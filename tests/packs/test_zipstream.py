"""The streaming zip writer: Python's zipfile, Info-ZIP's unzip and Java's ZipInputStream (which
reads only the local headers) all extract what it writes; no member has a data descriptor; a
stored member that changed between the two passes is refused; ZIP64 where sizes, offsets or
the member count need it; the same input gives the same bytes; memory stays bounded."""

import hashlib
import io
import os
import shutil
import struct
import subprocess
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboard.packs import zipstream
from offboard.packs.zipstream import MemberChanged, ZipMember, ZipStream, ZipStreamError, crc32_of
from tests.packs.javazip import java_extract

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline

DATE = (2026, 12, 4, 12, 0, 0)
MiB = 1024 * 1024
unzip_missing = pytest.mark.skipif(shutil.which("unzip") is None, reason="unzip is not installed")


def write(path: Path, build: Callable[[ZipStream], Iterator[bytes]]) -> ZipStream:
    """Run `build(zs)` (a generator of chunks, ending with zs.finish()) into the file at `path`."""
    zs = ZipStream(date_time=DATE)
    with path.open("wb") as f:
        for chunk in build(zs):
            f.write(chunk)
    return zs


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """`data` in chunks of the given sizes, cycling through them."""
    at, i = 0, 0
    while at < len(data):
        yield data[at : at + sizes[i % len(sizes)]]
        at += sizes[i % len(sizes)]
        i += 1


def stored(zs: ZipStream, name: str, data: bytes, sizes: list[int]) -> Iterator[bytes]:
    crc, size = crc32_of(chunked(data, sizes))
    return zs.add_stored(name, size=size, crc32=crc, chunks=chunked(data, sizes))


def read_all(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def unzip_test(path: Path) -> None:
    done = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No errors detected" in done.stdout


def local_headers(path: Path) -> dict[str, tuple[int, int, int, int, int, bytes]]:
    """Each member's local header as written: (flags, method, crc32, compressed, size, extra)."""
    raw = path.read_bytes()
    found = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            at = info.header_offset
            sig, _, flags, method, _, _, crc, csize, size, nlen, xlen = struct.unpack_from(
                "<IHHHHHIIIHH", raw, at
            )
            assert sig == 0x04034B50
            assert raw[at + 30 : at + 30 + nlen].decode("utf-8") == info.filename
            extra = raw[at + 30 + nlen : at + 30 + nlen + xlen]
            found[info.filename] = (flags, method, crc, csize, size, extra)
    return found


# A bit of everything: empty members stored and deflated, non-ASCII names, a member streamed in
# uneven chunks past 1 MiB, a large member deflated in memory, an empty streamed one.
NAMES_AND_DATA = {
    "bag/bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
    "bag/empty-stored": b"",
    "bag/empty-deflated": b"",
    "bag/data/donn\u00e9es/r\u00e9sum\u00e9.txt": "\u00e9t\u00e9 \u2603\n".encode() * 500,
    "bag/data/\u65e5\u672c\u8a9e/\U0001f4c4.json": b'{"\xe2\x9c\x93": true}\n',
    "bag/data/files/large": hashlib.sha256(b"seed").digest() * (3 * MiB // 32 + 7),
    "bag/data/deflated-large.json": b'{"event": "x"}\n' * (2 * MiB // 15),
    "bag/data/files/empty-streamed": b"",
}


def _sample(zs: ZipStream) -> Iterator[bytes]:
    m = NAMES_AND_DATA
    yield from zs.add_bytes("bag/bagit.txt", m["bag/bagit.txt"])
    yield from zs.add_bytes("bag/empty-stored", b"", compress=False)
    yield from zs.add_bytes("bag/empty-deflated", b"", compress=True)
    for name in list(m)[3:5]:
        yield from zs.add_bytes(name, m[name])
    yield from stored(zs, "bag/data/files/large", m["bag/data/files/large"], [MiB, 7, 65536, 3])
    yield from zs.add_bytes("bag/data/deflated-large.json", m["bag/data/deflated-large.json"])
    yield from zs.add_stored("bag/data/files/empty-streamed", size=0, crc32=0, chunks=iter([]))
    yield from zs.finish()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ZipStream]:
    path = tmp_path_factory.mktemp("zipstream") / "sample.zip"
    return path, write(path, _sample)


def test_python_zipfile_reads_every_member_with_its_bytes_and_attributes(
    sample: tuple[Path, ZipStream],
) -> None:
    path, zs = sample
    assert read_all(path) == list(NAMES_AND_DATA.items())
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            assert info.flag_bits == 0x0800, info.filename  # UTF-8 names; no data descriptor
            assert info.create_system == 3
            assert info.external_attr == 0o100644 << 16
            assert info.date_time == DATE
            assert info.extra == b""
        methods = {i.filename: i.compress_type for i in zf.infolist()}
    assert methods["bag/empty-stored"] == methods["bag/data/files/large"] == zipfile.ZIP_STORED
    assert methods["bag/empty-deflated"] == methods["bag/bagit.txt"] == zipfile.ZIP_DEFLATED
    for name, content in NAMES_AND_DATA.items():
        assert zs.sha256_of(name) == hashlib.sha256(content).hexdigest()
    assert [m.name for m in zs.members] == list(NAMES_AND_DATA)
    assert zs.bytes_written == path.stat().st_size


def test_every_local_header_carries_the_crc_and_both_sizes(sample: tuple[Path, ZipStream]) -> None:
    path, _ = sample
    headers = local_headers(path)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            flags, method, crc, csize, size, extra = headers[info.filename]
            assert not flags & 0x8, f"{info.filename} has a data descriptor"
            assert (method, crc, csize, size, extra) == (
                info.compress_type, info.CRC, info.compress_size, info.file_size, b""
            )  # fmt: skip


@unzip_missing
def test_unzip_tests_every_member(sample: tuple[Path, ZipStream]) -> None:
    unzip_test(sample[0])


def test_java_zipinputstream_extracts_every_member(
    sample: tuple[Path, ZipStream], tmp_path: Path
) -> None:
    extracted = java_extract(sample[0], tmp_path / "java")
    assert [(e.name, e.read()) for e in extracted] == list(NAMES_AND_DATA.items())


def test_the_same_input_gives_the_same_bytes(
    sample: tuple[Path, ZipStream], tmp_path: Path
) -> None:
    again = tmp_path / "again.zip"
    write(again, _sample)
    assert again.read_bytes() == sample[0].read_bytes()


def test_a_stored_member_streams_in_bounded_memory() -> None:
    chunk = bytes(range(256)) * (MiB // 256)
    count = 64
    crc, size = crc32_of(chunk for _ in range(count))
    zs = ZipStream(date_time=DATE)
    tracemalloc.start()
    try:
        out = 0
        for piece in zs.add_stored("f", size=size, crc32=crc, chunks=(chunk for _ in range(count))):
            out += len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out > size == count * MiB
    assert peak < 2 * MiB, f"peak {peak:,} bytes while streaming {size:,}"
    assert zs.sha256_of("f") == hashlib.sha256(chunk * count).hexdigest()


def test_crc32_of_gives_the_crc_and_size_of_the_chunks() -> None:
    data = os.urandom(3 * MiB + 5)
    assert crc32_of(chunked(data, [MiB, 1])) == (zlib.crc32(data), len(data))
    assert crc32_of([]) == (0, 0)


# --- a file that changed between the two passes -------------------------------------------------


def _drain(chunks: Iterator[bytes]) -> int:
    return sum(len(c) for c in chunks)


@pytest.mark.parametrize(
    ("streamed", "message"),
    [
        (b"0123456789-and-more", "f.bin: more bytes than the 10 declared"),
        (b"012345678", "f.bin: 9 bytes streamed, 10 declared"),
        (b"012345678X", "f.bin: the streamed bytes have CRC-32"),
    ],
)
def test_a_stored_member_that_changed_between_passes_is_refused(
    streamed: bytes, message: str
) -> None:
    declared = b"0123456789"
    zs = ZipStream(date_time=DATE)
    handed: list[bytes] = []
    with pytest.raises(MemberChanged, match=message) as refused:
        for chunk in zs.add_stored(
            "f.bin", size=10, crc32=zlib.crc32(declared), chunks=chunked(streamed, [4])
        ):
            handed.append(chunk)
    assert refused.value.name == "f.bin"
    assert "it changed since its size and CRC-32 were read" in str(refused.value)
    assert sum(map(len, handed[1:])) <= 10  # never more than the declared size
    with pytest.raises(ZipStreamError, match=r"the zip stream is broken: writing 'f\.bin'"):
        _drain(zs.finish())


def test_names_a_careful_reader_would_refuse_and_duplicates_are_not_written() -> None:
    zs = ZipStream(date_time=DATE)
    for name in ["", "/etc/passwd", "C:/x", "a\\b", "a/../b", "a//b", "dir/", "a\x00b", "./a"]:
        with pytest.raises(ZipStreamError, match="member name"):
            _drain(zs.add_bytes(name, b"x"))
    _drain(zs.add_bytes("a", b"x"))
    with pytest.raises(ZipStreamError, match="member 'a' is already in the zip"):
        _drain(zs.add_bytes("a", b"y"))
    with pytest.raises(ZipStreamError, match="date_time"):
        ZipStream(date_time=(1979, 12, 31, 0, 0, 0))


def test_members_are_written_one_at_a_time_and_none_after_finish() -> None:
    zs = ZipStream(date_time=DATE)
    first = zs.add_stored("a", size=1, crc32=zlib.crc32(b"a"), chunks=[b"a"])
    next(first)  # the local header is out, the data not yet
    with pytest.raises(ZipStreamError, match="a member is still being written"):
        _drain(zs.add_bytes("b", b"b"))
    _drain(first)
    _drain(zs.finish())
    with pytest.raises(ZipStreamError, match="finished"):
        _drain(zs.add_bytes("c", b"c"))


# --- ZIP64 --------------------------------------------------------------------------------------


def test_more_than_65535_members_get_the_zip64_end_records(tmp_path: Path) -> None:
    count = 65_600

    def many(zs: ZipStream) -> Iterator[bytes]:
        for i in range(count):
            yield from zs.add_bytes(f"bag/{i}", str(i).encode(), compress=False)
        yield from zs.finish()

    path = tmp_path / "many.zip"
    write(path, many)
    raw = path.read_bytes()
    tail = raw[-(56 + 20 + 22) :]
    assert struct.unpack_from("<I", tail, 0)[0] == 0x06064B50  # ZIP64 end record
    assert struct.unpack_from("<QQ", tail, 24) == (count, count)
    assert struct.unpack_from("<I", tail, 56)[0] == 0x07064B50  # its locator
    assert struct.unpack_from("<IHHHH", tail, 76) == (0x06054B50, 0, 0, 0xFFFF, 0xFFFF)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert len(infos) == count
        assert zf.read(infos[-1]) == str(count - 1).encode()
    if shutil.which("unzip"):
        unzip_test(path)
    extracted = java_extract(path, tmp_path / "java", digests_only=True)
    assert len(extracted) == count
    assert extracted[-1].name == f"bag/{count - 1}"
    assert all(
        e.sha256 == hashlib.sha256(str(i).encode()).hexdigest() for i, e in enumerate(extracted)
    )


def test_up_to_65534_members_keep_the_plain_end_record() -> None:
    raw = zipstream.end_records(0xFFFE, 100, 200)
    assert len(raw) == 22 and struct.unpack_from("<HH", raw, 8) == (0xFFFE, 0xFFFE)
    # 0xFFFF itself means "see the ZIP64 record", so 65,535 members need it.
    assert len(zipstream.end_records(0xFFFF, 100, 200)) == 56 + 20 + 22


def _extra_fields(extra: bytes) -> dict[int, bytes]:
    fields, at = {}, 0
    while at < len(extra):
        header_id, length = struct.unpack_from("<HH", extra, at)
        fields[header_id] = extra[at + 4 : at + 4 + length]
        at += 4 + length
    return fields


@pytest.mark.parametrize(
    ("size", "offset", "local64", "central64"),
    [
        (0xFFFFFFFE, 0, False, ()),
        (0xFFFFFFFF, 0, True, ("size", "csize")),  # 0xFFFFFFFF itself means "see ZIP64"
        (0x100000000 + 5, 0, True, ("size", "csize")),
        (10, 0x100000000, False, ("offset",)),
        (0x1_0000_0000_0000, 0x200000000, True, ("size", "csize", "offset")),
    ],
)
def test_sizes_and_offsets_that_do_not_fit_32_bits_go_to_zip64_extra_fields(
    size: int, offset: int, local64: bool, central64: tuple[str, ...]
) -> None:
    """The header encoding itself, for members too large to stream in a test (a real 4 GiB member
    runs in test_a_member_past_4_gib_round_trips, with OFFBOARD_SLOW_TESTS=1)."""
    member = ZipMember("bag/huge", zipstream.STORED, size, size, 0x12345678, "", offset)
    date, time = zipstream.dos_date_time(DATE)
    local = zipstream.local_header(member, date, time)
    sig, version, flags, method, t, d, crc, csize32, size32, nlen, _ = struct.unpack_from(
        "<IHHHHHIIIHH", local
    )
    assert (sig, flags, method, crc, (d, t)) == (0x04034B50, 0x0800, 0, 0x12345678, (date, time))
    assert version == (45 if local64 or central64 else 20)
    extra = _extra_fields(local[30 + nlen :])
    if local64:
        assert (size32, csize32) == (0xFFFFFFFF, 0xFFFFFFFF)
        assert extra == {1: struct.pack("<QQ", size, size)}  # both sizes, always, in a local one
    else:
        assert (size32, csize32, extra) == (size, size, {})

    central = zipstream.central_header(member, date, time)
    fields = struct.unpack_from("<IHHHHHHIIIHHHHHII", central)
    assert fields[0] == 0x02014B50 and fields[1] == (3 << 8) | 63 and fields[2] == version
    csize32, size32, nlen, offset32 = fields[8], fields[9], fields[10], fields[16]
    values = {"size": size, "csize": size, "offset": offset}
    expected64 = [values[k] for k in central64]
    assert (size32, csize32, offset32) == tuple(
        0xFFFFFFFF if k in central64 else values[k] for k in ("size", "csize", "offset")
    )
    extra = _extra_fields(central[46 + nlen :])
    assert extra == ({1: struct.pack(f"<{len(expected64)}Q", *expected64)} if central64 else {})


def test_offsets_past_4_gib_are_read_back_from_zip64_fields(tmp_path: Path) -> None:
    """Members and a central directory past 4 GiB, without writing 4 GiB: the writer is told
    4 GiB went out before, and the file has a sparse hole there (Java reads from the front,
    so only zipfile and unzip can check this one)."""
    hole = 0x100000000 + 123
    zs = ZipStream(date_time=DATE)
    zs._offset = hole  # what the hole would have counted
    path = tmp_path / "far.zip"
    with path.open("wb") as f:
        f.seek(hole)
        for chunk in zs.add_bytes("bag/a.txt", b"a" * 1000):
            f.write(chunk)
        for chunk in stored(zs, "bag/b.bin", b"b" * 5000, [1000]):
            f.write(chunk)
        for chunk in zs.finish():
            f.write(chunk)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [i.header_offset for i in infos] == [m.offset for m in zs.members]
        assert infos[0].header_offset == hole
        assert zf.read("bag/a.txt") == b"a" * 1000 and zf.read("bag/b.bin") == b"b" * 5000
        assert zf.testzip() is None
    if shutil.which("unzip"):
        unzip_test(path)


@pytest.mark.skipif(
    os.environ.get("OFFBOARD_SLOW_TESTS") != "1",
    reason="streams 4 GiB through the writer and three readers (~1 min); OFFBOARD_SLOW_TESTS=1",
)
def test_a_member_past_4_gib_round_trips(tmp_path: Path) -> None:
    size = 0x100000000 + 12345
    zero = bytes(MiB)

    def zeros() -> Iterator[bytes]:
        left = size
        while left:
            yield zero if left >= MiB else zero[:left]
            left -= min(left, MiB)

    crc, counted = crc32_of(zeros())
    zs = ZipStream(date_time=DATE)
    path = tmp_path / "huge.zip"
    with path.open("wb") as f:  # the zeros become a sparse hole
        for chunk in zs.add_bytes("bag/first.txt", b"first\n"):
            f.write(chunk)
        for chunk in zs.add_stored("bag/huge", size=counted, crc32=crc, chunks=zeros()):
            if chunk is zero:
                f.seek(len(chunk), os.SEEK_CUR)
            else:
                f.write(chunk)
        for chunk in zs.add_bytes("bag/after.txt", b"after\n"):
            f.write(chunk)
        for chunk in zs.finish():
            f.write(chunk)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("bag/huge").file_size == size
        assert zf.testzip() is None
    unzip_test(path)
    extracted = java_extract(path, tmp_path / "java", digests_only=True)
    assert [(e.name, e.size) for e in extracted] == [
        ("bag/first.txt", 6), ("bag/huge", size), ("bag/after.txt", 6)
    ]  # fmt: skip
    assert extracted[1].sha256 == zs.sha256_of("bag/huge")


# --- any set of members -------------------------------------------------------------------------

_segment = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", "..") and not (len(s) >= 2 and s[1] == ":"))
_member = st.tuples(
    st.lists(_segment, min_size=1, max_size=3).map("/".join),
    st.binary(max_size=3000),
    st.sampled_from(["deflated", "stored", "streamed"]),
    st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=4),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=st.lists(_member, max_size=12, unique_by=lambda m: m[0]))
def test_any_set_of_members_round_trips_through_zipfile(
    members: list[tuple[str, bytes, str, list[int]]],
) -> None:
    zs = ZipStream(date_time=DATE)
    out = []
    for name, data, how, sizes in members:
        if how == "streamed":
            out += stored(zs, name, data, sizes)
        else:
            out += zs.add_bytes(name, data, compress=how == "deflated")
    out += zs.finish()
    raw = b"".join(out)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        assert zf.testzip() is None
        assert [(i.filename, zf.read(i)) for i in zf.infolist()] == [(m[0], m[1]) for m in members]
        assert all(i.flag_bits == 0x0800 for i in zf.infolist())
    for name, data, _, _ in members:
        assert zs.sha256_of(name) == hashlib.sha256(data).hexdigest()
