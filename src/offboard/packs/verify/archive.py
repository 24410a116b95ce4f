"""Reading an evidence pack's zip as hostile input: every member is stream-read and hashed,
never extracted; unsafe names, links, duplicates, encryption and zip bombs are refused, and
memory stays bounded whatever the pack holds.

What the verifier parses (events, proofs, the checkpoint, keys, tokens, manifests, case.json)
must be under a size limit for its kind, far above what a real pack holds and far below a
bomb; a member over it is listed in `unreadable`, never read. Up to MAX_KEPT_BYTES of those
members stay in memory after the first pass; the rest are read again from the zip when a check
asks for their content, and must hash as they did the first time (the bytes used are the bytes
hashed). Evidence files, the certificate and the README are only hashed.

Pure (standard library only), so the offline verifier needs no Django.
"""

from __future__ import annotations

import hashlib
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from offboard.packs.verify import layout as fmt

CHUNK = 1024 * 1024
KiB, MiB = 1024, 1024**2
MAX_MEMBERS = 500_000
MAX_TOTAL_BYTES = 64 * 1024**3  # all members, uncompressed
MAX_MEMBER_BYTES = 16 * 1024**3
MAX_RATIO = 500  # uncompressed / compressed, past RATIO_FLOOR; deflate tops out near 1030
RATIO_FLOOR = 1024 * 1024
# The largest member of each kind the verifier reads whole (a fixed path first, then its kind,
# as layout.kind_of names it). A real pack of 2,000 events holds events of ~2 KiB, proofs of
# ~3 KiB, a manifest of ~0.5 MiB and a case.json of a few hundred KiB.
READ_LIMITS: dict[str, int] = {
    fmt.BAGIT_TXT: 4 * KiB,
    fmt.BAG_INFO: 1 * MiB,
    "tag": 64 * MiB,  # the two manifests: one line per file (~150 bytes)
    "case": 64 * MiB,
    "event": 16 * MiB,
    "redacted": 4 * KiB,  # a leaf hash in hex
    "proof": 4 * MiB,  # embeds the signed checkpoint (a note is at most 1 MiB)
    "checkpoint": 1 * MiB,  # ledger.note.MAX_NOTE_SIZE
    "key": 64 * KiB,
    "token": 4 * MiB,
    "chain": 4 * MiB,
    "consistency": 64 * KiB,  # at most 130 lines of base64
}
MAX_KEPT_BYTES = 32 * MiB  # of those members, kept in memory in all (the rest re-read on use)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SUPPORTED = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
# Windows file attributes, in the low 16 bits of external_attr whatever system made the zip.
_DOS_DIRECTORY = 0x10
_DOS_DEVICE = 0x40
_DOS_REPARSE_POINT = 0x400  # a symbolic link, junction or mount point
_EMPTY_DEFLATE = 2  # bytes: what Java's ZipOutputStream writes for an empty deflated directory


class PackUnreadable(Exception):
    """The file cannot be read as a pack at all; the message is one line for the user."""


class PackChanged(PackUnreadable):
    """A member read again does not hash as it did when the pack was first read."""


def read_limit(path: str) -> int | None:
    """How large the member at `path` may be for the verifier to read it whole, or None when it
    is only hashed (evidence files, the certificate, the README, files outside the layout)."""
    if path in READ_LIMITS:
        return READ_LIMITS[path]
    kind = fmt.kind_of(path)
    return READ_LIMITS.get(kind) if kind is not None else None


class Member:
    """One member of the bag, read and hashed. `content` is its bytes for a member the verifier
    parses (kept in memory, or read again from the zip and checked against `sha256`), None for
    one that is only hashed."""

    __slots__ = ("_kept", "_source", "path", "sha256", "size")

    def __init__(
        self,
        path: str,
        size: int,
        sha256: str,
        content: bytes | None = None,
        source: _Reread | None = None,
    ) -> None:
        self.path = path  # relative to the bag's base directory
        self.size = size
        self.sha256 = sha256
        self._kept = content
        self._source = source

    @property
    def content(self) -> bytes | None:
        if self._kept is not None or self._source is None:
            return self._kept
        return self._source.reread(self)

    def __repr__(self) -> str:
        where = "kept" if self._kept is not None else "re-read" if self._source else "hashed"
        return f"Member({self.path!r}, {self.size}, {self.sha256[:12]}…, {where})"


