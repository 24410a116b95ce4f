"""POST /api/v1/clients/import: a CSV file as multipart `file`, all or none; `dry_run=true`
checks it; each problem in `error.details.problems` with its line and column."""

from offboard.clients.models import Client
from offboard.ledger.models import LedgerEntry
from tests.api.conftest import api  # noqa: F401 (the fixture)
from tests.clients.test_import import CLIENT, CONTACT, CONTRACT, file_of, written

SOURCE = file_of(CLIENT, CONTACT, CONTRACT).encode()


def test_an_admin_imports_a_file_and_gets_the_ids_of_what_was_added(api):  # noqa: F811
    before = written()
    response = api("alice").upload("/clients/import", SOURCE, "crm.csv")
    assert response.status_code == 201, response.content
    body = response.json()
    client = Client.objects.get(name="Fabrikam Studio")
    assert body["dry_run"] is False and body["rows"] == 3
    assert body["summary"] == "1 client, 1 contact and 1 contract"
    assert body["added"] == {
        "clients": [client.pk],
        "contacts": [client.contacts.get().pk],
        "contracts": [client.contracts.get().pk],
    }
    assert written()[3] == before[3] + 4
    assert (
        LedgerEntry.objects.get(type="clients.imported").data["file"]["sha256"] == (body["sha256"])
    )


def test_a_dry_run_answers_what_would_be_added_and_writes_nothing(api):  # noqa: F811
    before = written()
    response = api("alice").upload("/clients/import?dry_run=true", SOURCE, "crm.csv")
    assert response.status_code == 200, response.content
    assert response.json()["added"] is None
    assert response.json()["summary"] == "1 client, 1 contact and 1 contract"
    assert written() == before


def test_problems_are_a_422_listing_each_with_its_line_and_column(api):  # noqa: F811
    before = written()
    source = file_of(CLIENT, CONTACT.replace("primary", "boss"), CONTRACT, CONTRACT).encode()
    response = api("alice").upload("/clients/import", source, "crm.csv")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_import"
    assert [(p["line"], p["column"]) for p in error["details"]["problems"]] == [
        (3, "role"),
        (5, "contract_reference"),
    ]
    assert error["details"]["fields"]["line 3: role"] == [
        "'boss' is not one of: primary, legal, finance, technical"
    ]
    assert written() == before


def test_a_manager_is_refused_before_the_file_is_read(api):  # noqa: F811
    before = written()
    response = api("bob").upload("/clients/import", SOURCE, "crm.csv")
    assert response.status_code == 403
    assert "clients.import" in response.json()["error"]["message"]
    assert written() == before
