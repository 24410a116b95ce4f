"""`offboard verify` in bounded memory whatever the pack holds: what the verifier parses has a
size limit per kind and a budget for what stays in memory (the rest is read again, and hashed
again, when a check needs it); evidence files are only hashed. Peak memory is measured on a
child process running the verifier."""

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

import offboard.packs.verify as packverify
from offboard.packs import zipstream
from offboard.packs.verify import archive as packzip
from offboard.packs.verify import layout as fmt
from tests.packs.conftest import BuiltPacks, members_of, problems, verify

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline

MiB = 1024 * 1024
PEAK_LIMIT = 300 * MiB
VERIFY = (
    "import json, sys\n"
    "from pathlib import Path\n"
    "from offboard.packs.verify import verify_pack\n"
    "print(json.dumps(verify_pack(Path(sys.argv[1])).as_dict()))\n"
)
MEASURE = (
    "import json, resource, subprocess, sys\n"
    "done = subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2]], capture_output=True,"
    " text=True)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux\n"
    "print(json.dumps({'returncode': done.returncode, 'stdout': done.stdout,"
    " 'stderr': done.stderr, 'peak_kib': peak}))\n"
)


def verify_in_child(path: Path) -> tuple[dict[str, Any], int]:
    """The verifier's report on `path`, run in a fresh process, and that process's peak RSS in
    bytes: RUSAGE_CHILDREN after it exits, read in a small intermediate process. (Linux carries
    the RSS high-water mark across exec, so a child started straight from this test process
    would report this process's own peak, pack fixtures and all.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, VERIFY, str(path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    assert child["returncode"] == 0, child["stderr"]
    return json.loads(child["stdout"]), child["peak_kib"] * 1024


def report_problems(report: dict[str, Any]) -> list[str]:
    found = [p for c in report["checks"] if not c["ok"] for p in c["problems"]]
    return found + ([report["error"]] if report["error"] else [])


def raw_zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip of already deflated members (name, deflated bytes, size, CRC-32): one compressed
    payload can stand for many members without deflating it again for each."""
    date, time = zipstream.dos_date_time((2026, 12, 4, 12, 0, 0))
    written: list[zipstream.ZipMember] = []
    offset = 0
    with path.open("wb") as f:
        for name, payload, size, crc in members:
            member = zipstream.ZipMember(
                name, zipstream.DEFLATED, size, len(payload), crc, "", offset
            )
            header = zipstream.local_header(member, date, time)
            f.write(header)
            f.write(payload)
            offset += len(header) + len(payload)
            written.append(member)
        directory = b"".join(zipstream.central_header(m, date, time) for m in written)
        f.write(directory + zipstream.end_records(len(written), offset, len(directory)))
    return path


def deflated(data: bytes) -> tuple[bytes, int, int]:
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    return deflater.compress(data) + deflater.flush(), len(data), zlib.crc32(data)


def review_pack(path: Path, content: bytes, count: int = 40) -> Path:
    """The security review's pack: `count` events of 60 MiB, deflated, in one bag."""
    payload, size, crc = deflated(content)
    bagit = deflated(fmt.BAGIT_TXT_CONTENT)
    members = [("pack/bagit.txt", *bagit)]
    members += [(f"pack/data/events/{i}.json", payload, size, crc) for i in range(count)]
    return raw_zip(path, members)


