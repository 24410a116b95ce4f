"""Clients, contacts, contracts, notices and contract documents."""

import datetime as dt

from offboard.clients.models import Client, Contract
from offboard.ledger.models import LedgerEntry


def test_a_client_is_read_back_with_its_contacts_and_contracts(api, client_contract):
    client, _ = client_contract

    detail = api("erin").get(f"/clients/{client.pk}").json()

    assert detail["name"] == "Northwind Traders"
    assert detail["contract_count"] == 1
    assert [c["email"] for c in detail["contacts"]] == ["nina@northwind.example"]
    assert detail["contracts"][0]["reference"] == "NW-2025-01"
    assert detail["contracts"][0]["notice_received_at"] is None


def test_clients_are_listed_and_searched(api, cast):
    alice = api("alice")
    for name in ("Northwind Traders", "Southwind Ltd", "Contoso"):
        assert alice.post("/clients", {"name": name}).status_code == 201

    found = alice.get("/clients", {"q": "wind"}).json()

    assert found["count"] == 2
    assert [c["name"] for c in found["items"]] == ["Northwind Traders", "Southwind Ltd"]


def test_a_duplicate_client_name_is_refused(api, client_contract):
    response = api("alice").post("/clients", {"name": "Northwind Traders"})

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"] == {
        "name": ["a client named 'Northwind Traders' already exists"]
    }
    assert Client.objects.count() == 1


def test_a_contact_needs_a_valid_email_and_role(api, client_contract):
    client, _ = client_contract

    bad_email = api("alice").post(
        f"/clients/{client.pk}/contacts", {"name": "Bo", "email": "not-an-email", "role": "legal"}
    )
    bad_role = api("alice").post(
        f"/clients/{client.pk}/contacts",
        {"name": "Bo", "email": "bo@northwind.example", "role": "ceo"},
    )

    assert bad_email.status_code == 422
    assert list(bad_email.json()["error"]["details"]["fields"]) == ["email"]
    assert bad_role.status_code == 422
    assert list(bad_role.json()["error"]["details"]["fields"]) == ["role"]


def test_a_contract_is_added_listed_and_read(api, client_contract):
    client, _ = client_contract
    alice = api("alice")

    created = alice.post(
        f"/clients/{client.pk}/contracts",
        {
            "reference": "NW-2026-02",
            "title": "Analytics retainer",
            "service_type": "consulting",
            "fee_type": "time_and_materials",
            "start_date": "2026-01-01",
            "end_date": "2026-06-30",
        },
    )

    assert created.status_code == 201, created.content
    contract_id = created.json()["id"]
    assert alice.get(f"/clients/contracts/{contract_id}").json()["title"] == "Analytics retainer"
    listed = alice.get(f"/clients/{client.pk}/contracts").json()
    assert [c["reference"] for c in listed["items"]] == ["NW-2025-01", "NW-2026-02"]


def test_a_contract_that_ends_before_it_starts_is_refused(api, client_contract):
    client, _ = client_contract

    response = api("alice").post(
        f"/clients/{client.pk}/contracts",
        {
            "reference": "NW-X",
            "service_type": "consulting",
            "fee_type": "fixed",
            "start_date": "2026-06-01",
            "end_date": "2026-01-01",
        },
    )

    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["end_date"]
    assert Contract.objects.count() == 1


def test_the_notice_date_is_recorded(api, client_contract):
    _, contract = client_contract

    response = api("bob").post(
        f"/clients/contracts/{contract.pk}/notice", {"received_at": "2026-10-30T16:45:00+01:00"}
    )

    assert response.status_code == 200
    answered = dt.datetime.fromisoformat(response.json()["notice_received_at"])
    assert answered == dt.datetime(2026, 10, 30, 15, 45, tzinfo=dt.UTC)
    contract.refresh_from_db()
    assert contract.notice_received_at == answered
    assert LedgerEntry.objects.filter(type="contract.notice_recorded").count() == 1


def test_a_notice_time_without_a_time_zone_is_refused(api, client_contract):
    _, contract = client_contract

    response = api("bob").post(
        f"/clients/contracts/{contract.pk}/notice", {"received_at": "2026-10-30T16:45:00"}
    )

    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["received_at"]
    contract.refresh_from_db()
    assert contract.notice_received_at is None


def test_a_signed_contract_is_attached_as_a_document(api, client_contract):
    _, contract = client_contract

    response = api("alice").upload(
        f"/clients/contracts/{contract.pk}/documents",
        b"%PDF-1.7 master services agreement",
        "MSA signed.pdf",
    )

    assert response.status_code == 201, response.content
    assert response.json()["media_type"] == "application/pdf"
    assert [d.original_name for d in contract.documents.all()] == ["MSA signed.pdf"]
    read = api("alice").get(f"/clients/contracts/{contract.pk}").json()
    assert read["documents"][0]["sha256"] == response.json()["sha256"]


def test_a_document_upload_without_a_file_names_the_field(api, client_contract):
    _, contract = client_contract

    response = api("alice").post(f"/clients/contracts/{contract.pk}/documents", {})

    assert response.status_code == 422
    fields = response.json()["error"]["details"]["fields"]
    assert [name.split(".")[-1] for name in fields] == ["file"]
    assert fields[next(iter(fields))] == ["Field required"]
