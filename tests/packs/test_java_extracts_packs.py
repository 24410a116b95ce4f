"""A real evidence pack is extractable by streaming readers too: Java's ZipInputStream reads every
member of the closed and the interim pack with the bytes Python's zipfile reads."""

import zipfile
from pathlib import Path

import pytest

from tests.packs.conftest import BuiltPacks
from tests.packs.javazip import java_extract

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline


@pytest.mark.parametrize("which", ["closed", "interim"])
def test_java_zipinputstream_extracts_every_member_of_a_pack(
    packs: BuiltPacks, tmp_path: Path, which: str
) -> None:
    pack = getattr(packs, which)
    extracted = java_extract(pack, tmp_path / "java")
    with zipfile.ZipFile(pack) as zf:
        expected = [(i.filename, zf.read(i)) for i in zf.infolist()]
    assert [e.name for e in extracted] == [name for name, _ in expected]
    for entry, (name, content) in zip(extracted, expected, strict=True):
        assert entry.read() == content, f"{name}: Java read other bytes than zipfile"
