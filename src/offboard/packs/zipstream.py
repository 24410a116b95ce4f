"""A streaming zip writer whose members every reader can extract, `java.util.zip.ZipInputStream`
and other streaming readers included. Standard library only.

Python's `zipfile`, writing to a stream that cannot seek, gives every member a data descriptor
(flag bit 3): the CRC-32 and sizes come after the data. Streaming readers need them before it
and refuse a STORED member that has one ("only DEFLATED entries can have EXT descriptor").
This writer never writes a data descriptor: every local header carries the CRC-32 and both
sizes, so they are known before a member's first byte goes out:

- `add_bytes` takes a member held in memory (small: text, JSON, proofs), deflated first when
  `compress` is true (always deflated then, even when that does not make it smaller);
- `add_stored` takes a large member STORED, its size and CRC-32 declared by the caller (read in
  a first pass with `crc32_of`), and streams its chunks as they come, never holding the whole
  member. The streamed bytes must add up to exactly the declared size and CRC-32, else
  `MemberChanged` is raised (the file changed between the two passes). The output is broken
  from then on: the writer refuses to go on.

Usage (each `add_*` and `finish` is a generator of output chunks; a member is written, and
recorded, only as its generator is consumed, one at a time and in order)::

    zs = ZipStream(date_time=(2026, 12, 4, 12, 0, 0))
    yield from zs.add_bytes("bag/bagit.txt", data, compress=True)   # returns a ZipMember
    crc, size = crc32_of(read_chunks())
    yield from zs.add_stored("bag/data/files/ab12…", size=size, crc32=crc, chunks=read_chunks())
    yield from zs.finish()                                           # the central directory
    zs.sha256_of("bag/bagit.txt")                                    # hex, of the member's bytes

The format is APPNOTE.TXT 6.3.x: names are UTF-8 (flag bit 11, always set); every member is
made by Unix (3) as a regular file with mode 0644 and carries the one DOS timestamp given;
ZIP64 extra fields are written exactly where a size or offset does not fit 32 bits (a value of
0xFFFFFFFF included, since that value means "see ZIP64"), and the ZIP64 end records when the
member count, the central directory's size or its offset does not fit. No other extra fields,
no comments: the same input gives the same bytes (for a given zlib).
"""

from __future__ import annotations

import hashlib
import re
import stat
import struct
import zlib
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import NamedTuple

STORED = 0
DEFLATED = 8
LIMIT_32 = 0xFFFFFFFF  # a 32-bit size or offset this large (or larger) goes to ZIP64
LIMIT_16 = 0xFFFF  # likewise for the member count in the end record
FLAG_UTF8 = 0x0800  # general purpose bit 11: the name is UTF-8
VERSION_NEEDED = 20  # 2.0: deflate
VERSION_NEEDED_ZIP64 = 45  # 4.5: ZIP64
VERSION_MADE_BY = (3 << 8) | 63  # made by Unix, to APPNOTE 6.3
EXTERNAL_ATTR = (stat.S_IFREG | 0o644) << 16  # a regular file, rw-r--r--
ZIP64_EXTRA_ID = 0x0001
FLUSH_AT = 1024 * 1024  # the central directory goes out in chunks of about this size

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header, 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory header, 46 bytes
_END = struct.Struct("<IHHHHIIH")  # end of central directory record, 22 bytes
_END64 = struct.Struct("<IQHHIIQQQQ")  # ZIP64 end of central directory record, 56 bytes
_LOCATOR64 = struct.Struct("<IIQI")  # ZIP64 end of central directory locator, 20 bytes
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
_END64_SIG, _LOCATOR64_SIG = 0x06064B50, 0x07064B50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ZipStreamError(ValueError):
    """A member cannot be written as asked (a bad name, a duplicate, a misuse of the writer)."""


class MemberChanged(ZipStreamError):
    """A STORED member's streamed bytes are not the size or CRC-32 declared for it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class Checksum(NamedTuple):
    crc32: int
    size: int


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One member as written: where, how, and the digests of its uncompressed bytes."""

    name: str
    method: int  # STORED or DEFLATED
    size: int  # uncompressed
    compressed_size: int
    crc32: int
    sha256: str  # hex
    offset: int  # of its local header

    @property
    def version_needed(self) -> int:
        return VERSION_NEEDED_ZIP64 if _needs_zip64(self) else VERSION_NEEDED


def crc32_of(chunks: Iterable[bytes]) -> Checksum:
    """The CRC-32 and size of a stream of chunks: the first pass before `add_stored`."""
    crc, size = 0, 0
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    return Checksum(crc, size)


