"""Clients, contacts and contracts: one function per action, one transaction, one event."""

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from typing import IO, Any

from django.db import IntegrityError, transaction

from offboard.accounts.models import Organization
from offboard.clients.csvfile import Problem
from offboard.clients.imports import ClientImport, ImportInvalid, check_clients_csv
from offboard.clients.models import Client, Contact, Contract, FeeType, ServiceType
from offboard.core.actor import Actor
from offboard.core.errors import ValidationFailed
from offboard.core.permissions import require
from offboard.core.validation import Errors
from offboard.evidence.services import atomic_with_files, store_file
from offboard.ledger.recorder import record_event


@contextlib.contextmanager
def _unique(field: str, message: str) -> Iterator[None]:
    """The check before a write cannot see a row another transaction is adding: if that one
    commits first, the unique constraint refuses this row — the same field error, not a 500."""
    try:
        with transaction.atomic():  # a savepoint, so the refusal leaves the outer one usable
            yield
    except IntegrityError:
        raise ValidationFailed({field: [message]}) from None


@transaction.atomic
def create_client(
    *, actor: Actor, name: str, legal_name: str = "", reference: str = "", notes: str = ""
) -> Client:
    require(actor, "clients.write")
    errors = Errors()
    name = errors.text("name", name, max_length=200)
    errors.text("legal_name", legal_name, max_length=300, required=False)
    errors.text("reference", reference, max_length=64, required=False)
    if name and Client.objects.filter(org=actor.org, name=name).exists():
        errors.add("name", f"a client named '{name}' already exists")
    errors.raise_if_any()
    with _unique("name", f"a client named '{name}' already exists"):
        client = Client.objects.create(
            org=actor.org,
            name=name,
            legal_name=legal_name.strip(),
            reference=reference.strip(),
            notes=notes or "",
        )
    record_event(actor=actor, type="client.created", data=client.as_event_data())
    return client


@transaction.atomic
def update_client(
    *,
    actor: Actor,
    client: Client,
    name: str,
    legal_name: str = "",
    reference: str = "",
    notes: str = "",
) -> Client:
    """Change a client's names, reference or notes; the event keeps the old values."""
    require(actor, "clients.write")
    errors = Errors()
    name = errors.text("name", name, max_length=200)
    legal_name = errors.text("legal_name", legal_name, max_length=300, required=False)
    reference = errors.text("reference", reference, max_length=64, required=False)
    if name and Client.objects.filter(org=actor.org, name=name).exclude(pk=client.pk).exists():
        errors.add("name", f"a client named '{name}' already exists")
    errors.raise_if_any()
    old = client.as_event_data()
    client.name, client.legal_name, client.reference = name, legal_name, reference
    client.notes = notes or ""
    with _unique("name", f"a client named '{name}' already exists"):
        client.save(update_fields=["name", "legal_name", "reference", "notes"])
    data = client.as_event_data()
    data["old"] = {k: v for k, v in old.items() if data.get(k) != v}
    record_event(actor=actor, type="client.updated", data=data)
    return client


@transaction.atomic
def add_contact(
    *, actor: Actor, client: Client, name: str, email: str, role: str, phone: str = ""
) -> Contact:
    require(actor, "clients.write")
    errors = Errors()
    name = errors.text("name", name, max_length=200)
    email = errors.email("email", email)
    errors.choice("role", role, Contact.Role.values)
    errors.text("phone", phone, max_length=40, required=False)
    errors.raise_if_any()
    contact = Contact.objects.create(
        org=actor.org, client=client, name=name, email=email, role=role, phone=phone or ""
    )
    record_event(actor=actor, type="contact.added", data=contact.as_event_data())
    return contact


@transaction.atomic
def update_contact(
    *, actor: Actor, contact: Contact, name: str, email: str, role: str, phone: str = ""
) -> Contact:
    """Change a contact's name, email, role or phone; the event keeps the old values."""
    require(actor, "clients.write")
    errors = Errors()
    name = errors.text("name", name, max_length=200)
    email = errors.email("email", email)
    errors.choice("role", role, Contact.Role.values)
    phone = errors.text("phone", phone, max_length=40, required=False)
    errors.raise_if_any()
    old = contact.as_event_data()
    contact.name, contact.email, contact.role, contact.phone = name, email, role, phone
    contact.save(update_fields=["name", "email", "role", "phone"])
    data = contact.as_event_data()
    data["old"] = {k: v for k, v in old.items() if data.get(k) != v}
    record_event(actor=actor, type="contact.updated", data=data)
    return contact


