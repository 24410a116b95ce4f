"""Clients, their contacts and contracts (with notice and documents)."""

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from django.http import HttpRequest
from ninja import Field, File, Router, Schema, Status, UploadedFile

from offboard.clients import csvfile, imports, selectors, services
from offboard.clients.models import Contact, FeeType, ServiceType
from offboard.core.api import BearerToken, actor_of
from offboard.core.schemas import Day, EvidenceRef, Input, Moment, error_responses, paginated
from offboard.core.scopes import scope

router = Router(tags=["clients"])

if TYPE_CHECKING:
    ContactRole: TypeAlias = str
    ServiceTypeChoice: TypeAlias = str
    FeeTypeChoice: TypeAlias = str
else:  # enums in the OpenAPI document, from the models' choices
    ContactRole = Literal[tuple(Contact.Role.values)]
    ServiceTypeChoice = Literal[tuple(ServiceType.values)]
    FeeTypeChoice = Literal[tuple(FeeType.values)]


class ClientOut(Schema):
    id: int
    name: str
    legal_name: str
    reference: str = Field(description="Your own reference for the client (CRM id, account code).")
    notes: str
    created_at: dt.datetime
    contract_count: int = Field(0, description="Number of contracts with the client.")


class ContactOut(Schema):
    id: int
    client_id: int
    name: str
    email: str
    role: ContactRole
    phone: str


class ContractOut(Schema):
    id: int
    client_id: int
    client_name: str
    reference: str
    title: str
    service_type: ServiceTypeChoice
    fee_type: FeeTypeChoice
    start_date: dt.date
    end_date: dt.date | None
    notice_period_days: int
    notice_received_at: dt.datetime | None = Field(
        description="When the termination or non-renewal notice was received."
    )
    data_return_window_days: int
    retention_terms: str
    documents: list[EvidenceRef]

    @staticmethod
    def resolve_client_name(obj: Any) -> str:
        return str(obj.client.name)


class ClientDetailOut(ClientOut):
    contacts: list[ContactOut]
    contracts: list[ContractOut]


class ClientIn(Input):
    name: str = Field(min_length=1, max_length=200)
    legal_name: str = Field("", max_length=300)
    reference: str = Field("", max_length=64)
    notes: str = Field("", max_length=20000)


class ContactIn(Input):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=254)
    role: ContactRole = Field(description="primary, legal, finance or technical.")
    phone: str = Field("", max_length=40)


class ContractIn(Input):
    reference: str = Field(min_length=1, max_length=64, description="Unique in the organization.")
    service_type: ServiceTypeChoice = Field(description="Decides the suggested playbook.")
    fee_type: FeeTypeChoice = Field(description="Decides which playbook steps apply.")
    start_date: Day
    end_date: Day | None = None
    title: str = Field("", max_length=200)
    notice_period_days: int = Field(30, ge=0, le=3650)
    notice_received_at: Moment | None = None
    data_return_window_days: int = Field(30, ge=0, le=3650)
    retention_terms: str = Field("", max_length=20000)


class NoticeIn(Input):
    received_at: Moment = Field(description="When the notice arrived (RFC 3339, with zone).")


class ImportedOut(Schema):
    clients: list[int] = Field(description="Ids of the clients added, in the file's order.")
    contacts: list[int]
    contracts: list[int]


class ClientImportOut(Schema):
    dry_run: bool
    sha256: str = Field(description="SHA-256 of the file as sent (recorded on the import).")
    rows: int = Field(description="Rows read (blank lines aside).")
    summary: str = Field(description='What the file adds: "2 clients, 3 contacts and 1 contract".')
    added: ImportedOut | None = Field(description="What was added; null on a dry run.")


