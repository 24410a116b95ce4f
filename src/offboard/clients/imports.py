"""Checking a clients import (docs/import.md) against its rules and the organization: every
value with the rules of the API and the services, references from contacts and contracts to
their client, duplicates in the file and in Offboard. The result is the plan the service
`import_clients_csv` carries out — or every problem, each with its line and column.

Reads only; nothing here writes.
"""

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from offboard.clients.csvfile import COLUMNS, Problem, Row, read_csv
from offboard.clients.models import Client, Contact, Contract, FeeType, ServiceType
from offboard.core.actor import Actor
from offboard.core.errors import ValidationFailed
from offboard.core.inputs import day, moment
from offboard.core.permissions import require
from offboard.core.validation import Errors

_WHOLE = re.compile(r"[0-9]{1,5}")

# Text columns: (the longest value, required) — as the API's ClientIn, ContactIn, ContractIn.
_TEXT = {
    "client": (200, True),
    "legal_name": (300, False),
    "client_reference": (64, False),
    "notes": (20000, False),
    "contact_name": (200, True),
    "phone": (40, False),
    "contract_reference": (64, True),
    "title": (200, False),
    "retention_terms": (20000, False),
}


@dataclass(frozen=True)
class NewClient:
    line: int
    name: str
    legal_name: str
    reference: str
    notes: str


@dataclass(frozen=True)
class NewContact:
    line: int
    client: str
    name: str
    email: str
    role: str
    phone: str


@dataclass(frozen=True)
class NewContract:
    line: int
    client: str
    reference: str
    title: str
    service_type: str
    fee_type: str
    start_date: dt.date
    end_date: dt.date | None
    notice_period_days: int
    data_return_window_days: int
    notice_received_at: dt.datetime | None
    retention_terms: str


@dataclass
class ClientImport:
    """What a file would add (in the order the service adds it), or why it cannot. A row
    with a problem stays in its list, so that references to it and duplicates of it are
    checked too; nothing is added unless there is no problem at all."""

    sha256: str
    rows: int = 0
    clients: list[NewClient] = field(default_factory=list)
    contacts: list[NewContact] = field(default_factory=list)
    contracts: list[NewContract] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Once imported: the ids of what was added ("clients", "contacts", "contracts").
    added: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return _summary(len(self.clients), len(self.contacts), len(self.contracts))

    def raise_if_invalid(self) -> None:
        if self.problems:
            raise ImportInvalid(self.problems)


class ImportInvalid(ValidationFailed):
    """A file with problems: nothing was written. Details list each problem (`problems`:
    line, column, message) and, like any invalid input, the fields (`line 4: email`)."""

    code = "invalid_import"

    def __init__(self, problems: list[Problem]) -> None:
        fields: dict[str, list[str]] = {}
        for p in problems:
            where = f"line {p.line}" if p.line is not None else "file"
            fields.setdefault(f"{where}: {p.column}" if p.column else where, []).append(p.message)
        n = len(problems)
        super().__init__(
            fields,
            f"The file has {n} problem{'s' if n != 1 else ''}; nothing was imported. "
            f"First: {problems[0]}.",
        )
        self.problems = problems
        self.details["problems"] = [p.as_dict() for p in problems]


def _summary(clients: int, contacts: int, contracts: int) -> str:
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'s' if count != 1 else ''}"

    return f"{n(clients, 'client')}, {n(contacts, 'contact')} and {n(contracts, 'contract')}"


def preview_clients_csv(*, actor: Actor, source: bytes | str) -> ClientImport:
    """What importing `source` would add, or its problems, for who may import (admins)."""
    require(actor, "clients.import")
    return check_clients_csv(actor.org, source)


def check_clients_csv(org: Any, source: bytes | str) -> ClientImport:
    """Check `source` completely; the plan lists every problem, or nothing is wrong."""
    raw = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
    plan = ClientImport(sha256=hashlib.sha256(raw).hexdigest())
    parsed = read_csv(source)
    plan.problems.extend(parsed.problems)
    plan.rows = len(parsed.rows)
    for row in parsed.rows:
        _check_row(row, plan)
    _check_references(org, plan)
    plan.problems.sort(key=lambda p: (p.line or 0, _column_order(p.column)))
    return plan