def dos_date_time(date_time: tuple[int, ...]) -> tuple[int, int]:
    """(date, time) as MS-DOS stores them; seconds are rounded down to an even number."""
    if len(date_time) != 6 or not all(type(v) is int for v in date_time):
        raise ZipStreamError(
            f"date_time must be (year, month, day, hour, minute, second), not {date_time!r}"
        )
    year, month, day, hour, minute, second = date_time
    if not (
        1980 <= year <= 2107
        and 1 <= month <= 12
        and 1 <= day <= 31
        and 0 <= hour <= 23
        and 0 <= minute <= 59
        and 0 <= second <= 59
    ):
        raise ZipStreamError(f"date_time {date_time!r} cannot be stored in a zip (1980-2107)")
    return (year - 1980) << 9 | month << 5 | day, hour << 11 | minute << 5 | second // 2


def _needs_zip64(member: ZipMember) -> bool:
    return max(member.size, member.compressed_size, member.offset) >= LIMIT_32


def _encode_name(name: str) -> bytes:
    """The UTF-8 name; ZipStreamError for a name no careful reader would extract."""
    if not isinstance(name, str) or not name:
        raise ZipStreamError(f"a member name must be a non-empty string, not {name!r}")
    why = None
    if "\\" in name:
        why = "contains a backslash"
    elif name.startswith("/") or re.match(r"[A-Za-z]:", name):
        why = "is an absolute path"
    elif _CONTROL.search(name):
        why = "contains a control character"
    elif any(part in ("", ".", "..") for part in name.split("/")):
        why = "has an empty, '.' or '..' path segment (directories are not written)"
    if why:
        raise ZipStreamError(f"member name {name!r} {why}")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ZipStreamError(f"member name {name!r} is not valid Unicode ({exc.reason})") from None
    if len(encoded) > LIMIT_16:
        raise ZipStreamError(f"member name {name[:40]!r}… is over {LIMIT_16} bytes in UTF-8")
    return encoded


def local_header(member: ZipMember, date: int, time: int) -> bytes:
    """The local file header: CRC-32 and both sizes in it, in a ZIP64 extra field (both of
    them, as APPNOTE 4.5.3 asks of a local header) when either does not fit 32 bits."""
    name = member.name.encode("utf-8")
    size, csize, extra = member.size, member.compressed_size, b""
    if size >= LIMIT_32 or csize >= LIMIT_32:
        extra = struct.pack("<HHQQ", ZIP64_EXTRA_ID, 16, size, csize)
        size = csize = LIMIT_32
    fixed = _LOCAL.pack(
        _LOCAL_SIG, member.version_needed, FLAG_UTF8, member.method, time, date,
        member.crc32, csize, size, len(name), len(extra),
    )  # fmt: skip
    return fixed + name + extra


def central_header(member: ZipMember, date: int, time: int) -> bytes:
    """The central directory header: a ZIP64 extra field holds, in APPNOTE's order, only the
    values that do not fit their 32-bit field (which then reads 0xFFFFFFFF)."""
    name = member.name.encode("utf-8")
    fields: list[int] = []
    size, csize, offset = member.size, member.compressed_size, member.offset
    if size >= LIMIT_32:
        fields.append(size)
        size = LIMIT_32
    if csize >= LIMIT_32:
        fields.append(csize)
        csize = LIMIT_32
    if offset >= LIMIT_32:
        fields.append(offset)
        offset = LIMIT_32
    extra = b""
    if fields:
        extra = struct.pack(f"<HH{len(fields)}Q", ZIP64_EXTRA_ID, 8 * len(fields), *fields)
    fixed = _CENTRAL.pack(
        _CENTRAL_SIG, VERSION_MADE_BY, member.version_needed, FLAG_UTF8, member.method,
        time, date, member.crc32, csize, size, len(name), len(extra),
        0, 0, 0,  # comment length, disk number, internal attributes
        EXTERNAL_ATTR, offset,
    )  # fmt: skip
    return fixed + name + extra


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    """The end of central directory record, preceded by the ZIP64 end record and its locator
    when the count, size or offset does not fit (those fields then read 0xFFFF/0xFFFFFFFF)."""
    out = b""
    if count >= LIMIT_16 or cd_size >= LIMIT_32 or cd_offset >= LIMIT_32:
        end64_offset = cd_offset + cd_size
        out += _END64.pack(
            _END64_SIG, _END64.size - 12, VERSION_MADE_BY, VERSION_NEEDED_ZIP64, 0, 0,
            count, count, cd_size, cd_offset,
        )  # fmt: skip
        out += _LOCATOR64.pack(_LOCATOR64_SIG, 0, end64_offset, 1)
    count16 = min(count, LIMIT_16)
    return out + _END.pack(
        _END_SIG, 0, 0, count16, count16, min(cd_size, LIMIT_32), min(cd_offset, LIMIT_32), 0
    )


