"""The local RFC 3161 TSA of tests/tsa.py, mended after every test (as in tests/ledger)."""

from tests.ledger.conftest import reset_tsas
from tests.tsa import tsa

__all__ = ["reset_tsas", "tsa"]
