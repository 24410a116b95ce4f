"""Rate limits on the portal, per IP address and per link, in requests per calendar minute.

The counts are rows of `portal_rate_count`, incremented with one atomic UPSERT, so several
web processes (and hosts) share them; nothing is kept in memory. Rows of past minutes are
deleted when a key starts a new minute.
"""

import hashlib
import math
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from offboard.core import clock

_HIT = (
    "INSERT INTO portal_rate_count (key, minute, count) VALUES (%s, %s, 1) "
    "ON CONFLICT (key, minute) DO UPDATE SET count = portal_rate_count.count + 1 "
    "RETURNING count"
)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the current minute ends


def _minute_and_rest() -> tuple[int, int]:
    seconds = clock.now().timestamp()
    minute = int(seconds // 60)
    return minute, max(1, math.ceil((minute + 1) * 60 - seconds))


def hit(key: str, *, limit: int) -> Verdict:
    """Count one request for `key`; refused once the minute's count passes `limit` (0: none)."""
    if limit <= 0:
        return Verdict(True, 0)
    minute, rest = _minute_and_rest()
    with connection.cursor() as cursor:
        cursor.execute(_HIT, [key[:100], minute])
        count = int(cursor.fetchone()[0])
        if count == 1:  # this key's first request of the minute: forget past minutes
            cursor.execute("DELETE FROM portal_rate_count WHERE minute < %s", [minute - 1])
    return Verdict(count <= limit, rest)


def check_request(ip: str | None, token: str | None) -> Verdict:
    """Count a portal request against its address's limit and its link's; the stricter wins."""
    verdicts = [hit(f"ip:{ip or 'unknown'}", limit=settings.OFFBOARD_PORTAL_RATE_PER_IP)]
    if token:
        # Never the token itself (it is the credential): a prefix of its SHA-256 is enough.
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        verdicts.append(hit(f"link:{digest}", limit=settings.OFFBOARD_PORTAL_RATE_PER_LINK))
    refused = [v for v in verdicts if not v.allowed]
    return refused[0] if refused else Verdict(True, 0)
