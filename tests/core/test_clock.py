"""The pinned clock: `now()` answers the pinned time inside the block, moves forward only, and
is the real clock again after it."""

import datetime as dt

import pytest

from offboard.core import clock

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_a_pinned_clock_answers_its_time_and_moves_forward():
    with clock.pinned(START) as timeline:
        assert clock.now() == START and clock.today() == dt.date(2026, 3, 2)
        timeline.advance(hours=2)
        assert clock.now() == START + dt.timedelta(hours=2)
        timeline.to(START + dt.timedelta(days=3))
        assert clock.today() == dt.date(2026, 3, 5)
    assert abs(clock.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_a_pinned_clock_never_moves_back():
    with clock.pinned(START) as timeline:
        timeline.advance(days=1)
        with pytest.raises(ValueError, match="moves forward only"):
            timeline.to(START)
        assert clock.now() == START + dt.timedelta(days=1)


def test_a_pinned_time_needs_a_time_zone():
    with pytest.raises(ValueError, match="time zone"), clock.pinned(dt.datetime(2026, 3, 2, 9)):
        pass
