"""Read the event record."""

from typing import Any

from django.db.models import QuerySet

from offboard.ledger.models import CaseEvent


def case_events(case: Any) -> QuerySet[CaseEvent]:
    return CaseEvent.objects.filter(case=case).order_by("id")
