"""Schemas and helpers every API router shares: strict request bodies and their date, date-time
and amount types, references to users and files, errors, paging."""

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Annotated, Any

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import BeforeValidator, ConfigDict, WithJsonSchema
from pydantic_core import PydanticCustomError

from offboard.core import inputs
from offboard.core.api import ErrorOut
from offboard.core.errors import NotFound, ValidationFailed

MAX_PAGE_SIZE = 500

Sha256 = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        description="SHA-256 (64 hex digits) of a file uploaded with POST /evidence.",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    ),
]

EvidenceRefs = Annotated[
    list[Sha256],
    Field(
        max_length=200,
        description="Evidence files to attach, by SHA-256; upload each with POST /evidence first.",
    ),
]


def unset(**field: Any) -> Any:
    """A field a request may leave out (an update changes only what it sends); not nullable."""
    return Field(None, **field)


class Input(Schema):
    """Request bodies refuse fields they do not know, so a typo is an error, not a no-op, and
    take every value as JSON typed it (`strict`): `false` is not the number 0, `1` not `true`,
    `"30"` not 30. Dates, date-times and amounts are text in JSON: declare them `Day`,
    `Moment` and `Amount`, which read that text strictly (a plain `dt.date` field would refuse
    every value)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _parsed_by(parse: Callable[[object], Any], error_type: str) -> BeforeValidator:
    """Run one of `core.inputs`' parsers on the value as sent: its problem is the field's."""

    def validate(value: object) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise PydanticCustomError(error_type, "{problem}", {"problem": str(exc)}) from None

    return BeforeValidator(validate)


Day = Annotated[
    dt.date,
    _parsed_by(inputs.day, "date_form"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": inputs.DAY_PATTERN,
            "description": f"YYYY-MM-DD, from {inputs.DATE_MIN} to {inputs.DATE_MAX}.",
        }
    ),
]
Moment = Annotated[
    dt.datetime,
    _parsed_by(inputs.moment, "datetime_form"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Amount = Annotated[
    decimal.Decimal,
    _parsed_by(inputs.amount, "amount_form"),
    WithJsonSchema({"type": "string", "pattern": inputs.AMOUNT_PATTERN, "examples": ["1200.00"]}),
]


class UserRef(Schema):
    id: int = Field(description="User id.")
    username: str
    name: str = Field(description="Full name, or the username when none is set.")

    @staticmethod
    def resolve_name(obj: Any) -> str:
        return str(obj.get_full_name() or obj.username)


class EvidenceRef(Schema):
    sha256: str = Field(description="SHA-256 of the content; the file's identity.")
    name: str = Field(description="File name as uploaded.")
    size: int = Field(description="Size in bytes.")
    media_type: str = Field(description="Media type sniffed from the content, not the name.")
    uploaded_at: dt.datetime

    @staticmethod
    def resolve_name(obj: Any) -> str:
        return str(obj.original_name)


class ReasonIn(Input):
    reason: str = Field(min_length=1, max_length=5000, description="Why; kept in the record.")


def error_responses(*codes: int) -> dict[int, type[ErrorOut]]:
    """OpenAPI entries for the errors an operation may answer with (401 applies to all)."""
    return {code: ErrorOut for code in (401, *codes)}


def paginated(func: Callable[..., Any]) -> Callable[..., Any]:
    """`?limit=&offset=` paging; the answer is `{"items": [...], "count": total}`."""
    return paginate(LimitOffsetPagination, max_limit=MAX_PAGE_SIZE)(func)


def referenced(field: str, lookup: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Resolve an id given in a request body: an unknown one is a field error (422), not 404."""
    try:
        return lookup(*args, **kwargs)
    except NotFound as exc:
        raise ValidationFailed({field: [exc.message]}) from None
