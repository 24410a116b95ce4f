"""Clients: list and search, a client's page, and the forms for clients, contacts and
contracts — through the services, with each problem next to its field."""

import io

import pytest
from django.test import Client

from offboard.clients.models import Client as ClientModel
from offboard.clients.models import Contact, Contract
from offboard.ledger.models import LedgerEntry


def logged_in(actor):
    c = Client()
    c.force_login(actor.user)
    return c


@pytest.fixture
def web(cast):
    return logged_in(cast["alice"])


@pytest.fixture
def second_client(alice):
    from offboard.clients.services import add_contact, create_client

    client = create_client(actor=alice, name="Contoso Ltd", legal_name="Contoso Holdings")
    add_contact(actor=alice, client=client, name="Carl", email="carl@contoso.example", role="legal")
    return client


def test_the_list_shows_the_organizations_clients_with_counts(web, case, second_client):
    body = web.get("/clients/").content.decode()
    assert "Northwind Traders" in body and "Contoso Ltd" in body
    assert '<span class="badge active">1</span>' in body  # Northwind's open case


def test_search_matches_the_name_or_a_contacts_email(web, client_contract, second_client):
    by_name = web.get("/clients/?q=north").content.decode()
    assert "Northwind Traders" in by_name and "Contoso Ltd" not in by_name
    by_email = web.get("/clients/?q=carl@contoso").content.decode()
    assert "Contoso Ltd" in by_email and "Northwind Traders" not in by_email
    none = web.get("/clients/?q=zzz").content.decode()
    assert "No client matches" in none


def test_another_organizations_clients_are_never_listed_or_shown(client_contract, mallory):
    client, _ = client_contract
    c = logged_in(mallory)
    assert "Northwind" not in c.get("/clients/").content.decode()
    assert c.get(f"/clients/{client.pk}/").status_code == 404
    assert c.get(f"/clients/{client.pk}/edit/").status_code == 404


def test_the_client_page_shows_contacts_contracts_documents_and_cases(web, case, alice, cast):
    from offboard.cases.services import cancel_case, open_case
    from offboard.clients.services import attach_contract_document

    client = case.client
    contract = case.contracts.get()
    doc = attach_contract_document(
        actor=alice, contract=contract, stream=io.BytesIO(b"%PDF-1.4 signed MSA\n"), name="msa.pdf"
    )
    old = open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="other",
        trigger_date=case.trigger_date,
        owner_id=alice.user.pk,
        playbook_version=case.playbook_version,
        allow_duplicate=True,
    )
    cancel_case(actor=alice, case=old, reason="Opened by mistake")
    body = web.get(f"/clients/{client.pk}/").content.decode()
    assert "Nina North" in body and "nina@northwind.example" in body
    assert "NW-2025-01" in body and "msa.pdf" in body and doc.sha256[:12] in body
    current, past = body.split("Current cases")[1].split("Past cases")
    assert case.ref in current and old.ref not in current
    assert old.ref in past
    download = web.get(f"/clients/{client.pk}/contracts/{contract.pk}/documents/{doc.sha256}")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"%PDF-1.4 signed MSA\n"
    assert 'filename="msa.pdf"' in download["Content-Disposition"]


def test_a_document_of_another_organization_is_a_404(client_contract, alice, mallory):
    from offboard.clients.services import attach_contract_document

    client, contract = client_contract
    doc = attach_contract_document(
        actor=alice, contract=contract, stream=io.BytesIO(b"secret"), name="msa.pdf"
    )
    url = f"/clients/{client.pk}/contracts/{contract.pk}/documents/{doc.sha256}"
    assert logged_in(mallory).get(url).status_code == 404


def test_a_manager_adds_a_client(cast):
    bob = logged_in(cast["bob"])
    response = bob.post("/clients/new/", {"name": "Fabrikam", "legal_name": "Fabrikam Inc."})
    client = ClientModel.objects.get(name="Fabrikam")
    assert response.status_code == 302 and response["Location"] == f"/clients/{client.pk}/"
    assert LedgerEntry.objects.filter(type="client.created").last().data["name"] == "Fabrikam"


def test_a_duplicate_name_is_shown_next_to_the_name_field(web, client_contract):
    response = web.post("/clients/new/", {"name": "Northwind Traders"})
    assert response.status_code == 422
    body = response.content.decode()
    assert "a client named &#x27;Northwind Traders&#x27; already exists" in body
    assert 'id="id_name_error"' in body
    assert ClientModel.objects.filter(name="Northwind Traders").count() == 1


def test_editing_a_client_records_the_old_values(web, client_contract):
    client, _ = client_contract
    response = web.post(
        f"/clients/{client.pk}/edit/", {"name": "Northwind Trading", "reference": "CRM-42"}
    )
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.name == "Northwind Trading" and client.reference == "CRM-42"
    event = LedgerEntry.objects.filter(type="client.updated").last()
    assert event.data["old"]["name"] == "Northwind Traders"


def test_adding_a_contact_with_a_bad_email_shows_the_problem_at_the_email(web, client_contract):
    client, _ = client_contract
    response = web.post(
        f"/clients/{client.pk}/contacts/new/",
        {"name": "Tom", "email": "tom-at-northwind", "role": "technical"},
    )
    assert response.status_code == 422
    assert 'id="id_email_error"' in response.content.decode()
    response = web.post(
        f"/clients/{client.pk}/contacts/new/",
        {"name": "Tom", "email": "Tom@Northwind.example", "role": "technical"},
    )
    assert response.status_code == 302
    assert Contact.objects.get(name="Tom").email == "tom@northwind.example"