def _column_order(column: str) -> int:
    return list(COLUMNS).index(column) if column in COLUMNS else -1


def _check_row(row: Row, plan: ClientImport) -> None:
    if "record" in row.unreadable:
        return  # reported; what the row is cannot be known
    record = row.values.get("record", "")
    if record not in ("client", "contact", "contract"):
        shown = f"'{record}' is not one of" if record else "is required:"
        plan.problems.append(Problem(row.line, "record", f"{shown} client, contact, contract"))
        return
    for column, value in row.values.items():
        if value and record not in COLUMNS[column][0]:
            plan.problems.append(
                Problem(
                    row.line,
                    column,
                    f"is for {' and '.join(COLUMNS[column][0])} rows; leave it empty on a "
                    f"{record} row",
                )
            )
    check = _Values(row)
    if record == "client":
        client = NewClient(
            row.line,
            name=check.text("client"),
            legal_name=check.text("legal_name"),
            reference=check.text("client_reference"),
            notes=check.text("notes"),
        )
        plan.clients.append(client)
    elif record == "contact":
        contact = NewContact(
            row.line,
            client=check.text("client"),
            name=check.text("contact_name"),
            email=check.email("email"),
            role=check.choice("role", Contact.Role.values),
            phone=check.text("phone"),
        )
        plan.contacts.append(contact)
    else:
        plan.contracts.append(_contract(row, check))
    plan.problems.extend(check.problems)


def _contract(row: Row, check: "_Values") -> "NewContract":
    start = check.day("start_date", required=True)
    end = check.day("end_date", required=False)
    if start is not None and end is not None and end < start:
        check.add("end_date", f"{end} is before the start date {start}")
    return NewContract(
        row.line,
        client=check.text("client"),
        reference=check.text("contract_reference"),
        title=check.text("title"),
        service_type=check.choice("service_type", ServiceType.values),
        fee_type=check.choice("fee_type", FeeType.values),
        start_date=start or dt.date.min,
        end_date=end,
        notice_period_days=check.days("notice_period_days"),
        data_return_window_days=check.days("data_return_window_days"),
        notice_received_at=check.moment("notice_received_at"),
        retention_terms=check.text("retention_terms"),
    )


class _Values:
    """A row's values, each checked by the rules the services and the API apply."""

    def __init__(self, row: Row) -> None:
        self.row = row
        self.problems: list[Problem] = []

    def add(self, column: str, message: str) -> None:
        self.problems.append(Problem(self.row.line, column, message))

    def _value(self, column: str, *, required: bool) -> str:
        value = self.row.values.get(column, "")
        if required and not value and column not in self.row.unreadable:
            absent = "" if column in self.row.values else " (the file has no such column)"
            self.add(column, f"is required on a {self.row.values['record']} row{absent}")
        return value

    def _collect(self, errors: Errors) -> None:
        for column, messages in errors.fields.items():
            for message in messages:
                self.add(column, message)

    def text(self, column: str) -> str:
        longest, required = _TEXT[column]
        value = self._value(column, required=required)
        if value:
            errors = Errors()
            errors.text(column, value, max_length=longest)
            self._collect(errors)
        return value

    def email(self, column: str) -> str:
        value = self._value(column, required=True)
        if not value:
            return ""
        errors = Errors()
        email = errors.email(column, value)
        self._collect(errors)
        return email

    def choice(self, column: str, allowed: list[str]) -> str:
        value = self._value(column, required=True)
        if value:
            errors = Errors()
            errors.choice(column, value, allowed)
            self._collect(errors)
        return value

    def day(self, column: str, *, required: bool) -> dt.date | None:
        value = self._value(column, required=required)
        if not value:
            return None
        try:
            return day(value)
        except ValueError as exc:
            self.add(column, str(exc))
            return None

    def moment(self, column: str) -> dt.datetime | None:
        value = self._value(column, required=False)
        if not value:
            return None
        try:
            return moment(value)
        except ValueError as exc:
            self.add(column, str(exc))
            return None

    def days(self, column: str) -> int:
        """Whole days from 0 to 3650 (ten years) written as digits; empty means 30."""
        value = self._value(column, required=False)
        if not value:
            return 30
        if not _WHOLE.fullmatch(value) or int(value) > 3650:
            self.add(column, f"'{value}' is not a number of days from 0 to 3650")
            return 30
        return int(value)


