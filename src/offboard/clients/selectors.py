"""Read queries for clients and contracts, always scoped to one organization."""

from django.db.models import Count, QuerySet

from offboard.clients.models import Client, Contact, Contract


def clients(org: object, search: str = "") -> QuerySet[Client]:
    qs = Client.objects.for_org(org).annotate(contract_count=Count("contracts", distinct=True))
    if search:
        qs = qs.filter(name__icontains=search)
    return qs.order_by("name")


def get_client(org: object, client_id: int) -> Client:
    return Client.objects.get_in_org(org, "client", pk=client_id)


def contacts(org: object, client: Client) -> QuerySet[Contact]:
    return Contact.objects.for_org(org).filter(client=client).order_by("role", "name")


def contracts(org: object, client: Client | None = None) -> QuerySet[Contract]:
    qs = Contract.objects.for_org(org).select_related("client").prefetch_related("documents")
    if client is not None:
        qs = qs.filter(client=client)
    return qs.order_by("client__name", "reference")


def get_contract(org: object, contract_id: int) -> Contract:
    return Contract.objects.get_in_org(org, "contract", pk=contract_id)


def get_contract_by_reference(org: object, reference: str) -> Contract:
    return Contract.objects.get_in_org(org, "contract", reference=reference)