def compressible(size: int) -> bytes:
    """Bytes that deflate about 250 times: 200 random bytes in every 64 KiB, zeros between
    (under the 500x zip-bomb ratio, like the review's pack: 40 x 60 MB in 7.8 MB)."""
    rng = random.Random(7)
    block = 64 * 1024
    return b"".join(rng.randbytes(200) + bytes(block - 200) for _ in range(size // block))


def test_a_pack_of_huge_compressible_members_fails_cleanly_in_bounded_memory(
    tmp_path: Path,
) -> None:
    path = review_pack(tmp_path / "review.zip", compressible(60 * MiB))
    assert path.stat().st_size < 15 * MiB  # 2.4 GiB once inflated
    report, peak = verify_in_child(path)
    assert peak < PEAK_LIMIT, f"verifying took {peak / MiB:.0f} MiB"
    assert not report["ok"] and report["error"] is None
    found = report_problems(report)
    for i in range(40):
        assert (
            f"data/events/{i}.json is 62,914,560 bytes, over the 16,777,216-byte limit for a "
            "file the verifier reads; it was not read"
        ) in found
    assert not [p for p in found if "could not complete" in p], found


def test_a_pack_of_huge_members_of_zeros_is_refused_as_a_bomb_in_bounded_memory(
    tmp_path: Path,
) -> None:
    path = review_pack(tmp_path / "zeros.zip", bytes(60 * MiB))
    report, peak = verify_in_child(path)
    assert peak < PEAK_LIMIT, f"verifying took {peak / MiB:.0f} MiB"
    assert not report["ok"]
    assert report["error"].startswith("zeros.zip: member 'pack/data/events/0.json' expands ")
    assert report["error"].endswith(" times (zip bomb?); refusing the archive")


def test_a_legitimate_pack_with_a_large_evidence_file_verifies_in_bounded_memory(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    from offboard.cases.services import update_register_item
    from offboard.packs.export import iter_pack, start_export
    from tests.factories import upload

    size = 80 * MiB  # past every read limit: evidence files are only hashed
    assert size > max(packzip.READ_LIMITS.values())
    big = upload(cast["alice"], hashlib.sha256(b"large").digest() * (size // 32), "large.bin")
    update_register_item(
        actor=cast["alice"], item=case.deliverables.first(), values={}, evidence=[big]
    )
    plan = start_export(actor=cast["erin"], case=case)
    path = tmp_path / plan.filename
    with path.open("wb") as f:
        for chunk in iter_pack(plan):
            f.write(chunk)
    report, peak = verify_in_child(path)
    assert report["ok"], report_problems(report)
    assert peak < PEAK_LIMIT, f"verifying took {peak / MiB:.0f} MiB"
    (fixity,) = [c for c in report["checks"] if c["check"] == "fixity"]
    octets = int(fixity["summary"].split("(", 1)[1].split(" bytes", 1)[0].replace(",", ""))
    assert octets > size  # the large file was read and hashed


def test_the_read_limits_hold_a_real_pack_many_times_over(packs: BuiltPacks) -> None:
    """Every member the verifier reads is far under its limit, and 2,000 events with their
    proofs fit the memory budget: a real pack of that size is kept whole in memory."""
    _, members = members_of(packs.closed)
    largest: dict[str, int] = {}
    for path, content in members.items():
        limit = packzip.read_limit(path)
        if limit is not None:
            assert len(content) * 50 < limit, (path, len(content), limit)
            kind = fmt.kind_of(path) or path
            largest[kind] = max(largest.get(kind, 0), len(content))
    assert packzip.read_limit(fmt.CERTIFICATE) is None
    assert packzip.read_limit(fmt.file_path("0" * 64)) is None
    assert 2_000 * (largest["event"] + largest["proof"]) * 2 < packzip.MAX_KEPT_BYTES


def test_members_past_the_memory_budget_are_read_again_and_the_pack_still_verifies(
    packs: BuiltPacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packzip, "MAX_KEPT_BYTES", 0)
    archive = packzip.read_archive(packs.closed)
    try:
        case_json = archive.members[fmt.CASE_JSON]
        assert case_json._kept is None and case_json._source is not None
        assert hashlib.sha256(case_json.content or b"").hexdigest() == case_json.sha256
        assert archive.members[fmt.CERTIFICATE].content is None  # only hashed
    finally:
        archive.close()
    report = verify(packs.closed, key=packs.key(), tsa_roots=packs.roots())
    assert report.ok, problems(report)


def test_a_member_that_changes_on_disk_before_it_is_read_again_fails_its_check(
    packs: BuiltPacks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pack.zip"
    shutil.copy(packs.closed, path)
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/" + fmt.CASE_JSON))
    at = info.header_offset + 30 + len(info.filename.encode()) + info.compress_size // 2

    def change_the_file(run: Any) -> None:  # after the first pass, before the case check
        with path.open("r+b") as f:
            f.seek(at)
            byte = f.read(1)
            f.seek(at)
            f.write(bytes([byte[0] ^ 0xFF]))

    monkeypatch.setattr(packzip, "MAX_KEPT_BYTES", 0)
    monkeypatch.setattr(packverify, "CHECKS", [("tamper", change_the_file), *packverify.CHECKS])
    report = verify(path)
    assert not report.ok and report.error is None
    (case,) = [c for c in report.checks if c.name == "case"]
    assert case.problems == [
        "the case check could not complete: PackChanged: pack.zip: data/case.json cannot be "
        f"read again from the zip ({case.problems[0].split('(', 1)[1]}"
    ]


def test_a_member_read_again_must_hash_as_it_did(
    packs: BuiltPacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packzip, "MAX_KEPT_BYTES", 0)
    archive = packzip.read_archive(packs.closed)
    try:
        member = archive.members[fmt.CHECKPOINT]
        first = member.sha256
        member.sha256 = "0" * 64  # as if the first pass had hashed other bytes
        with pytest.raises(packzip.PackChanged) as changed:
            archive.text(fmt.CHECKPOINT)
        assert str(changed.value) == (
            f"closed.zip: data/checkpoint changed while it was being verified (its sha256 was "
            f"{'0' * 64}, now {first})"
        )
    finally:
        archive.close()
