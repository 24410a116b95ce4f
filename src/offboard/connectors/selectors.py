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
