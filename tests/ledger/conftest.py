"""Ledger fixtures: the local RFC 3161 TSAs of tests/tsa.py, mended after every test."""

from collections.abc import Iterator

import pytest

from tests.tsa import second_tsa, tsa

__all__ = ["reset_tsas", "second_tsa", "tsa"]


@pytest.fixture(autouse=True)
def reset_tsas(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that takes a session TSA down leaves it up for the next one."""
    yield
    for name in ("tsa", "second_tsa"):
        if name in request.fixturenames:
            request.getfixturevalue(name).up()
