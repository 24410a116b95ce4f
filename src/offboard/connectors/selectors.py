"""Reading connections and the accounts linked to access grants."""

from typing import Any

from django.db.models import QuerySet

from offboard.connectors.models import Connection, LinkedAccount


def connections(org: Any) -> QuerySet[Connection]:
    return Connection.objects.for_org(org).order_by("name", "id")


def connection_named(org: Any, name: str) -> Connection | None:
    """By name, or by its public id."""
    found = connections(org).filter(name=name).first()
    if found is None:
        try:
            found = connections(org).filter(public_id=name).first()
        except Exception:  # not a UUID
            found = None
    return found


def linked_accounts(grant: Any) -> QuerySet[LinkedAccount]:
    return LinkedAccount.objects.filter(org_id=grant.org_id, grant=grant).select_related(
        "connection"
    )


def access_back(org: Any, owner: Any = None, *, limit: int = 200) -> list[LinkedAccount]:
    """Access that came back after its case closed: linked accounts whose last re-check read
    them present (`connectors/recheck.py`), on closed cases — of `owner`'s cases, or of every
    case of the organization with `owner` None (admins; the escalations). One query."""
    qs = LinkedAccount.objects.filter(
        org=org, present_since__isnull=False, grant__case__state="closed"
    )
    if owner is not None:
        qs = qs.filter(grant__case__owner=owner)
    return list(
        qs.select_related("connection", "grant", "grant__case", "grant__case__client").order_by(
            "present_since", "id"
        )[:limit]
    )
