"""Counts per key and hour, in the database (`security_count`), so every web process and host
shares them; nothing is kept in memory. One atomic UPSERT per count, as the portal's rate
limits do (offboard.portal.ratelimit). Rows of past windows are deleted when a key starts a
new window."""

from django.db import connection

from offboard.core import clock

WINDOW_SECONDS = 3600

_HIT = (
    "INSERT INTO security_count (key, period, count) VALUES (%s, %s, 1) "
    "ON CONFLICT (key, period) DO UPDATE SET count = security_count.count + 1 "
    "RETURNING count"
)


def current_window() -> int:
    return int(clock.now().timestamp() // WINDOW_SECONDS)


def hit(key: str) -> int:
    """Count one for `key` in the current hour; the hour's count so far."""
    window = current_window()
    with connection.cursor() as cursor:
        cursor.execute(_HIT, [key[:100], window])
        count = int(cursor.fetchone()[0])
        if count == 1:  # this key's first count of the hour: forget past hours
            cursor.execute("DELETE FROM security_count WHERE period < %s", [window - 1])
    return count
