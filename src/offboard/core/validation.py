"""Collect field errors so an action reports every problem at once, then raises."""

import re
from collections.abc import Iterable
from typing import Any

from offboard.core.errors import ValidationFailed
from offboard.core.inputs import problems

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, problem: str) -> None:
        self.fields.setdefault(field, []).append(problem)

    def text(self, field: str, value: Any, *, max_length: int, required: bool = True) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.add(field, "must be text")
            return ""
        value = value.strip()
        if required and not value:
            self.add(field, "is required")
        elif len(value) > max_length:
            self.add(field, f"is longer than {max_length} characters")
        for _, problem in problems(value, field):  # NUL, broken Unicode: what no database keeps
            self.add(field, problem)
        return value

    def email(self, field: str, value: Any) -> str:
        value = self.text(field, value, max_length=254)
        if value and not _EMAIL.match(value):
            self.add(field, f"'{value}' is not an email address")
        return value.lower()

    def choice(self, field: str, value: Any, allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        if value not in allowed:
            self.add(field, f"'{value}' is not one of: {', '.join(allowed)}")

    def integer(self, field: str, value: Any, *, minimum: int, maximum: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            self.add(field, "must be a whole number")
        elif not minimum <= value <= maximum:
            self.add(field, f"must be between {minimum} and {maximum}")

    def aware(self, field: str, value: Any) -> None:
        """A date-time must carry its time zone; a naive one is ambiguous evidence."""
        if value is not None and getattr(value, "tzinfo", None) is None:
            self.add(field, "needs a time zone (e.g. 2026-11-30T12:00:00Z)")

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationFailed(self.fields)
