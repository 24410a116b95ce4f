"""Bounds every API input must keep, checked once for all operations after the schemas have
parsed a request and before the view runs: integers a database column can hold, dates the
calendar arithmetic of the services cannot overflow, and text a database can store.

Each problem names its field (`offset`, `client_id`, `trigger_date`, `items.0.title`), as a
422 like any other invalid input: nothing is read or written with such a value.
"""

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from offboard.core.errors import ValidationFailed

INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # a 64-bit signed column (SQLite, PostgreSQL bigint)
# Plausible business dates, with room for the services' arithmetic (notice periods, retention
# windows of up to ten years) on either side: nothing in between can overflow a date.
DATE_MIN, DATE_MAX = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


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