class ZipStream:
    """Writes one zip archive as a stream of byte chunks; see the module docstring."""

    def __init__(self, *, date_time: tuple[int, ...]) -> None:
        self._date, self._time = dos_date_time(date_time)
        self._members: dict[str, ZipMember] = {}
        self._offset = 0  # bytes handed out so far
        self._busy = False  # a member is being written
        self._broken: str | None = None  # why the output cannot be completed
        self._finished = False

    @property
    def bytes_written(self) -> int:
        return self._offset

    @property
    def members(self) -> list[ZipMember]:
        """The members written so far, in order."""
        return list(self._members.values())

    def sha256_of(self, name: str) -> str:
        """The SHA-256 (hex) of a written member's uncompressed bytes."""
        try:
            return self._members[name].sha256
        except KeyError:
            raise KeyError(f"no member {name!r} has been written") from None

    def add_bytes(
        self, name: str, data: bytes, *, compress: bool = True
    ) -> Generator[bytes, None, ZipMember]:
        """One member from memory: deflated if `compress`, else stored."""
        self._begin(name)
        try:
            raw = bytes(data)
            if compress:
                deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
                payload = deflater.compress(raw) + deflater.flush()
            else:
                payload = raw
            member = ZipMember(
                name=name,
                method=DEFLATED if compress else STORED,
                size=len(raw),
                compressed_size=len(payload),
                crc32=zlib.crc32(raw),
                sha256=hashlib.sha256(raw).hexdigest(),
                offset=self._offset,
            )
            del raw
            header = local_header(member, self._date, self._time)
            if len(payload) <= 64 * 1024:
                yield self._out(header + payload)
            else:
                yield self._out(header)
                yield self._out(payload)
        except BaseException:
            self._broken = self._broken or f"writing {name!r} did not complete"
            raise
        return self._end(member)

    def add_stored(
        self, name: str, *, size: int, crc32: int, chunks: Iterable[bytes]
    ) -> Generator[bytes, None, ZipMember]:
        """One STORED member streamed from `chunks`, whose total size and CRC-32 the caller
        declares; MemberChanged if the chunks do not match them (nothing past the declared
        size is ever handed out)."""
        self._begin(name)
        try:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ZipStreamError(f"{name}: size must be a non-negative integer, not {size!r}")
            if isinstance(crc32, bool) or not isinstance(crc32, int) or not 0 <= crc32 <= LIMIT_32:
                raise ZipStreamError(f"{name}: crc32 must be a 32-bit unsigned integer")
            offset = self._offset
            declared = ZipMember(name, STORED, size, size, crc32, "", offset)
            yield self._out(local_header(declared, self._date, self._time))
            crc, written, sha = 0, 0, hashlib.sha256()
            for chunk in chunks:
                if not chunk:
                    continue
                if written + len(chunk) > size:
                    raise MemberChanged(
                        name,
                        f"{name}: more bytes than the {size:,} declared (it changed since its "
                        "size and CRC-32 were read)",
                    )
                crc = zlib.crc32(chunk, crc)
                sha.update(chunk)
                written += len(chunk)
                yield self._out(chunk if isinstance(chunk, bytes) else bytes(chunk))
            if written != size:
                raise MemberChanged(
                    name,
                    f"{name}: {written:,} bytes streamed, {size:,} declared (it changed since "
                    "its size and CRC-32 were read)",
                )
            if crc != crc32:
                raise MemberChanged(
                    name,
                    f"{name}: the streamed bytes have CRC-32 {crc:08x}, {crc32:08x} was declared "
                    "(it changed since its size and CRC-32 were read)",
                )
            member = ZipMember(name, STORED, size, size, crc32, sha.hexdigest(), offset)
        except BaseException as exc:
            self._broken = self._broken or f"writing {name!r} did not complete ({exc})"
            raise
        return self._end(member)

    def finish(self) -> Generator[bytes, None, None]:
        """The central directory and the end records; the archive is complete once consumed."""
        self._check_usable()
        self._busy = True
        cd_offset = self._offset
        buffer: list[bytes] = []
        pending = 0
        for member in self._members.values():
            header = central_header(member, self._date, self._time)
            buffer.append(header)
            pending += len(header)
            if pending >= FLUSH_AT:
                yield self._out(b"".join(buffer))
                buffer, pending = [], 0
        if buffer:
            yield self._out(b"".join(buffer))
        yield self._out(end_records(len(self._members), cd_offset, self._offset - cd_offset))
        self._busy = False
        self._finished = True

    # --- bookkeeping ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._broken:
            raise ZipStreamError(f"the zip stream is broken: {self._broken}")
        if self._finished:
            raise ZipStreamError("the zip stream is finished: no more members can be written")
        if self._busy:
            raise ZipStreamError("a member is still being written: consume its chunks first")

    def _begin(self, name: str) -> None:
        self._check_usable()
        _encode_name(name)
        if name in self._members:
            raise ZipStreamError(f"member {name!r} is already in the zip")
        self._busy = True

    def _out(self, chunk: bytes) -> bytes:
        self._offset += len(chunk)
        return chunk

    def _end(self, member: ZipMember) -> ZipMember:
        self._members[member.name] = member
        self._busy = False
        return member