@router.post(
    "/import",
    response={200: ClientImportOut, 201: ClientImportOut, **error_responses(403, 422)},
    summary="Import clients, contacts and contracts from a CSV file (multipart `file`), all or "
    "none",
    description="The format is in docs/import.md. Every problem of the file is a 422 listing "
    "each one in `error.details.problems` (`line`, `column`, `message`), and nothing is "
    "written. `dry_run=true` checks the file and answers 200 with what it would add. "
    "Admins only.",
    auth=BearerToken(uploads="clients.import"),  # the role is checked before the body is read
)
@scope("clients:write")
def import_clients(
    request: HttpRequest, file: UploadedFile = File(...), dry_run: bool = False
) -> Any:
    actor = actor_of(request)
    source = file.read(csvfile.MAX_BYTES + 1)  # one byte past the limit says it is too large
    if dry_run:
        plan = imports.preview_clients_csv(actor=actor, source=source)
        plan.raise_if_invalid()
    else:
        plan = services.import_clients_csv(actor=actor, source=source, file_name=file.name or "")
    body = {
        "dry_run": dry_run,
        "sha256": plan.sha256,
        "rows": plan.rows,
        "summary": plan.summary(),
        "added": None if dry_run else plan.added,
    }
    return Status(200 if dry_run else 201, body)


@router.get("", response={200: list[ClientOut], **error_responses()})
@paginated
def list_clients(request: HttpRequest, q: str = "") -> Any:
    return selectors.clients(actor_of(request).org, search=q)


@router.post("", response={201: ClientOut, **error_responses(403, 422)})
@scope("clients:write")
def create_client(request: HttpRequest, payload: ClientIn) -> Any:
    return Status(201, services.create_client(actor=actor_of(request), **payload.dict()))


@router.get(
    "/{client_id}",
    response={200: ClientDetailOut, **error_responses(404)},
    summary="A client with its contacts and contracts",
)
def get_client(request: HttpRequest, client_id: int) -> Any:
    org = actor_of(request).org
    client = selectors.get_client(org, client_id)
    contracts = list(selectors.contracts(org, client))
    return {
        **ClientOut.from_orm(client).dict(),
        "contract_count": len(contracts),
        "contacts": list(selectors.contacts(org, client)),
        "contracts": contracts,
    }


@router.post("/{client_id}/contacts", response={201: ContactOut, **error_responses(403, 404, 422)})
@scope("clients:write")
def add_contact(request: HttpRequest, client_id: int, payload: ContactIn) -> Any:
    actor = actor_of(request)
    client = selectors.get_client(actor.org, client_id)
    return Status(201, services.add_contact(actor=actor, client=client, **payload.dict()))


@router.get("/{client_id}/contracts", response={200: list[ContractOut], **error_responses(404)})
@paginated
def list_contracts(request: HttpRequest, client_id: int) -> Any:
    org = actor_of(request).org
    return selectors.contracts(org, selectors.get_client(org, client_id))


@router.post(
    "/{client_id}/contracts", response={201: ContractOut, **error_responses(403, 404, 422)}
)
@scope("clients:write")
def create_contract(request: HttpRequest, client_id: int, payload: ContractIn) -> Any:
    actor = actor_of(request)
    client = selectors.get_client(actor.org, client_id)
    return Status(201, services.create_contract(actor=actor, client=client, **payload.dict()))


@router.get("/contracts/{contract_id}", response={200: ContractOut, **error_responses(404)})
def get_contract(request: HttpRequest, contract_id: int) -> Any:
    return selectors.get_contract(actor_of(request).org, contract_id)


@router.post(
    "/contracts/{contract_id}/notice",
    response={200: ContractOut, **error_responses(403, 404, 422)},
    summary="Record when the termination or non-renewal notice was received",
)
@scope("clients:write")
def record_notice(request: HttpRequest, contract_id: int, payload: NoticeIn) -> Any:
    actor = actor_of(request)
    contract = selectors.get_contract(actor.org, contract_id)
    return services.record_notice(actor=actor, contract=contract, received_at=payload.received_at)


@router.post(
    "/contracts/{contract_id}/documents",
    response={201: EvidenceRef, **error_responses(403, 404, 422)},
    summary="Attach a signed contract, amendment or notice letter (multipart `file`)",
    auth=BearerToken(uploads="clients.write"),  # the role is checked before the body is read
)
@scope("clients:write")
def attach_document(request: HttpRequest, contract_id: int, file: UploadedFile = File(...)) -> Any:
    actor = actor_of(request)
    contract = selectors.get_contract(actor.org, contract_id)
    document = services.attach_contract_document(
        actor=actor, contract=contract, stream=file, name=file.name or ""
    )
    return Status(201, document)
