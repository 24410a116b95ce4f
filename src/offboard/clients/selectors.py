"""Read queries for clients and contracts, always scoped to one organization."""

from django.db.models import Count, Q, QuerySet

from offboard.clients.models import Client, Contact, Contract

OPEN_CASE_STATES = ("draft", "active", "closing")


def clients(org: object, search: str = "") -> QuerySet[Client]:
    """Clients with their contract, open-case and all-case counts; `search` matches the name,
    the legal name or a contact's email."""
    qs = Client.objects.for_org(org).annotate(
        contract_count=Count("contracts", distinct=True),
        open_case_count=Count("cases", filter=Q(cases__state__in=OPEN_CASE_STATES), distinct=True),
        case_count=Count("cases", distinct=True),
    )
    if search:
        matching = Client.objects.for_org(org).filter(
            Q(name__icontains=search)
            | Q(legal_name__icontains=search)
            | Q(contacts__email__icontains=search)
        )
        qs = qs.filter(pk__in=matching.values("pk"))
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


def get_contact(org: object, client: Client, contact_id: int) -> Contact:
    return Contact.objects.get_in_org(org, "contact", client=client, pk=contact_id)


def get_contract(org: object, contract_id: int) -> Contract:
    return Contract.objects.get_in_org(org, "contract", pk=contract_id)


def get_contract_by_reference(org: object, reference: str) -> Contract:
    return Contract.objects.get_in_org(org, "contract", reference=reference)
