"""iCalendar (RFC 5545) text for a feed of all-day events: the standard library only.

What a calendar app needs from us is small — one VCALENDAR of all-day VEVENTs — and exact:
TEXT values escaped (§3.3.11), control characters dropped, every content line folded to at
most 75 octets without splitting a UTF-8 character (§3.1), CRLF line endings. A stable UID
per event makes a subscribing app update an event when its date moves, not add a second.
"""

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

CRLF = "\r\n"
MAX_OCTETS = 75  # per content line, excluding CRLF (RFC 5545 §3.1)
PRODID = "-//Offboard//Calendar feed//EN"
# Everything §3.3.11 does not allow in TEXT: the controls other than HTAB (LF is escaped first).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class AllDayEvent:
    uid: str
    day: dt.date
    summary: str
    description: str = ""
    url: str = ""
    categories: tuple[str, ...] = ()


def escape_text(value: str) -> str:
    """A TEXT value (§3.3.11): backslash, semicolon and comma escaped, newlines as `\\n`."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return _CONTROL.sub("", text.replace("\n", "\\n"))


def fold(line: str) -> str:
    """One content line as physical lines of at most 75 octets each, CRLF-terminated; a
    continuation starts with a space (§3.1). Cuts fall between characters, never inside one."""
    parts: list[str] = []
    current, size = "", 0
    for char in line:
        octets = len(char.encode())
        if size + octets > MAX_OCTETS:
            parts.append(current)
            current, size = " ", 1
        current += char
        size += octets
    parts.append(current)
    return CRLF.join(parts) + CRLF


def _date(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _uri(value: str) -> str:
    """A URI value is not TEXT (no escaping), but may not break its line."""
    return _CONTROL.sub("", value)


def _event(event: AllDayEvent, stamp: str) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{stamp}",
        f"DTSTART;VALUE=DATE:{_date(event.day)}",
    ]
    if event.day < dt.date.max:  # an all-day event ends the next day (exclusive)
        lines.append(f"DTEND;VALUE=DATE:{_date(event.day + dt.timedelta(days=1))}")
    lines += [f"SUMMARY:{escape_text(event.summary)}", "TRANSP:TRANSPARENT"]
    if event.description:
        lines.append(f"DESCRIPTION:{escape_text(event.description)}")
    if event.url:
        lines.append(f"URL:{_uri(event.url)}")
    if event.categories:
        lines.append("CATEGORIES:" + ",".join(escape_text(c) for c in event.categories))
    lines.append("END:VEVENT")
    return lines


def calendar(
    *,
    name: str,
    description: str,
    stamp: dt.datetime,
    events: Iterable[AllDayEvent],
    refresh: dt.timedelta = dt.timedelta(hours=1),
) -> bytes:
    """A whole VCALENDAR, UTF-8 encoded. `stamp` (DTSTAMP of every event) is when it was made;
    `refresh` how often a subscribing app should read it again (RFC 7986 and the common
    X-PUBLISHED-TTL)."""
    minutes = max(1, int(refresh.total_seconds() // 60))
    every = f"PT{minutes // 60}H" if minutes % 60 == 0 else f"PT{minutes}M"
    when = _utc(stamp)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"NAME:{escape_text(name)}",
        f"X-WR-CALNAME:{escape_text(name)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"X-WR-CALDESC:{escape_text(description)}",
        f"REFRESH-INTERVAL;VALUE=DURATION:{every}",
        f"X-PUBLISHED-TTL:{every}",
    ]
    for event in events:
        lines += _event(event, when)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) for line in lines).encode()
