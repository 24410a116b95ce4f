"""Hostile and broken input: the verifier refuses with one clear line, reads members as streams
(never extracting them), and never raises."""

import stat
import zipfile
from pathlib import Path

import pytest

from offboard.packs.verify import archive as packzip
from offboard.packs.verify import layout as fmt
from tests.packs.conftest import BuiltPacks, members_of, problems, tampered, verify, write_pack

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, content in entries:
            zf.writestr(info, content)
    return path


def refused(path: Path) -> str:
    report = verify(path)
    assert not report.ok
    assert report.error is not None, [c.as_dict() for c in report.checks]
    assert "\n" not in report.error
    assert all(not a.proven for a in report.answers)
    return report.error


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pack.zip"
    path.write_bytes(b"%PDF-1.4 not a zip at all\n" * 10)
    assert refused(path) == (
        "pack.zip is not a zip archive, or it is truncated or corrupted (File is not a zip file)"
    )


def test_an_empty_file_and_an_empty_zip_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    assert "is not a zip archive" in refused(empty)
    assert "is an empty zip archive" in refused(_zip(tmp_path / "nothing.zip", []))


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_a_truncated_pack_is_refused(packs: BuiltPacks, tmp_path: Path, keep: float) -> None:
    raw = packs.closed.read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(raw[: int(len(raw) * keep)])
    assert "cut.zip is not a zip archive, or it is truncated or corrupted" in refused(path)


def test_a_member_whose_bytes_are_corrupted_inside_the_zip_is_named(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    raw = bytearray(packs.closed.read_bytes())
    name = b"/data/case.json"
    with zipfile.ZipFile(packs.closed) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("data/case.json"))
    # Inside the compressed data of data/case.json, past its local header.
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    raw[at] ^= 0xFF
    assert name in bytes(raw)
    path = tmp_path / "corrupt.zip"
    path.write_bytes(bytes(raw))
    report = verify(path)
    assert not report.ok and report.error is None
    assert any("data/case.json cannot be read from the zip" in p for p in problems(report))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.txt", "'..'"),
        ("pack/../../evil.txt", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.txt", "absolute path"),
        ("pack\\data\\evil.txt", "backslash"),
        ("pack//data/x", "empty"),
        ("pack/data/\x07bell", "control character"),
    ],
)
def test_unsafe_member_names_are_refused(tmp_path: Path, name: str, why: str) -> None:
    path = _zip(tmp_path / "evil.zip", [("pack/bagit.txt", fmt.BAGIT_TXT_CONTENT), (name, b"x")])
    error = refused(path)
    assert f"member {name!r}" in error and why in error and "refusing the archive" in error


def test_a_symbolic_link_member_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("pack/data/link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _zip(
        tmp_path / "link.zip", [("pack/bagit.txt", fmt.BAGIT_TXT_CONTENT), (link, b"/etc/passwd")]
    )
    assert refused(path) == "link.zip: member 'pack/data/link' is a symbolic link"


# create_system: 0 MS-DOS, 3 Unix, 10 Windows NTFS, 11 MVS, 14 VFAT, 19 OS X (APPNOTE 4.4.2).
@pytest.mark.parametrize("system", [0, 3, 10, 11, 14, 19])
def test_a_symbolic_link_is_refused_whatever_system_made_the_zip(
    tmp_path: Path, system: int
) -> None:
    link = zipfile.ZipInfo("pack/data/case.json")
    link.create_system = system
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _zip(tmp_path / "link.zip", [("pack/bagit.txt", fmt.BAGIT_TXT_CONTENT), (link, b"/")])
    with zipfile.ZipFile(path) as zf:  # what the verifier sees is what was written
        assert zf.getinfo("pack/data/case.json").create_system == system
    assert refused(path) == "link.zip: member 'pack/data/case.json' is a symbolic link"


def test_no_create_system_value_makes_a_link_a_file(tmp_path: Path) -> None:
    for system in range(256):
        link = zipfile.ZipInfo("pack/data/link")
        link.create_system = system
        link.external_attr = (stat.S_IFLNK | 0o644) << 16 | 0x20  # and DOS "archive"
        path = _zip(tmp_path / f"link{system}.zip", [(link, b"target")])
        assert refused(path).endswith("member 'pack/data/link' is a symbolic link"), system


@pytest.mark.parametrize(("system", "mode"), [(0, 0), (10, 0), (3, 0o100644)])
def test_a_windows_reparse_point_is_refused(tmp_path: Path, system: int, mode: int) -> None:
    reparse = zipfile.ZipInfo("pack/data/events/0.json")
    reparse.create_system = system
    reparse.external_attr = mode << 16 | 0x400 | 0x20  # REPARSE_POINT | ARCHIVE
    path = _zip(tmp_path / "junction.zip", [(reparse, b"{}")])
    assert refused(path) == (
        "junction.zip: member 'pack/data/events/0.json' is a Windows reparse point "
        "(a symbolic link or junction)"
    )


