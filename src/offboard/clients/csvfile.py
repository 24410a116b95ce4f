"""The clients import file (docs/import.md): its columns, its template, and reading it into
rows with the line each starts on. Reading checks the file as a file — size, encoding, the
header, the shape of each row; what the values mean is checked in `clients/imports.py`.

Nothing here touches the database.
"""

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import _reader

RECORDS = ("client", "contact", "contract")
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000

# Each column, the records that take a value in it, and what it holds (the template's help).
COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "record": (RECORDS, "What the row adds: client, contact or contract"),
    "client": (RECORDS, "The client's name; on a contact or contract row, the client it is for"),
    "legal_name": (("client",), "The client's registered name"),
    "client_reference": (("client",), "Your own reference for the client, e.g. the CRM id"),
    "notes": (("client",), "Notes on the client"),
    "contact_name": (("contact",), "The contact's name"),
    "email": (("contact",), "The contact's email address"),
    "role": (("contact",), "One of: primary, legal, finance, technical"),
    "phone": (("contact",), "The contact's phone number"),
    "contract_reference": (("contract",), "The contract's reference, unique in Offboard"),
    "title": (("contract",), "What the contract is for"),
    "service_type": (
        ("contract",),
        "One of: marketing_agency, managed_it, software_development, consulting, accounting",
    ),
    "fee_type": (("contract",), "One of: fixed, time_and_materials, retainer"),
    "start_date": (("contract",), "A date written YYYY-MM-DD"),
    "end_date": (("contract",), "A date written YYYY-MM-DD; empty for an open-ended contract"),
    "notice_period_days": (("contract",), "Whole days from 0 to 3650; empty means 30"),
    "data_return_window_days": (("contract",), "Whole days from 0 to 3650; empty means 30"),
    "notice_received_at": (
        ("contract",),
        "When notice was received: RFC 3339 with a time zone, e.g. 2026-11-30T09:00:00Z",
    ),
    "retention_terms": (("contract",), "What the contract says about keeping the client's data"),
}
REQUIRED_COLUMNS = ("record", "client")

