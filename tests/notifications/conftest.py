"""Fixtures of the email tests: a real SMTP server on loopback (tests/smtp.py) and the
local time-stamping authority (tests/tsa.py)."""

from tests.smtp import smtp
from tests.tsa import tsa

__all__ = ["smtp", "tsa"]
