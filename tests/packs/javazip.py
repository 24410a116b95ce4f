"""Java's `java.util.zip.ZipInputStream` as a second, streaming zip reader for the tests: it reads
the local headers front to back and never the central directory, so it catches a zip that only
central-directory readers (Python's zipfile, unzip) can extract.

`Extract.java` runs through Java's source launcher (`java Extract.java …`, Java 11 or later), no
build step. Without `java` the tests skip with the reason, or fail when
OFFBOARD_REQUIRE_SERVICES=1.
"""

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

EXTRACT = Path(__file__).with_name("Extract.java")


@dataclass(frozen=True)
class JavaEntry:
    name: str
    size: int
    sha256: str
    path: Path | None  # the extracted bytes (None with digests_only)

    def read(self) -> bytes:
        assert self.path is not None
        return self.path.read_bytes()


def java_path() -> str:
    """The `java` binary, or a skip (a failure under OFFBOARD_REQUIRE_SERVICES=1)."""
    found = shutil.which("java")
    if found is None:
        reason = "java is not installed: Java's ZipInputStream cannot check the zip"
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return found


def java_extract(zip_path: Path, out: Path, *, digests_only: bool = False) -> list[JavaEntry]:
    """Every entry ZipInputStream reads from `zip_path`, in stream order; AssertionError with
    Java's own message when it cannot read the zip."""
    java = java_path()
    args = [java, str(EXTRACT), *(["--sha256"] if digests_only else []), str(zip_path), str(out)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"Java's ZipInputStream failed: {done.stderr.strip()}"
    entries = []
    for line in (out / "entries").read_text(encoding="ascii").splitlines():
        number, size, sha256, name = line.split(" ")
        entries.append(
            JavaEntry(
                name=bytes.fromhex(name).decode("utf-8"),
                size=int(size),
                sha256=sha256,
                path=None if digests_only else out / number,
            )
        )
    return entries