@dataclass
class Archive:
    base: str
    members: dict[str, Member] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why
    source: _Reread | None = None  # holds the zip open while members need re-reading

    def text(self, path: str) -> str:
        """A parsed member as UTF-8 text; ValueError naming the file if it is not."""
        member = self.members[path]
        try:
            return (member.content or b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not valid UTF-8 (byte {exc.start})") from None

    def close(self) -> None:
        if self.source is not None:
            self.source.close()


class _Reread:
    """The open zip, to read members again that were hashed but not kept."""

    def __init__(self, zf: zipfile.ZipFile, label: str) -> None:
        self.zf = zf
        self.label = label
        self.infos: dict[str, zipfile.ZipInfo] = {}

    def reread(self, member: Member) -> bytes:
        info = self.infos[member.path]
        digest, parts = hashlib.sha256(), []
        try:
            for chunk in _stream(self.zf, info, self.label):
                digest.update(chunk)
                parts.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise PackChanged(
                f"{self.label}: {member.path} cannot be read again from the zip ({exc})"
            ) from None
        if digest.hexdigest() != member.sha256:
            raise PackChanged(
                f"{self.label}: {member.path} changed while it was being verified (its sha256 "
                f"was {member.sha256}, now {digest.hexdigest()})"
            )
        return b"".join(parts)

    def close(self) -> None:
        self.zf.close()


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


def _type_reason(info: zipfile.ZipInfo) -> str | None:
    """Why an entry is not a plain file or an empty directory, whatever system made the zip:
    the Unix file type in the high 16 bits of external_attr is read for every `create_system`
    (a link made on macOS or by a Windows tool is still a link), the Windows attributes in the
    low 16 bits too."""
    mode = info.external_attr >> 16
    windows = info.external_attr & 0xFFFF
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"is not a regular file (Unix file type {kind:#o})"
    if windows & _DOS_REPARSE_POINT:
        return "is a Windows reparse point (a symbolic link or junction)"
    if windows & _DOS_DEVICE:
        return "is not a regular file (Windows device attribute)"
    directory = info.filename.endswith("/")
    if (kind == stat.S_IFDIR or windows & _DOS_DIRECTORY) and not directory:
        return "is a directory whose name does not end in '/'"
    if directory:
        empty_deflate = (
            info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size <= _EMPTY_DEFLATE
        )
        if info.file_size > 0 or (info.compress_size > 0 and not empty_deflate):
            return (
                f"is a directory entry that carries data ({info.file_size:,} bytes, "
                f"{info.compress_size:,} compressed)"
            )
    return None


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
        why = _type_reason(info)
        if why:
            raise PackUnreadable(f"{label}: member {name!r} {why}")
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


def _stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> Iterator[bytes]:
    """A member's bytes in chunks, never more than it declares (zipfile checks the CRC)."""
    size = 0
    with zf.open(info) as stream:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > info.file_size:
                raise PackUnreadable(
                    f"{label}: member {info.filename!r} expands past its declared size (zip bomb?)"
                )
            yield chunk


def read_archive(path: Path, progress: Callable[[int], None] | None = None) -> Archive:
    """Open, vet and stream-read every member; PackUnreadable with a one-line reason when the
    file is not a zip, is truncated, or is unsafe. A member that fails to decompress, whose
    CRC does not match, or that is over its read limit is listed in `unreadable`, not raised."""
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
    source = _Reread(zf, label)
    try:
        archive = _read_members(zf, label, source, progress)
    except BaseException:
        zf.close()
        raise
    if source.infos:
        archive.source = source  # the zip stays open for the members read again on use
    else:
        zf.close()
    return archive


def _read_members(
    zf: zipfile.ZipFile, label: str, source: _Reread, progress: Callable[[int], None] | None
) -> Archive:
    infos = zf.infolist()
    archive = Archive(base=_check_entries(infos, label))
    prefix = archive.base + "/"
    total = kept = 0
    for info in infos:
        if info.is_dir():
            continue
        rel = info.filename[len(prefix) :]
        limit = read_limit(rel)
        if limit is not None and info.file_size > limit:
            archive.unreadable[rel] = (
                f"{rel} is {info.file_size:,} bytes, over the {limit:,}-byte limit for a file "
                "the verifier reads; it was not read"
            )
            continue
        keep = limit is not None and kept + info.file_size <= MAX_KEPT_BYTES
        digest, size, parts = hashlib.sha256(), 0, []
        try:
            for chunk in _stream(zf, info, label):
                size += len(chunk)
                total += len(chunk)
                if total > MAX_TOTAL_BYTES:
                    raise PackUnreadable(
                        f"{label}: members expand to more than {MAX_TOTAL_BYTES:,} bytes "
                        "(zip bomb?)"
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
        if keep:
            kept += size
            member = Member(rel, size, digest.hexdigest(), b"".join(parts))
        elif limit is not None:
            source.infos[rel] = info
            member = Member(rel, size, digest.hexdigest(), source=source)
        else:
            member = Member(rel, size, digest.hexdigest())
        archive.members[rel] = member
    return archive
