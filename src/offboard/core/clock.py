"""The one place that reads the time, so tests can pin it."""

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()


def today() -> dt.date:
    return now().date()
