"""What an input may be, in one place for the API, the services and the staff forms.

Strict forms: a date is text `YYYY-MM-DD`, a date-time RFC 3339 text with a time zone, an
amount text with at most two decimals (`day`, `moment`, `amount`) — never a number, a boolean
or a value rounded into shape. The API's schemas (`core/schemas.py`: `Day`, `Moment`,
`Amount`) and the register services (`cases/services/registers.py`) parse with the same
functions, so both databases and every interface give the same answer.

Bounds, checked once for all API operations after the schemas have parsed a request and
before the view runs (`check_inputs`), and by the services and staff forms (`problems`):
integers a database column can hold, dates the calendar arithmetic of the services cannot
overflow, and text a database can store (no NUL, which PostgreSQL refuses and SQLite keeps).

Each problem names its field (`offset`, `client_id`, `trigger_date`, `items.0.title`), as a
422 like any other invalid input: nothing is read or written with such a value.
"""

import datetime as dt
import decimal
import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from offboard.core.errors import ValidationFailed

INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # a 64-bit signed column (SQLite, PostgreSQL bigint)
# Plausible business dates, with room for the services' arithmetic (notice periods, retention
# windows of up to ten years) on either side: nothing in between can overflow a date.
DATE_MIN, DATE_MAX = dt.date(1900, 1, 1), dt.date(2999, 12, 31)

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")  # below 10**12, as the column holds
_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
# The forms as the OpenAPI document states them (ECMA regular expressions).
DAY_PATTERN = f"^{_DAY.pattern}$"
AMOUNT_PATTERN = f"^{_AMOUNT.pattern}$"
DAY_FORM = "must be a date written YYYY-MM-DD, e.g. 2026-11-30"
MOMENT_FORM = "must be a date-time written as RFC 3339 with a time zone, e.g. 2026-11-30T12:00:00Z"
AMOUNT_FORM = (
    'must be an amount written as text, 0 or more with at most two decimals, e.g. "1200.00"'
)
ZONE_NEEDED = "needs a time zone (e.g. 2026-11-30T12:00:00Z)"


def day(value: object) -> dt.date:
    """A date from `YYYY-MM-DD` text (or a date), within bounds; ValueError says the problem.

    Numbers (epoch days or seconds), booleans, date-times and the other ISO 8601 forms
    (`20261130`, `2026-W48-1`) are refused rather than read as some date."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"{DAY_FORM}, without a time")
    if isinstance(value, dt.date):
        parsed = value
    elif isinstance(value, str) and _DAY.fullmatch(value):
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a day of the calendar") from None
    else:
        raise ValueError(DAY_FORM)
    for _, problem in problems(parsed, ""):
        raise ValueError(problem)
    return parsed


def moment(value: object) -> dt.datetime:
    """A time-zone-aware date-time from RFC 3339 text (or an aware date-time), within bounds."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str) and _MOMENT.fullmatch(value):
        try:
            parsed = dt.datetime.fromisoformat(value.upper())
        except ValueError:
            raise ValueError(f"'{value}' is not a time of the calendar") from None
    else:
        raise ValueError(MOMENT_FORM)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(ZONE_NEEDED)
    for _, problem in problems(parsed, ""):
        raise ValueError(problem)
    return parsed


def amount(value: object) -> decimal.Decimal:
    """An amount from text such as `1200.00` (or a Decimal) with at most two decimals, never
    rounded: `0.001` is refused, not stored as 0.00."""
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        if (
            not value.is_finite()
            or value.is_signed()
            or not isinstance(exponent, int)
            or exponent < -2
            or value >= 10**12
        ):
            raise ValueError(AMOUNT_FORM)
        return value
    if isinstance(value, str) and _AMOUNT.fullmatch(value):
        return decimal.Decimal(value)
    raise ValueError(AMOUNT_FORM)


def problems(value: Any, field: str) -> Iterator[tuple[str, str]]:
    """(field, problem) for every value out of bounds in `value`, a parsed input."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            yield field, f"must be between {INT_MIN} and {INT_MAX}"
    elif isinstance(value, dt.datetime):
        yield from _moment(value, field)
    elif isinstance(value, dt.date):
        if not DATE_MIN <= value <= DATE_MAX:
            yield field, f"must be between {DATE_MIN} and {DATE_MAX}"
    elif isinstance(value, str):
        yield from _text(value, field)
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from problems(getattr(value, name, None), _join(field, info.alias or name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from problems(item, _join(field, str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            yield from problems(item, _join(field, str(i)))


def _moment(value: dt.datetime, field: str) -> Iterator[tuple[str, str]]:
    try:
        day = value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    except OverflowError:
        day = dt.date.min
    if not DATE_MIN <= day <= DATE_MAX:
        yield field, f"must be between {DATE_MIN}T00:00:00Z and {DATE_MAX}T23:59:59Z"


def _text(value: str, field: str) -> Iterator[tuple[str, str]]:
    if "\x00" in value:
        yield field, "must not contain NUL characters"
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield field, "is not valid Unicode text"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# The names ninja gives a view's whole-model arguments: their fields are named on their own,
# as the schema errors name them (`title`, not `payload.title`).
_MODEL_ARGUMENTS = {"payload", "query", "filters", "ninja_pagination", "data", "body"}


def check_inputs(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for every API view, which it calls with the parsed inputs
    (`api.add_decorator(check_inputs, mode="operation")`)."""

    @functools.wraps(view)
    def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
        found: dict[str, list[str]] = {}
        for name, value in kwargs.items():
            prefix = "" if isinstance(value, BaseModel) and name in _MODEL_ARGUMENTS else name
            for field, problem in problems(value, prefix):
                found.setdefault(field or name, []).append(problem)
        if found:
            raise ValidationFailed(found)
        return view(request, *args, **kwargs)

    return wrapper
