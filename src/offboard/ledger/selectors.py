"""Read the event record."""

from django.db.models import QuerySet

from offboard.ledger.models import CaseEvent


def case_events(case: object) -> QuerySet[CaseEvent]:
    return CaseEvent.objects.filter(case=case).order_by("id")