# The template's example rows: one client with two contacts and a contract, and a contract
# for a client already in Offboard (a contact or contract row may name either).
EXAMPLE_ROWS: list[dict[str, str]] = [
    {
        "record": "client",
        "client": "Fabrikam Studio",
        "legal_name": "Fabrikam Studio Ltd",
        "client_reference": "CRM-1042",
        "notes": "Moved from the old CRM in 2026",
    },
    {
        "record": "contact",
        "client": "Fabrikam Studio",
        "contact_name": "Fiona Fabrikam",
        "email": "fiona@fabrikam.example",
        "role": "primary",
        "phone": "+44 20 7946 0000",
    },
    {
        "record": "contact",
        "client": "Fabrikam Studio",
        "contact_name": "Frank Fabrikam",
        "email": "legal@fabrikam.example",
        "role": "legal",
    },
    {
        "record": "contract",
        "client": "Fabrikam Studio",
        "contract_reference": "FAB-2025-01",
        "title": "Website and campaigns retainer",
        "service_type": "marketing_agency",
        "fee_type": "retainer",
        "start_date": "2025-01-01",
        "end_date": "2026-12-31",
        "notice_period_days": "30",
        "data_return_window_days": "30",
        "retention_terms": "Campaign files kept 12 months after the end, then deleted",
    },
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: where (line, column; None for the whole file or row)
    and what, in words that say how to fix it."""

    line: int | None
    column: str
    message: str

    def __str__(self) -> str:
        where = [f"line {self.line}" if self.line is not None else "file"]
        if self.column:
            where.append(self.column)
        return f"{', '.join(where)}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "message": self.message}


@dataclass(frozen=True)
class Row:
    line: int  # where the row starts (a quoted value may run over several lines)
    values: dict[str, str]  # column -> value, surrounding spaces removed; "" when empty
    unreadable: frozenset[str] = frozenset()  # columns whose value is reported already


@dataclass
class CsvFile:
    columns: list[str]
    rows: list[Row]
    problems: list[Problem]


def template_csv() -> str:
    """The template to download: the header and the example rows, with a BOM so that a
    spreadsheet opens it as UTF-8."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(EXAMPLE_ROWS)
    return "\ufeff" + out.getvalue()


def read_csv(source: bytes | str) -> CsvFile:
    """The header and the rows of `source`, with every problem of the file as a file."""
    found = CsvFile(columns=[], rows=[], problems=[])
    problems = found.problems
    size = len(source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source)
    if size > MAX_BYTES:
        problems.append(
            Problem(
                None,
                "",
                f"is larger than the {MAX_BYTES:,} bytes an import takes: split it into "
                "several files",
            )
        )
        return found
    text = _text(source, problems)
    if text is None:
        return found
    if not text.strip():
        problems.append(Problem(None, "", "is empty: start from the template"))
        return found
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        problems.append(Problem(1, "", f"cannot be read as CSV: {exc}"))
        return found
    found.columns = _header(header, problems)
    if any(column not in found.columns for column in REQUIRED_COLUMNS):
        return found  # rows cannot be told apart
    _rows(reader, found)
    return found


def _text(source: bytes | str, problems: list[Problem]) -> str | None:
    """The file's text without its BOM. Bytes that are not UTF-8 are kept as surrogates, so
    each value holding one is reported with its line and column (`_cell`)."""
    if isinstance(source, str):
        return source.removeprefix("\ufeff")
    if source.startswith((b"\xff\xfe", b"\xfe\xff")):
        problems.append(
            Problem(None, "", "is UTF-16 text: save it as “CSV UTF-8 (comma delimited)”")
        )
        return None
    return source.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")


def _missing(column: str) -> str:
    return f"the file has no '{column}' column; every file needs one (see the template)"


def _header(names: list[str], problems: list[Problem]) -> list[str]:
    """The header's column names, normalised (`Contact name` is `contact_name`)."""
    columns: list[str] = []
    for raw in names:
        name = "_".join(raw.strip().lower().replace("-", " ").split())
        if _bad_text(name):
            problems.append(Problem(1, "", f"column {len(columns) + 1}: {_bad_text(name)}"))
        elif not name:
            problems.append(Problem(1, "", f"column {len(columns) + 1} has no name"))
        elif name not in COLUMNS:
            problems.append(
                Problem(
                    1,
                    name,
                    f"is not a column of the import; the columns are: {', '.join(COLUMNS)}",
                )
            )
        elif name in columns:
            problems.append(Problem(1, name, "is named twice in the header"))
        columns.append(name)
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            problems.append(Problem(1, column, _missing(column)))
    return columns


def _rows(reader: "_reader", found: CsvFile) -> None:
    width = len(found.columns)
    # The columns whose values are read: known ones, each at its first place in the header.
    known = [
        c if c in COLUMNS and found.columns.index(c) == i else ""
        for i, c in enumerate(found.columns)
    ]
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            found.problems.append(Problem(line, "", f"cannot be read as CSV: {exc}"))
            return
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(found.rows) == MAX_ROWS:
            found.problems.append(
                Problem(
                    start,
                    "",
                    f"is past the {MAX_ROWS:,} rows an import takes: split the file into several",
                )
            )
            return
        if len(cells) > width:
            found.problems.append(
                Problem(
                    start,
                    "",
                    f"has {len(cells)} values but the header names {width} columns: a value "
                    "may hold the delimiter only inside double quotes",
                )
            )
            continue
        values, unreadable = {}, set()
        for column, cell in zip(known, cells, strict=False):
            if not column:
                continue
            values[column] = cell.strip()
            if problem := _bad_text(values[column]):
                found.problems.append(Problem(start, column, problem))
                values[column] = ""
                unreadable.add(column)
        found.rows.append(Row(start, values, frozenset(unreadable)))


def _bad_text(value: str) -> str:
    """What no database keeps: bytes that were not UTF-8, a NUL."""
    if any("\ud800" <= ch <= "\udfff" for ch in value):  # undecodable bytes, lone surrogates
        return (
            "is not UTF-8 text: save the file as “CSV UTF-8 (comma delimited)”, or with "
            "the encoding set to UTF-8"
        )
    if "\x00" in value:
        return "must not contain NUL characters"
    return ""