def test_a_windows_device_is_refused(tmp_path: Path) -> None:
    device = zipfile.ZipInfo("pack/data/con")
    device.create_system = 0
    device.external_attr = 0x40
    assert refused(_zip(tmp_path / "dev.zip", [(device, b"")])) == (
        "dev.zip: member 'pack/data/con' is not a regular file (Windows device attribute)"
    )


@pytest.mark.parametrize("system", [0, 3])
def test_a_directory_entry_that_carries_data_is_refused(tmp_path: Path, system: int) -> None:
    directory = zipfile.ZipInfo("pack/data/")
    directory.create_system = system
    directory.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
    path = _zip(tmp_path / "dir.zip", [("pack/bagit.txt", b""), (directory, b"hidden bytes")])
    assert refused(path) == (
        "dir.zip: member 'pack/data/' is a directory entry that carries data (12 bytes, 12 "
        "compressed)"
    )


def test_a_directory_entry_with_compressed_bytes_but_no_size_is_refused(tmp_path: Path) -> None:
    # zipfile cannot write this one: central and local headers from the pack writer's encoder.
    from offboard.packs import zipstream

    member = zipstream.ZipMember("pack/data/", zipstream.STORED, 0, 5, 0, "", 0)
    date, time = zipstream.dos_date_time((2026, 1, 1, 0, 0, 0))
    local = zipstream.local_header(member, date, time) + b"12345"
    central = zipstream.central_header(member, date, time)
    path = tmp_path / "dir.zip"
    path.write_bytes(local + central + zipstream.end_records(1, len(local), len(central)))
    assert refused(path) == (
        "dir.zip: member 'pack/data/' is a directory entry that carries data (0 bytes, 5 "
        "compressed)"
    )


def test_a_directory_by_its_mode_must_be_named_as_one(tmp_path: Path) -> None:
    directory = zipfile.ZipInfo("pack/data/case.json")
    directory.external_attr = (stat.S_IFDIR | 0o755) << 16
    assert refused(_zip(tmp_path / "d.zip", [(directory, b"")])) == (
        "d.zip: member 'pack/data/case.json' is a directory whose name does not end in '/'"
    )


def test_a_device_or_fifo_member_is_refused(tmp_path: Path) -> None:
    fifo = zipfile.ZipInfo("pack/data/fifo")
    fifo.create_system = 3
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    assert "is not a regular file" in refused(_zip(tmp_path / "fifo.zip", [(fifo, b"")]))


def test_duplicate_member_names_are_refused(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = _zip(
            tmp_path / "dup.zip",
            [("pack/data/case.json", b"{}"), ("pack/data/case.json", b"{}")],
        )
    assert refused(path) == "dup.zip: member 'pack/data/case.json' appears twice"


def test_members_outside_one_bag_directory_are_refused(tmp_path: Path) -> None:
    two = _zip(tmp_path / "two.zip", [("a/bagit.txt", b""), ("b/bagit.txt", b"")])
    assert "must hold exactly one top-level directory (the bag), not: a, b" in refused(two)
    flat = _zip(tmp_path / "flat.zip", [("bagit.txt", fmt.BAGIT_TXT_CONTENT)])
    assert "'bagit.txt' is a file, not the bag's directory" in refused(flat)


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "enc.zip", [("pack/data/case.json", b"{}")])
    raw = bytearray(path.read_bytes())
    # zipfile writes no encrypted members: set the flag (bit 0) in both headers by hand.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.index(signature) + offset
        raw[at] |= 0x1
    path.write_bytes(bytes(raw))
    assert refused(path) == "enc.zip: member 'pack/data/case.json' is encrypted"


