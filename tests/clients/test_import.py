"""Importing clients, contacts and contracts from a CSV file: all of it or nothing, every
problem reported with its line and column (docs/import.md)."""

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from offboard.clients import csvfile
from offboard.clients.csvfile import COLUMNS, template_csv
from offboard.clients.imports import ImportInvalid, check_clients_csv
from offboard.clients.models import Client, Contact, Contract
from offboard.clients.services import import_clients_csv
from offboard.core.errors import PermissionDenied
from offboard.ledger.models import LedgerEntry

HEADER = ",".join(COLUMNS)


def row(**values: str) -> str:
    """One line of the file, with the values given and every other column empty."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([values.get(c, "") for c in COLUMNS])
    return out.getvalue()


def file_of(*rows: str, header: str = HEADER) -> str:
    return header + "\n" + "".join(rows)


CLIENT = row(record="client", client="Fabrikam Studio", legal_name="Fabrikam Studio Ltd")
CONTACT = row(
    record="contact",
    client="Fabrikam Studio",
    contact_name="Fiona Fabrikam",
    email="Fiona@Fabrikam.example",
    role="primary",
)
CONTRACT_VALUES = {
    "record": "contract",
    "client": "Fabrikam Studio",
    "contract_reference": "FAB-1",
    "service_type": "consulting",
    "fee_type": "fixed",
    "start_date": "2025-01-01",
    "end_date": "2026-12-31",
}
CONTRACT = row(**CONTRACT_VALUES)


def written() -> tuple[int, int, int, int]:
    return (
        Client.objects.count(),
        Contact.objects.count(),
        Contract.objects.count(),
        LedgerEntry.objects.count(),
    )


def problems_of(alice, source) -> list[tuple[int | None, str, str]]:
    """The problems the import reports, having checked that it wrote nothing."""
    before = written()
    with pytest.raises(ImportInvalid) as exc:
        import_clients_csv(actor=alice, source=source)
    assert written() == before
    assert exc.value.status == 422
    return [(p.line, p.column, p.message) for p in exc.value.problems]


# --- what a valid file adds -------------------------------------------------------------------


def test_a_valid_file_adds_every_client_contact_and_contract_each_with_its_event(alice):
    before = LedgerEntry.objects.count()
    result = import_clients_csv(
        actor=alice, source=file_of(CLIENT, CONTACT, CONTRACT), file_name="crm.csv"
    )
    assert result.summary() == "1 client, 1 contact and 1 contract"
    client = Client.objects.get(name="Fabrikam Studio")
    assert client.legal_name == "Fabrikam Studio Ltd" and client.org == alice.org
    contact = client.contacts.get()
    assert (contact.name, contact.email, contact.role) == (
        "Fiona Fabrikam",
        "fiona@fabrikam.example",
        "primary",
    )
    contract = client.contracts.get()
    assert (contract.reference, contract.start_date, contract.end_date) == (
        "FAB-1",
        dt.date(2025, 1, 1),
        dt.date(2026, 12, 31),
    )
    assert (contract.notice_period_days, contract.data_return_window_days) == (30, 30)
    events = list(LedgerEntry.objects.order_by("index").values_list("type", flat=True))[before:]
    assert events == ["client.created", "contact.added", "contract.created", "clients.imported"]
    imported = LedgerEntry.objects.get(type="clients.imported").data
    assert imported["file"]["name"] == "crm.csv" and len(imported["file"]["sha256"]) == 64
    assert imported["rows"] == 3
    assert imported["clients"] == [client.pk] and imported["contracts"] == [contract.pk]
    assert imported["contacts"] == [contact.pk]


def test_the_template_imports_as_it_is(alice, client_contract):
    result = import_clients_csv(actor=alice, source=template_csv().encode())
    assert result.ok and Client.objects.filter(name="Fabrikam Studio").exists()
    assert Contact.objects.filter(client__name="Fabrikam Studio").count() == 2


def test_the_example_in_the_docs_imports(alice, client_contract):
    docs = Path(__file__).resolve().parents[2] / "docs" / "import.md"
    example = docs.read_text().split("```csv\n", 1)[1].split("```", 1)[0]
    result = import_clients_csv(actor=alice, source=example)
    assert result.summary() == "1 client, 1 contact and 2 contracts"


def test_contacts_and_contracts_may_name_a_client_already_in_offboard(alice, client_contract):
    source = file_of(
        row(
            record="contact",
            client="Northwind Traders",
            contact_name="Lars Legal",
            email="legal@northwind.example",
            role="legal",
        ),
        row(
            record="contract",
            client="Northwind Traders",
            contract_reference="NW-2026-02",
            service_type="consulting",
            fee_type="time_and_materials",
            start_date="2026-02-01",
            notice_period_days="60",
            notice_received_at="2026-03-01T09:30:00+01:00",
        ),
    )
    import_clients_csv(actor=alice, source=source)
    client, _ = client_contract
    assert client.contacts.filter(role="legal").exists()
    contract = client.contracts.get(reference="NW-2026-02")
    assert contract.notice_period_days == 60
    assert contract.notice_received_at == dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)


def test_rows_may_come_in_any_order(alice):
    import_clients_csv(actor=alice, source=file_of(CONTRACT, CONTACT, CLIENT))
    assert Contract.objects.get().client.name == "Fabrikam Studio"


def test_a_utf8_file_with_or_without_a_bom_reads_the_same(alice):
    text = file_of(row(record="client", client="Zoë Café"))
    plain = check_clients_csv(alice.org, text.encode())
    with_bom = check_clients_csv(alice.org, b"\xef\xbb\xbf" + text.encode())
    as_text = check_clients_csv(alice.org, "\ufeff" + text)
    assert plain.ok and with_bom.ok and as_text.ok
    assert plain.clients == with_bom.clients == as_text.clients
    import_clients_csv(actor=alice, source=b"\xef\xbb\xbf" + text.encode())
    assert Client.objects.get().name == "Zoë Café"


def test_semicolons_crlf_header_case_and_quoted_lines_are_read(alice):
    source = (
        'Record;Client;Notes\r\nclient;Contoso;"Two lines;\r\nof notes"\r\nclient;Litware;\r\n\r\n'
    )
    import_clients_csv(actor=alice, source=source)
    assert Client.objects.get(name="Contoso").notes == "Two lines;\r\nof notes"
    assert Client.objects.filter(name="Litware").exists()


def test_checking_writes_nothing(alice):
    before = written()
    plan = check_clients_csv(alice.org, file_of(CLIENT, CONTACT, CONTRACT))
    assert plan.ok and len(plan.clients) == 1 and len(plan.contracts) == 1
    assert written() == before


# --- every problem, with its line and column, and nothing written -------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            file_of(CLIENT, header=HEADER + ",vat_number"),
            (1, "vat_number", "is not a column of the import"),
            id="unknown-column",
        ),
        pytest.param(
            "record,legal_name\nclient,X\n",
            (1, "client", "the file has no 'client' column"),
            id="missing-column",
        ),
        pytest.param(
            file_of(CLIENT, header=HEADER + ",email"),
            (1, "email", "is named twice"),
            id="column-twice",
        ),
        pytest.param(
            file_of(CLIENT, row(record="supplier", client="Y")),
            (3, "record", "'supplier' is not one of"),
            id="unknown-record",
        ),
        pytest.param(
            file_of(CLIENT, row(record="contact", client="Fabrikam Studio", contact_name="F")),
            (3, "email", "is required on a contact row"),
            id="required-value",
        ),
        pytest.param(
            "record,client,contact_name,role\ncontact,Acme,Ann,primary\n",
            (2, "email", "is required on a contact row (the file has no such column)"),
            id="required-column-for-the-record",
        ),
        pytest.param(
            file_of(CLIENT, CONTACT.replace("Fiona@Fabrikam.example", "fiona-at-fabrikam")),
            (3, "email", "'fiona-at-fabrikam' is not an email address"),
            id="email",
        ),
        pytest.param(
            file_of(CLIENT, CONTACT.replace("primary", "boss")),
            (3, "role", "'boss' is not one of: primary, legal, finance, technical"),
            id="choice",
        ),
        pytest.param(
            file_of(CLIENT, CONTRACT.replace("2025-01-01", "01/01/2025")),
            (3, "start_date", "must be a date written YYYY-MM-DD"),
            id="date-form",
        ),
        pytest.param(
            file_of(CLIENT, CONTRACT.replace("2026-12-31", "2026-02-30")),
            (3, "end_date", "'2026-02-30' is not a day of the calendar"),
            id="date-not-in-calendar",
        ),
        pytest.param(
            file_of(CLIENT, CONTRACT.replace("2026-12-31", "2024-12-31")),
            (3, "end_date", "2024-12-31 is before the start date 2025-01-01"),
            id="end-before-start",
        ),
        pytest.param(
            file_of(
                CLIENT,
                row(**{**CONTRACT_VALUES, "notice_period_days": "30.5"}),
            ),
            (3, "notice_period_days", "'30.5' is not a number of days from 0 to 3650"),
            id="days",
        ),
        pytest.param(
            file_of(
                CLIENT,
                row(**{**CONTRACT_VALUES, "notice_received_at": "2026-03-01T09:30:00"}),
            ),
            (3, "notice_received_at", "needs a time zone"),
            id="moment-without-zone",
        ),
        pytest.param(
            file_of(row(record="client", client="Fabrikam", email="x@y.example")),
            (2, "email", "is for contact rows; leave it empty on a client row"),
            id="value-for-another-record",
        ),
        pytest.param(
            file_of(row(record="client", client="F" * 201)),
            (2, "client", "is longer than 200 characters"),
            id="too-long",
        ),
        pytest.param(
            file_of(row(record="client", client="Fabri\x00kam")),
            (2, "client", "must not contain NUL characters"),
            id="nul",
        ),
        pytest.param(
            "record,client\nclient,A,B\n",
            (2, "", "has 3 values but the header names 2 columns"),
            id="too-many-values",
        ),
        pytest.param(
            'record,client\nclient,A\nclient,"B\n',
            (3, "", "cannot be read as CSV"),
            id="unclosed-quote",
        ),
        pytest.param(
            file_of(CONTACT),
            (2, "client", "no client named 'Fabrikam Studio' in this file or in Offboard"),
            id="unknown-client",
        ),
        pytest.param(
            file_of(CLIENT, CONTACT.replace("Fabrikam Studio", "fabrikam studio")),
            (3, "client", "did you mean 'Fabrikam Studio'?"),
            id="client-named-in-another-case",
        ),
        pytest.param(
            file_of(CLIENT, CLIENT),
            (3, "client", "'Fabrikam Studio' is added on line 2 already"),
            id="client-twice",
        ),
        pytest.param(
            file_of(CLIENT, CONTACT, CONTACT),
            (4, "email", "fiona@fabrikam.example is Fabrikam Studio's primary contact on line 3"),
            id="contact-twice",
        ),
        pytest.param(
            file_of(CLIENT, CONTRACT, CONTRACT),
            (4, "contract_reference", "contract 'FAB-1' is on line 3 already"),
            id="contract-twice",
        ),
        pytest.param("", (None, "", "is empty"), id="empty"),
        pytest.param(
            "\ufeffrecord,client\n".encode("utf-16"),
            (None, "", "is UTF-16 text"),
            id="utf-16",
        ),
        pytest.param(
            "record,client,notes\nclient,A,ok\nclient,B,caf\xe9 cr\xe8me\n".encode("latin-1"),
            (3, "notes", "is not UTF-8 text"),
            id="not-utf-8",
        ),
    ],
)
def test_each_problem_is_reported_at_its_line_and_column_and_nothing_is_written(
    alice, source, expected
):
    found = problems_of(alice, source)
    line, column, message = expected
    assert any(
        (p_line, p_column) == (line, column) and message in p_message
        for p_line, p_column, p_message in found
    ), found


def test_clients_and_contracts_already_in_offboard_are_duplicates(alice, client_contract):
    source = file_of(
        row(record="client", client="Northwind Traders"),
        row(
            record="contract",
            client="Northwind Traders",
            contract_reference="NW-2025-01",
            service_type="consulting",
            fee_type="fixed",
            start_date="2025-01-01",
        ),
        row(
            record="contact",
            client="Northwind Traders",
            contact_name="Nina",
            email="NINA@northwind.example",
            role="primary",
        ),
    )
    assert problems_of(alice, source) == [
        (
            2,
            "client",
            "a client named 'Northwind Traders' is already in Offboard: remove this row and "
            "name the client on its contact and contract rows",
        ),
        (
            3,
            "contract_reference",
            "contract 'NW-2025-01' is already in Offboard (with Northwind Traders): references "
            "are unique",
        ),
        (
            4,
            "email",
            "nina@northwind.example is already Northwind Traders's primary contact in Offboard",
        ),
    ]


def test_every_problem_of_the_file_is_reported_at_once_in_line_order(alice):
    source = file_of(
        CONTRACT.replace("2025-01-01", "tomorrow"),
        CLIENT.replace("Fabrikam Studio Ltd", "L" * 301),
        CONTACT.replace("primary", ""),
    )
    found = problems_of(alice, source)
    assert [(line, column) for line, column, _ in found] == [
        (2, "start_date"),
        (3, "legal_name"),
        (4, "role"),
    ]


def test_a_row_with_a_problem_is_still_checked_against_the_others(alice, client_contract):
    source = file_of(
        row(record="contact", client="Contoso", contact_name="C", email="c@", role="boss"),
        row(
            record="contract",
            client="Northwind Traders",
            contract_reference="NW-2025-01",
            service_type="consulting",
            fee_type="fixed",
            start_date="2025-13-01",
        ),
    )
    assert [(line, column) for line, column, _ in problems_of(alice, source)] == [
        (2, "client"),
        (2, "email"),
        (2, "role"),
        (3, "contract_reference"),
        (3, "start_date"),
    ]


def test_line_numbers_count_the_lines_a_quoted_value_runs_over(alice):
    source = file_of(
        row(record="client", client="Contoso", notes="one\ntwo\nthree"),
        row(record="client", client="Contoso"),
    )
    assert problems_of(alice, source)[0][:2] == (5, "client")


def test_a_file_past_the_size_limit_is_refused_unread(alice, monkeypatch):
    monkeypatch.setattr(csvfile, "MAX_BYTES", 100)
    source = file_of(*[CLIENT.replace("Studio", str(n)) for n in range(5)])
    assert problems_of(alice, source) == [
        (
            None,
            "",
            "is larger than the 100 bytes an import takes: split it into several files",
        )
    ]


def test_a_file_past_the_row_limit_is_refused_at_the_first_row_too_many(alice, monkeypatch):
    monkeypatch.setattr(csvfile, "MAX_ROWS", 3)
    rows = [row(record="client", client=f"Client {n}") for n in range(5)]
    assert problems_of(alice, file_of(*rows)) == [
        (5, "", "is past the 3 rows an import takes: split the file into several")
    ]


def test_the_error_names_the_count_and_the_first_problem(alice):
    with pytest.raises(ImportInvalid) as exc:
        import_clients_csv(actor=alice, source=file_of(CONTACT, CONTRACT))
    assert exc.value.message.startswith(
        "The file has 2 problems; nothing was imported. First: line 2, client: no client named"
    )
    assert exc.value.details["problems"][1]["line"] == 3
    assert "line 3: client" in exc.value.details["fields"]


def test_a_row_refused_while_writing_undoes_the_whole_import(alice, monkeypatch):
    """Another request adds a name after the check (the race the check cannot see): the
    service refuses that row, and the rows added before it are undone too."""
    from offboard.clients import services

    checked = services.check_clients_csv

    def check_then_race(org, source):
        plan = checked(org, source)
        services.create_client(actor=alice, name="Litware")  # committed with the import, or not
        return plan

    monkeypatch.setattr(services, "check_clients_csv", check_then_race)
    before = written()
    source = file_of(CLIENT, row(record="client", client="Litware"))
    with pytest.raises(ImportInvalid) as exc:
        import_clients_csv(actor=alice, source=source)
    assert [(p.line, p.column) for p in exc.value.problems] == [(3, "client")]
    assert "already exists" in exc.value.problems[0].message
    assert written() == before


# --- who may import -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bob", "oscar", "dave", "erin"])
def test_only_an_admin_may_import(cast, name):
    before = written()
    with pytest.raises(PermissionDenied) as exc:
        import_clients_csv(actor=cast[name], source=file_of(CLIENT))
    assert "clients.import" in exc.value.message
    assert written() == before
