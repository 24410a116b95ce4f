"""Reading an evidence pack's zip as hostile input: every member is stream-read and hashed,
never extracted; unsafe names, links, duplicates, encryption and zip bombs are refused.

Pure (standard library only), so the offline verifier needs no Django.
"""

from __future__ import annotations

import hashlib
import re
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from offboard.packs.verify.layout import kind_of

CHUNK = 1024 * 1024
MAX_MEMBERS = 500_000
MAX_TOTAL_BYTES = 64 * 1024**3  # all members, uncompressed
MAX_MEMBER_BYTES = 16 * 1024**3
MAX_KEPT_BYTES = 64 * 1024**2  # a member the verifier reads into memory (JSON, proofs, …)
MAX_RATIO = 500  # uncompressed / compressed, past RATIO_FLOOR; deflate tops out near 1030
RATIO_FLOOR = 1024 * 1024
# What the verifier parses is kept in memory; evidence files and the PDF are only hashed.
HASHED_ONLY = {"file", "certificate"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SUPPORTED = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


class PackUnreadable(Exception):
    """The file cannot be read as a pack at all; the message is one line for the user."""


@dataclass
class Member:
    path: str  # relative to the bag's base directory
    size: int
    sha256: str
    content: bytes | None  # kept for the members the verifier parses


@dataclass
class Archive:
    base: str
    members: dict[str, Member] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why

    def text(self, path: str) -> str:
        """A kept member as UTF-8 text; ValueError naming the file if it is not."""
        member = self.members[path]
        try:
            return (member.content or b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not valid UTF-8 (byte {exc.start})") from None


def _unsafe_reason(name: str) -> str | None:
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "is an absolute path"
    if _CONTROL.search(name):
        return "contains a control character"
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' path segment"
    return None


def _file_type(info: zipfile.ZipInfo) -> int:
    """The Unix file type bits, when the archive was made on a Unix-like system."""
    return stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0


def _check_entries(infos: list[zipfile.ZipInfo], label: str) -> str:
    """Refuse the archive before reading any member; return the bag's base directory."""
    if not infos:
        raise PackUnreadable(f"{label} is an empty zip archive")
    if len(infos) > MAX_MEMBERS:
        raise PackUnreadable(f"{label} has {len(infos)} members, over the {MAX_MEMBERS} limit")
    seen: set[str] = set()
    bases: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        why = _unsafe_reason(name)
        if why:
            raise PackUnreadable(f"{label}: member {name!r} {why}; refusing the archive")
        if name in seen:
            raise PackUnreadable(f"{label}: member {name!r} appears twice")
        seen.add(name)
        kind = _file_type(info)
        if kind == stat.S_IFLNK:
            raise PackUnreadable(f"{label}: member {name!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise PackUnreadable(f"{label}: member {name!r} is not a regular file")
        if info.flag_bits & 0x1:
            raise PackUnreadable(f"{label}: member {name!r} is encrypted")
        if info.compress_type not in _SUPPORTED:
            raise PackUnreadable(
                f"{label}: member {name!r} uses unsupported compression {info.compress_type}"
            )
        if info.file_size > MAX_MEMBER_BYTES:
            raise PackUnreadable(
                f"{label}: member {name!r} is {info.file_size:,} bytes, over the "
                f"{MAX_MEMBER_BYTES:,}-byte limit"
            )
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise PackUnreadable(
                f"{label}: member {name!r} expands {info.file_size // max(info.compress_size, 1)}"
                f" times (zip bomb?); refusing the archive"
            )
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise PackUnreadable(
                f"{label}: members expand to more than {MAX_TOTAL_BYTES:,} bytes (zip bomb?)"
            )
        bases.add(name.split("/", 1)[0])
    if len(bases) != 1:
        shown = ", ".join(sorted(bases)[:4])
        raise PackUnreadable(
            f"{label} must hold exactly one top-level directory (the bag), not: {shown}"
        )
    base = bases.pop()
    if base in seen:
        raise PackUnreadable(f"{label}: {base!r} is a file, not the bag's directory")
    return base


def read_archive(path: Path, progress: Callable[[int], None] | None = None) -> Archive:
    """Open, vet and stream-read every member; PackUnreadable with a one-line reason when the
    file is not a zip, is truncated, or is unsafe. A member that fails to decompress or whose
    CRC does not match is listed in `unreadable`, not raised."""
    label = path.name
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise PackUnreadable(
            f"{label} is not a zip archive, or it is truncated or corrupted ({exc})"
        ) from None
    except NotImplementedError as exc:
        raise PackUnreadable(
            f"{label} uses a zip feature this verifier does not read ({exc})"
        ) from None
    except (OSError, EOFError, ValueError, RuntimeError) as exc:
        raise PackUnreadable(f"cannot read {label}: {exc}") from None
    with zf:
        infos = zf.infolist()
        archive = Archive(base=_check_entries(infos, label))
        prefix = archive.base + "/"
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            rel = info.filename[len(prefix) :]
            keep = kind_of(rel) not in HASHED_ONLY
            if keep and info.file_size > MAX_KEPT_BYTES:
                archive.unreadable[rel] = (
                    f"{rel} is {info.file_size:,} bytes, over the {MAX_KEPT_BYTES:,}-byte "
                    "limit for a file the verifier reads"
                )
                continue
            digest, size, parts = hashlib.sha256(), 0, []
            try:
                with zf.open(info) as stream:
                    while chunk := stream.read(CHUNK):
                        size += len(chunk)
                        total += len(chunk)
                        if size > info.file_size or total > MAX_TOTAL_BYTES:
                            raise PackUnreadable(
                                f"{label}: member {info.filename!r} expands past its declared "
                                "size (zip bomb?)"
                            )
                        digest.update(chunk)
                        if keep:
                            parts.append(chunk)
                        if progress:
                            progress(len(chunk))
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                archive.unreadable[rel] = f"{rel} cannot be read from the zip ({exc})"
                continue
            except NotImplementedError as exc:
                archive.unreadable[rel] = f"{rel} cannot be decompressed ({exc})"
                continue
            archive.members[rel] = Member(
                rel, size, digest.hexdigest(), b"".join(parts) if keep else None
            )
    return archive