@transaction.atomic
def create_contract(
    *,
    actor: Actor,
    client: Client,
    reference: str,
    service_type: str,
    fee_type: str,
    start_date: dt.date,
    end_date: dt.date | None = None,
    title: str = "",
    notice_period_days: int = 30,
    notice_received_at: dt.datetime | None = None,
    data_return_window_days: int = 30,
    retention_terms: str = "",
) -> Contract:
    require(actor, "clients.write")
    errors = Errors()
    reference = errors.text("reference", reference, max_length=64)
    errors.choice("service_type", service_type, ServiceType.values)
    errors.choice("fee_type", fee_type, FeeType.values)
    if start_date is None:
        errors.add("start_date", "is required")
    if end_date is not None and start_date is not None and end_date < start_date:
        errors.add("end_date", f"{end_date} is before the start date {start_date}")
    errors.aware("notice_received_at", notice_received_at)
    errors.integer("notice_period_days", notice_period_days, minimum=0, maximum=3650)
    errors.integer("data_return_window_days", data_return_window_days, minimum=0, maximum=3650)
    if reference and Contract.objects.filter(org=actor.org, reference=reference).exists():
        errors.add("reference", f"a contract '{reference}' already exists")
    errors.raise_if_any()
    with _unique("reference", f"a contract '{reference}' already exists"):
        contract = Contract.objects.create(
            org=actor.org,
            client=client,
            reference=reference,
            title=title or "",
            service_type=service_type,
            fee_type=fee_type,
            start_date=start_date,
            end_date=end_date,
            notice_period_days=notice_period_days,
            notice_received_at=notice_received_at,
            data_return_window_days=data_return_window_days,
            retention_terms=retention_terms or "",
        )
    record_event(actor=actor, type="contract.created", data=contract.as_event_data())
    return contract


@transaction.atomic
def record_notice(*, actor: Actor, contract: Contract, received_at: dt.datetime) -> Contract:
    """Record when the termination or non-renewal notice was received."""
    require(actor, "clients.write")
    errors = Errors()
    if received_at is None:
        errors.add("received_at", "is required")
    errors.aware("received_at", received_at)
    errors.raise_if_any()
    old = contract.notice_received_at
    contract.notice_received_at = received_at
    contract.save(update_fields=["notice_received_at"])
    record_event(
        actor=actor,
        type="contract.notice_recorded",
        data={
            "contract_id": contract.pk,
            "notice_received_at": received_at,
            "old": {"notice_received_at": old},
        },
    )
    return contract


@atomic_with_files()
def attach_contract_document(
    *, actor: Actor, contract: Contract, stream: IO[bytes], name: str
) -> Any:
    require(actor, "clients.write")
    evidence = store_file(actor=actor, stream=stream, name=name, field="document")
    contract.documents.add(evidence)
    record_event(
        actor=actor,
        type="contract.document_attached",
        data={"contract_id": contract.pk, "document": evidence.as_event_data()},
        files=[evidence],
    )
    return evidence


@transaction.atomic
def import_clients_csv(
    *,
    actor: Actor,
    source: bytes | str,
    file_name: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ClientImport:
    """Add the clients, contacts and contracts of an import file (docs/import.md), all or
    none: every problem of the file is reported (`ImportInvalid`) before anything is written.

    Each object is added by the service that adds one — `client.created`, `contact.added`,
    `contract.created`, as if typed in — and `clients.imported` records the file itself
    (its sha256, what it added), all in this one transaction (decision 0019). `progress`
    is told (rows added, rows in all) as the rows are added."""
    require(actor, "clients.import")
    # Imports in one organization queue here: two cannot both find a name still free.
    Organization.objects.select_for_update(no_key=True).get(pk=actor.org.pk)
    plan = check_clients_csv(actor.org, source)
    plan.raise_if_invalid()
    clients = {
        c.name: c
        for c in Client.objects.for_org(actor.org).filter(
            name__in={c.client for c in plan.contacts} | {c.client for c in plan.contracts}
        )
    }
    added = plan.added = {"clients": [], "contacts": [], "contracts": []}
    total = len(plan.clients) + len(plan.contacts) + len(plan.contracts)

    def note(kind: str, pk: int) -> None:
        added[kind].append(pk)
        if progress is not None:
            progress(sum(len(ids) for ids in added.values()), total)

    for new in plan.clients:
        with _at_line(new.line, "client"):
            client = create_client(
                actor=actor,
                name=new.name,
                legal_name=new.legal_name,
                reference=new.reference,
                notes=new.notes,
            )
        clients[client.name] = client
        note("clients", client.pk)
    for person in plan.contacts:
        with _at_line(person.line, "contact"):
            contact = add_contact(
                actor=actor,
                client=clients[person.client],
                name=person.name,
                email=person.email,
                role=person.role,
                phone=person.phone,
            )
        note("contacts", contact.pk)
    for terms in plan.contracts:
        with _at_line(terms.line, "contract"):
            contract = create_contract(
                actor=actor,
                client=clients[terms.client],
                reference=terms.reference,
                service_type=terms.service_type,
                fee_type=terms.fee_type,
                start_date=terms.start_date,
                end_date=terms.end_date,
                title=terms.title,
                notice_period_days=terms.notice_period_days,
                notice_received_at=terms.notice_received_at,
                data_return_window_days=terms.data_return_window_days,
                retention_terms=terms.retention_terms,
            )
        note("contracts", contract.pk)
    record_event(
        actor=actor,
        type="clients.imported",
        data={"file": {"name": file_name, "sha256": plan.sha256}, "rows": plan.rows, **added},
    )
    return plan


# The services' field names as the file's columns.
_COLUMNS = {
    "client": {"name": "client", "reference": "client_reference"},
    "contact": {"name": "contact_name"},
    "contract": {"reference": "contract_reference"},
}


@contextlib.contextmanager
def _at_line(line: int, record: str) -> Iterator[None]:
    """A service's refusal of a row the check let through (another request added the same
    name meanwhile) is the file's problem on that line: the whole import is undone."""
    try:
        yield
    except ValidationFailed as exc:
        columns = _COLUMNS[record]
        raise ImportInvalid(
            [
                Problem(line, columns.get(name, name), message)
                for name, messages in exc.errors.items()
                for message in messages
            ]
        ) from None