def test_a_zip_bomb_is_refused_before_anything_is_inflated(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("pack/bagit.txt", fmt.BAGIT_TXT_CONTENT)
        with zf.open("pack/data/files/" + "0" * 64, "w") as member:
            for _ in range(64):
                member.write(bytes(1024 * 1024))
    assert path.stat().st_size < 200_000
    error = refused(path)
    assert "expands" in error and "times (zip bomb?)" in error


def test_total_size_and_member_size_limits(
    packs: BuiltPacks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packzip, "MAX_TOTAL_BYTES", 100_000)
    assert "members expand to more than 100,000 bytes (zip bomb?)" in refused(packs.closed)
    monkeypatch.undo()
    monkeypatch.setattr(packzip, "MAX_MEMBER_BYTES", 1_000_000)
    assert "bytes, over the 1,000,000-byte limit" in refused(packs.closed)
    monkeypatch.undo()
    monkeypatch.setitem(packzip.READ_LIMITS, "case", 10_000)
    report = verify(packs.closed)
    assert report.error is None and not report.ok
    assert any(
        "data/case.json is" in p and "over the 10,000-byte limit for a file the verifier reads" in p
        for p in problems(report)
    )


def test_too_many_members_are_refused(packs: BuiltPacks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packzip, "MAX_MEMBERS", 10)
    assert "over the 10 limit" in refused(packs.closed)


@pytest.mark.parametrize("member", [fmt.BAG_INFO, fmt.MANIFEST, "data/README.txt"])
def test_non_utf8_text_files_are_named(packs: BuiltPacks, tmp_path: Path, member: str) -> None:
    def latin1(m: dict[str, bytes]) -> None:
        m[member] = m[member].replace(b"e", "\u00e9".encode("latin-1"), 1)

    report = verify(tampered(tmp_path, packs.closed, latin1))
    assert not report.ok and report.error is None
    assert any(member in p for p in problems(report)), problems(report)


def test_a_non_utf8_event_is_named_even_with_fresh_manifests(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    _, members = members_of(packs.closed)
    event = next(p for p in members if fmt.kind_of(p) == "event")

    def latin1(m: dict[str, bytes]) -> None:
        m[event] = m[event].replace(b"}", b"\xe9}", 1)

    found = problems(verify(tampered(tmp_path, packs.closed, latin1, fresh_manifests=True)))
    assert f"{event} is not valid UTF-8" in found


def test_files_outside_the_layout_are_refused(packs: BuiltPacks, tmp_path: Path) -> None:
    def add(m: dict[str, bytes]) -> None:
        m["data/notes.txt"] = b"hello"
        m["extra-tag.txt"] = b"hello"

    found = problems(verify(tampered(tmp_path, packs.closed, add, fresh_manifests=True)))
    assert "data/notes.txt is not part of the evidence-pack layout" in found
    assert "extra-tag.txt is not part of the evidence-pack layout" in found


def test_a_directory_entry_for_the_bag_is_accepted(packs: BuiltPacks, tmp_path: Path) -> None:
    base, members = members_of(packs.closed)
    path = tmp_path / "dirs.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo(f"{base}/"), b"")
        zf.writestr(f"{base}/data/", b"")  # with Unix mode drwxrwxr-x and the DOS flag
        # An empty deflated directory, as Java's ZipOutputStream writes it (2 bytes: 03 00).
        zf.writestr(f"{base}/data/events/", b"", compress_type=zipfile.ZIP_DEFLATED)
        assert zf.getinfo(f"{base}/data/events/").compress_size == 2
    with zipfile.ZipFile(path, "a") as zf:
        for rel, content in members.items():
            zf.writestr(f"{base}/{rel}", content)
    assert verify(path).ok
    write_pack(tmp_path / "plain.zip", base, members)
    assert verify(tmp_path / "plain.zip").ok


def test_random_damage_anywhere_in_the_zip_never_raises(packs: BuiltPacks, tmp_path: Path) -> None:
    import random

    rng = random.Random(4)  # fixed: the same damage on every run
    raw = packs.closed.read_bytes()
    path = tmp_path / "damaged.zip"
    outcomes = set()
    for attempt in range(150):
        damaged = bytearray(raw)
        # Every third attempt hits the central directory and end records (the last 4 KiB),
        # which a pack of any size has: there the damage makes the zip unreadable as a whole.
        low = len(damaged) - 4096 if attempt % 3 == 0 else 0
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(low, len(damaged))] = rng.randrange(256)
        path.write_bytes(bytes(damaged))
        report = verify(path)  # any exception fails the test
        if report.ok:  # only a byte no reader uses (a local header's date, say) was hit
            with zipfile.ZipFile(path) as zf:
                assert {n[n.index("/") + 1 :]: zf.read(n) for n in zf.namelist()} == (
                    members_of(packs.closed)[1]
                )
            outcomes.add("harmless")
        else:
            outcomes.add("unreadable" if report.error else "failed checks")
    assert {"unreadable", "failed checks"} <= outcomes


def test_a_check_that_breaks_on_crafted_input_fails_instead_of_crashing(
    packs: BuiltPacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    import offboard.packs.verify as packverify

    def explode(run: object) -> None:
        raise KeyError("surprise")

    checks = [(n, explode if n == "files" else c) for n, c in packverify.CHECKS]
    monkeypatch.setattr(packverify, "CHECKS", checks)
    report = verify(packs.closed)
    assert not report.ok and report.error is None
    (files,) = [c for c in report.checks if c.name == "files"]
    assert files.problems == ["the files check could not complete: KeyError: 'surprise'"]
