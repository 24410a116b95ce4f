"""Our canonical JSON is byte-identical to the RFC 8785 reference implementation."""

import datetime as dt
import decimal

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from offboard.core.canonical import canonical_json, to_jsonable

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_json_equals_the_reference(value):
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:  # e.g. integers beyond ±2^53
        try:
            canonical_json(value)
        except rfc8785.CanonicalizationError as ours:
            assert type(ours) is type(exc)
            return
        raise AssertionError("the reference refuses this value but ours accepted it") from None
    assert canonical_json(value) == expected


def test_model_values_are_made_plain_first():
    value = {
        "at": dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "amount": decimal.Decimal("12.50"),
        "b": ["é", "\u2028", "\x00"],
    }
    assert canonical_json(value) == rfc8785.dumps(to_jsonable(value))
    assert canonical_json(value).startswith(b'{"amount":"12.50","at":"2026-11-25T10:00:00Z"')