def _check_references(org: Any, plan: ClientImport) -> None:
    """Each client added once and not already in Offboard; each contact and contract for a
    client of the file or of Offboard; no contract reference, nor a client's contact with
    the same email and role, twice."""
    existing = set(Client.objects.for_org(org).values_list("name", flat=True))
    first_line: dict[str, int] = {}
    for client in plan.clients:
        if not client.name:
            continue
        if client.name in existing:
            plan.problems.append(
                Problem(
                    client.line,
                    "client",
                    f"a client named '{client.name}' is already in Offboard: remove this row "
                    "and name the client on its contact and contract rows",
                )
            )
        elif client.name in first_line:
            plan.problems.append(
                Problem(
                    client.line,
                    "client",
                    f"'{client.name}' is added on line {first_line[client.name]} already",
                )
            )
        else:
            first_line[client.name] = client.line
    known = existing | set(first_line)
    by_folded = {name.casefold(): name for name in known}
    for item in _for_a_client(plan):
        if item.client and item.client not in known:
            near = by_folded.get(item.client.casefold())
            hint = f"; did you mean '{near}'?" if near else ": add a client row for it"
            plan.problems.append(
                Problem(
                    item.line,
                    "client",
                    f"no client named '{item.client}' in this file or in Offboard{hint}",
                )
            )
    _check_contacts(org, plan)
    _check_contracts(org, plan)


def _for_a_client(plan: ClientImport) -> "list[NewContact | NewContract]":
    return [*plan.contacts, *plan.contracts]


def _check_contacts(org: Any, plan: ClientImport) -> None:
    names = {c.client for c in plan.contacts}
    existing = {
        (client, email.lower(), role)
        for client, email, role in Contact.objects.for_org(org)
        .filter(client__name__in=names)
        .values_list("client__name", "email", "role")
    }
    seen: dict[tuple[str, str, str], int] = {}
    for contact in plan.contacts:
        key = (contact.client, contact.email, contact.role)
        if not all(key):
            continue
        if key in existing:
            plan.problems.append(
                Problem(
                    contact.line,
                    "email",
                    f"{contact.email} is already {contact.client}'s {contact.role} contact "
                    "in Offboard",
                )
            )
        elif key in seen:
            plan.problems.append(
                Problem(
                    contact.line,
                    "email",
                    f"{contact.email} is {contact.client}'s {contact.role} contact on line "
                    f"{seen[key]} already",
                )
            )
        else:
            seen[key] = contact.line


def _check_contracts(org: Any, plan: ClientImport) -> None:
    references = {c.reference for c in plan.contracts}
    existing = dict(
        Contract.objects.for_org(org)
        .filter(reference__in=references)
        .values_list("reference", "client__name")
    )
    seen: dict[str, int] = {}
    for contract in plan.contracts:
        if not contract.reference:
            continue
        if contract.reference in existing:
            plan.problems.append(
                Problem(
                    contract.line,
                    "contract_reference",
                    f"contract '{contract.reference}' is already in Offboard (with "
                    f"{existing[contract.reference]}): references are unique",
                )
            )
        elif contract.reference in seen:
            plan.problems.append(
                Problem(
                    contract.line,
                    "contract_reference",
                    f"contract '{contract.reference}' is on line {seen[contract.reference]} "
                    "already: references are unique",
                )
            )
        else:
            seen[contract.reference] = contract.line
