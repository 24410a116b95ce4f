"""The iCalendar writer: known-answer output, escaping, folding at 75 octets without splitting
a character, CRLF endings — checked by hand against RFC 5545 and read back by icalendar."""

import datetime as dt

import icalendar
import pytest

from offboard.calendar.ics import AllDayEvent, calendar, escape_text, fold

pytestmark = pytest.mark.offline

STAMP = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def physical_lines(body: bytes) -> list[bytes]:
    """The lines of an iCalendar stream, checked to end in CRLF, with no bare CR or LF."""
    assert body.endswith(b"\r\n")
    lines = body.split(b"\r\n")[:-1]
    assert not any(b"\r" in line or b"\n" in line for line in lines)
    return lines


def unfold(body: bytes) -> list[str]:
    """Content lines after unfolding (RFC 5545 §3.1: CRLF followed by one space or tab)."""
    text = body.decode("utf-8").replace("\r\n ", "").replace("\r\n\t", "")
    return text.split("\r\n")[:-1]


def test_a_small_calendar_is_exactly_as_expected():
    body = calendar(
        name="Offboard: Alice",
        description="Steps",
        stamp=STAMP,
        events=[
            AllDayEvent(
                uid="offboard-acme-step-7@offboard.example",
                day=dt.date(2026, 12, 4),
                summary="Revoke access (C-2026-0042, Northwind)",
                description="Line one\nLine two; done",
                url="https://offboard.example/cases/C-2026-0042/#step-7",
                categories=("Offboard", "Step"),
            )
        ],
    )
    assert body == (
        b"BEGIN:VCALENDAR\r\n"
        b"VERSION:2.0\r\n"
        b"PRODID:-//Offboard//Calendar feed//EN\r\n"
        b"CALSCALE:GREGORIAN\r\n"
        b"METHOD:PUBLISH\r\n"
        b"NAME:Offboard: Alice\r\n"
        b"X-WR-CALNAME:Offboard: Alice\r\n"
        b"DESCRIPTION:Steps\r\n"
        b"X-WR-CALDESC:Steps\r\n"
        b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n"
        b"X-PUBLISHED-TTL:PT1H\r\n"
        b"BEGIN:VEVENT\r\n"
        b"UID:offboard-acme-step-7@offboard.example\r\n"
        b"DTSTAMP:20261120T093000Z\r\n"
        b"DTSTART;VALUE=DATE:20261204\r\n"
        b"DTEND;VALUE=DATE:20261205\r\n"
        b"SUMMARY:Revoke access (C-2026-0042\\, Northwind)\r\n"
        b"TRANSP:TRANSPARENT\r\n"
        b"DESCRIPTION:Line one\\nLine two\\; done\r\n"
        b"URL:https://offboard.example/cases/C-2026-0042/#step-7\r\n"
        b"CATEGORIES:Offboard,Step\r\n"
        b"END:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a,b;c\\d", "a\\,b\\;c\\\\d"),
        ("one\r\ntwo\rthree\nfour", "one\\ntwo\\nthree\\nfour"),
        ("tab\tkept, bell\x07 and escape\x1b dropped", "tab\tkept\\, bell and escape dropped"),
        ("Ünïcödé — 日本語 ✓", "Ünïcödé — 日本語 ✓"),
    ],
)
def test_text_is_escaped_as_rfc_5545_says(raw, escaped):
    assert escape_text(raw) == escaped


@pytest.mark.parametrize("line", ["x" * 200, "é" * 100, "日" * 80, "a" + "😀" * 40, "ab" * 37])
def test_folding_keeps_every_line_within_75_octets_and_characters_whole(line):
    folded = fold(line).encode()
    lines = physical_lines(folded)
    assert all(len(physical) <= 75 for physical in lines)
    assert all(physical.startswith(b" ") for physical in lines[1:])
    for physical in lines:
        physical.decode("utf-8")  # a cut inside a character would not decode
    assert unfold(folded) == [line]


def test_a_line_of_exactly_75_octets_is_not_folded():
    assert fold("x" * 75) == "x" * 75 + "\r\n"
    assert fold("x" * 76) == "x" * 75 + "\r\n x\r\n"


def test_icalendar_reads_back_every_value_however_long_or_odd():
    summary = "Hand over the 'Ads; Analytics, Tag Manager' accounts \\ all of them — ✓ " * 3
    description = "First line\nSecond line, with; punctuation\n\nAfter a blank line 😀"
    body = calendar(
        name="Offboard: Zoë Ünïcode, Ltd; & Co",
        description="A, b; c",
        stamp=STAMP,
        events=[
            AllDayEvent(
                uid=f"offboard-acme-step-{n}@offboard.example",
                day=dt.date(2026, 12, n),
                summary=summary,
                description=description,
                url=f"https://offboard.example/cases/C-2026-0042/#step-{n}",
                categories=("Offboard", "Step, with comma"),
            )
            for n in (1, 2)
        ],
    )
    assert all(len(line) <= 75 for line in physical_lines(body))
    parsed = icalendar.Calendar.from_ical(body)
    assert str(parsed["DESCRIPTION"]) == "A, b; c"
    # icalendar does not know NAME (RFC 7986) nor X-WR-CALNAME: it keeps them as written.
    for name in ("NAME", "X-WR-CALNAME"):
        assert parsed[name].to_ical() == "Offboard: Zoë Ünïcode\\, Ltd\\; & Co".encode()
    found = parsed.walk("VEVENT")
    assert [str(e["UID"]) for e in found] == [
        "offboard-acme-step-1@offboard.example",
        "offboard-acme-step-2@offboard.example",
    ]
    first = found[0]
    assert str(first["SUMMARY"]) == summary
    assert str(first["DESCRIPTION"]) == description
    assert first.decoded("DTSTART") == dt.date(2026, 12, 1)
    assert first.decoded("DTEND") == dt.date(2026, 12, 2)
    assert first["DTSTART"].params["VALUE"] == "DATE"
    assert first.decoded("DTSTAMP") == STAMP
    assert str(first["URL"]) == "https://offboard.example/cases/C-2026-0042/#step-1"
    assert list(first["CATEGORIES"].cats) == ["Offboard", "Step, with comma"]


def test_the_last_day_of_the_calendar_has_no_end():
    body = calendar(
        name="n",
        description="d",
        stamp=STAMP,
        events=[AllDayEvent(uid="u@x", day=dt.date.max, summary="s")],
    )
    lines = unfold(body)
    assert "DTSTART;VALUE=DATE:99991231" in lines
    assert not any(line.startswith("DTEND") for line in lines)
