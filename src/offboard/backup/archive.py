"""What is inside a backup (a tar stream, encrypted by `crypto`), and how it is read back into a
private directory: only known member names, regular files, each hashed as it is written.

    database/offboard.sqlite3 | database/offboard.pgdump   the snapshot
    keys.json            every signing key's public half and validity (an auditor reads these)
    checkpoints.json     every signed checkpoint (size, root, signed note)
    files/<storage name> every stored file the snapshot references, as stored
    private-keys/<path>  OFFBOARD_KEY_DIR's files, only with --include-private-keys
    manifest.json        last: versions, engine, organizations, and every member's SHA-256
"""

import hashlib
import json
import os
import re
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from offboard.backup.crypto import BackupDamaged

MANIFEST = "manifest.json"
KEYS = "keys.json"
CHECKPOINTS = "checkpoints.json"
DATABASE = {"sqlite": "database/offboard.sqlite3", "postgresql": "database/offboard.pgdump"}
FILES = "files/"
PRIVATE_KEYS = "private-keys/"
FORMAT = "offboard-backup"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")
COPY = 1024 * 1024


def safe_member(name: str) -> bool:
    """A name this code writes: fixed names, or files/ and private-keys/ with plain parts."""
    if name in (MANIFEST, KEYS, CHECKPOINTS, *DATABASE.values()):
        return True
    if not name.startswith((FILES, PRIVATE_KEYS)) or len(name) > 1000:
        return False
    parts = PurePosixPath(name).parts[1:]
    return bool(parts) and all(_PART.match(p) for p in parts)


class _Hashing:
    """Reads through to `stream`, hashing and counting, and refuses bytes past `size`."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


class ArchiveWriter:
    """Adds members to a tar stream and remembers each one's SHA-256 for the manifest."""

    def __init__(self, sink: Any, progress: Any = None) -> None:
        self.tar = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed by close()
        self.members: dict[str, dict[str, Any]] = {}
        self.progress = progress

    def add(self, name: str, stream: Any, size: int, *, mode: int = 0o600) -> str:
        assert safe_member(name), name
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = mode
        hashing = _Hashing(stream)
        self.tar.addfile(info, hashing)  # raises if the stream ends before `size` bytes
        if stream.read(1):
            raise ValueError(f"{name}: more than the {size} bytes expected")
        sha = hashing.digest.hexdigest()
        self.members[name] = {"sha256": sha, "size": size}
        if self.progress:
            self.progress(size)
        return sha

    def add_bytes(self, name: str, data: bytes) -> str:
        import io

        return self.add(name, io.BytesIO(data), len(data), mode=0o644)

    def add_json(self, name: str, value: Any) -> str:
        return self.add_bytes(name, json_bytes(value))

    def close(self, manifest: dict[str, Any]) -> None:
        self.add_json(MANIFEST, {**manifest, "members": self.members})
        self.tar.close()


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def extract(source: Any, into: Path, name: str) -> dict[str, Any]:
    """Unpack the (decrypted) tar stream into `into`, refusing anything unexpected, then check
    every member against the manifest. Returns the manifest."""
    found: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for member in tar:
                if not member.isfile() or not safe_member(member.name):
                    raise BackupDamaged(
                        f"{name} holds an unexpected member {member.name!r}: it was not made "
                        "by `offboard backup`."
                    )
                if member.name in found:
                    raise BackupDamaged(f"{name} holds {member.name!r} twice.")
                target = into / member.name
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                stream = tar.extractfile(member)
                assert stream is not None
                digest = hashlib.sha256()
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    while chunk := stream.read(COPY):
                        digest.update(chunk)
                        out.write(chunk)
                found[member.name] = {
                    "sha256": digest.hexdigest(),
                    "size": member.size,
                    "mode": member.mode,
                }
    except tarfile.TarError as exc:
        raise BackupDamaged(f"{name}: its contents are not a valid archive ({exc}).") from None
    if MANIFEST not in found:
        raise BackupDamaged(f"{name} has no {MANIFEST}: it is incomplete.")
    try:
        manifest = json.loads((into / MANIFEST).read_bytes())
    except ValueError:
        raise BackupDamaged(f"{name}: its {MANIFEST} is not JSON.") from None
    if manifest.get("format") != FORMAT:
        raise BackupDamaged(f"{name}: its {MANIFEST} is not an Offboard backup manifest.")
    listed = manifest.get("members", {})
    held = {k: v for k, v in found.items() if k != MANIFEST}
    if set(listed) != set(held):
        missing = sorted(set(listed) - set(held))[:3]
        extra = sorted(set(held) - set(listed))[:3]
        raise BackupDamaged(
            f"{name}: its members and its manifest disagree (missing: {missing}, unlisted: "
            f"{extra})."
        )
    for member_name, facts in held.items():
        if (
            listed[member_name].get("sha256") != facts["sha256"]
            or listed[member_name].get("size") != (facts["size"])
        ):
            raise BackupDamaged(
                f"{name}: {member_name} does not match its SHA-256 in the manifest."
            )
    manifest["_modes"] = {k: v["mode"] for k, v in held.items()}
    return dict(manifest)
