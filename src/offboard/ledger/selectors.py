"""Read the event record."""

from typing import Any

from django.db.models import QuerySet

from offboard.ledger.models import LedgerEntry


def case_events(case: Any) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(org_id=case.org_id, case=case).order_by("index")
