"""The one place that reads the time, so tests can pin it.

`pinned(at)` makes `now()` answer a time of our choosing for the code inside the block (in
this thread only); the `Timeline` it yields moves that time forward and never back. The demo
replays weeks of work with it, so the events it writes keep the log in time order; a test
can use it to act at a chosen moment.
"""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import timezone


class Timeline:
    """A pinned "now" that only moves forward."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a pinned time needs a time zone")
        self.at = at

    def to(self, at: dt.datetime) -> dt.datetime:
        """Move to `at`; moving back would write events out of time order, so it is refused."""
        if at.tzinfo is None:
            raise ValueError("a pinned time needs a time zone")
        if at < self.at:
            raise ValueError(
                f"the clock moves forward only: {at.isoformat()} is before {self.at.isoformat()}"
            )
        self.at = at
        return at

    def advance(self, delta: dt.timedelta | None = None, **parts: float) -> dt.datetime:
        """Move forward by `delta` or by `timedelta(**parts)` (e.g. `advance(hours=2)`)."""
        step = delta if delta is not None else dt.timedelta(**parts)
        return self.to(self.at + step)


_pinned: ContextVar[Timeline | None] = ContextVar("offboard_pinned_clock", default=None)


@contextmanager
def pinned(at: dt.datetime) -> Iterator[Timeline]:
    """`now()` answers the timeline's time inside the block; the real clock again after it."""
    timeline = Timeline(at)
    token = _pinned.set(timeline)
    try:
        yield timeline
    finally:
        _pinned.reset(token)


def now() -> dt.datetime:
    timeline = _pinned.get()
    return timeline.at if timeline is not None else timezone.now()


def today() -> dt.date:
    return now().date()