def test_editing_a_contact(web, client_contract):
    client, _ = client_contract
    nina = Contact.objects.get(name="Nina North")
    response = web.post(
        f"/clients/{client.pk}/contacts/{nina.pk}/edit/",
        {"name": "Nina North", "email": "nina@northwind.example", "role": "legal", "phone": "+44"},
    )
    assert response.status_code == 302
    nina.refresh_from_db()
    assert nina.role == "legal" and nina.phone == "+44"
    assert LedgerEntry.objects.filter(type="contact.updated").last().data["old"] == {
        "role": "primary",
        "phone": "",
    }


def test_adding_a_contract(web, client_contract):
    client, _ = client_contract
    response = web.post(
        f"/clients/{client.pk}/contracts/new/",
        {
            "reference": "NW-2026-02",
            "service_type": "consulting",
            "fee_type": "fixed",
            "start_date": "2026-01-01",
            "end_date": "2025-12-01",
            "notice_period_days": "30",
            "data_return_window_days": "30",
        },
    )
    assert response.status_code == 422
    assert "is before the start date" in response.content.decode()
    response = web.post(
        f"/clients/{client.pk}/contracts/new/",
        {
            "reference": "NW-2026-02",
            "service_type": "consulting",
            "fee_type": "fixed",
            "start_date": "2026-01-01",
            "notice_period_days": "60",
            "data_return_window_days": "14",
        },
    )
    assert response.status_code == 302
    assert Contract.objects.get(reference="NW-2026-02").notice_period_days == 60


def test_an_operator_reads_clients_but_cannot_change_them(cast, client_contract):
    client, _ = client_contract
    oscar = logged_in(cast["oscar"])
    page = oscar.get(f"/clients/{client.pk}/").content.decode()
    assert "Northwind Traders" in page and "Edit client" not in page
    for url in ("/clients/new/", f"/clients/{client.pk}/edit/"):
        response = oscar.post(url, {"name": "Hijacked"})
        assert response.status_code == 403
        assert "may not change clients" in response.content.decode()
    assert not ClientModel.objects.filter(name="Hijacked").exists()


def test_the_client_pages_run_a_bounded_number_of_queries(
    web, case, second_client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        assert web.get("/clients/").status_code == 200
    with django_assert_max_num_queries(12):
        assert web.get(f"/clients/{case.client_id}/").status_code == 200


# --- contract documents uploaded from the client page ------------------------------------------

SIGNED = b"%PDF-1.4 master services agreement, signed by both parties\n" * 30


def _doc_url(client, contract):
    return f"/clients/{client.pk}/contracts/{contract.pk}/documents/"


def test_a_signed_contract_is_attached_from_the_client_page(web, client_contract):
    import hashlib

    client, contract = client_contract
    page = web.get(f"/clients/{client.pk}/").content.decode()
    assert (
        f'action="{_doc_url(client, contract)}"' in page and 'enctype="multipart/form-data"' in page
    )
    response = web.post(_doc_url(client, contract), {"document": _file(SIGNED, "MSA-signed.pdf")})
    assert response.status_code == 302
    assert response["Location"].endswith(f"#contract-{contract.pk}")
    sha = hashlib.sha256(SIGNED).hexdigest()
    (doc,) = contract.documents.all()
    assert (doc.sha256, doc.original_name, doc.size) == (sha, "MSA-signed.pdf", len(SIGNED))
    event = LedgerEntry.objects.order_by("-index").first()
    assert event.type == "contract.document_attached" and event.data["contract_id"] == contract.pk
    assert event.files == [sha]
    download = web.get(f"/clients/{client.pk}/contracts/{contract.pk}/documents/{sha}")
    assert b"".join(download.streaming_content) == SIGNED


@pytest.mark.parametrize(
    ("files", "words"), [({}, "choose the file to attach"), ({"document": b""}, "is empty")]
)
def test_a_missing_or_empty_document_is_refused_at_the_field(web, client_contract, files, words):
    client, contract = client_contract
    before = LedgerEntry.objects.count()
    data = {k: _file(v, "empty.pdf") for k, v in files.items()}
    response = web.post(_doc_url(client, contract), data)
    assert response.status_code == 422
    body = response.content.decode()
    assert words in body and f'id="doc-{contract.pk}-error"' in body
    assert not contract.documents.exists() and LedgerEntry.objects.count() == before


def test_an_operator_cannot_attach_and_another_organization_gets_a_404(
    cast, client_contract, mallory
):
    client, contract = client_contract
    refused = logged_in(cast["oscar"]).post(
        _doc_url(client, contract), {"document": _file(SIGNED, "x.pdf")}
    )
    assert refused.status_code == 403
    outsider = logged_in(mallory).post(
        _doc_url(client, contract), {"document": _file(SIGNED, "x.pdf")}
    )
    assert outsider.status_code == 404
    assert not contract.documents.exists()


def _file(content, name):
    f = io.BytesIO(content)
    f.name = name
    return f
