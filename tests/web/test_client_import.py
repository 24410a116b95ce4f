"""The "Import from CSV" page: upload, preview or problems by line and column, confirm; the
template download; admins only (docs/import.md)."""

import base64
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from offboard.clients import csvfile
from offboard.clients.models import Client as ClientModel
from offboard.clients.models import Contact, Contract
from offboard.ledger.models import LedgerEntry
from tests.clients.test_import import CLIENT, CONTACT, CONTRACT, file_of, row

URL = "/clients/import/"


def browser(actor) -> Client:
    web = Client()
    web.force_login(actor.user)
    return web


@pytest.fixture
def web(alice):
    return browser(alice)


def written() -> tuple[int, int, int, int]:
    return (
        ClientModel.objects.count(),
        Contact.objects.count(),
        Contract.objects.count(),
        LedgerEntry.objects.count(),
    )


def upload(web, content: bytes | str, name: str = "crm-export.csv", **fields):
    data = content.encode() if isinstance(content, str) else content
    return web.post(URL, {"file": SimpleUploadedFile(name, data, "text/csv"), **fields})


def carried_source(body: str) -> str:
    return re.search(r'name="source" value="([^"]*)"', body)[1]


def test_the_clients_list_offers_the_import_to_admins_only(web, cast):
    assert 'href="/clients/import/"' in web.get("/clients/").content.decode()
    assert 'href="/clients/import/"' not in browser(cast["bob"]).get("/clients/").content.decode()


def test_the_page_explains_the_format_and_links_the_template(web):
    response = web.get(URL)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'href="/clients/import/template.csv"' in body and "Download the template" in body
    for column in csvfile.COLUMNS:
        assert f'<span class="mono">{column}</span>' in body


def test_the_template_downloads_as_a_csv_with_every_column_and_examples(web):
    response = web.get("/clients/import/template.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="offboard-clients-template.csv"'
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff" + ",".join(csvfile.COLUMNS) + "\r\n")
    assert "Fabrikam Studio" in text and "FAB-2025-01" in text


def test_a_valid_file_is_previewed_then_imported_on_confirmation(web):
    before = written()
    preview = upload(web, file_of(CLIENT, CONTACT, CONTRACT))
    body = preview.content.decode()
    assert preview.status_code == 200
    assert "crm-export.csv is ready to import: 1 client, 1 contact and 1 contract" in body
    assert "Fabrikam Studio Ltd" in body and "fiona@fabrikam.example" in body
    assert "FAB-1" in body and 'data-label="Line">4<' in body
    assert written() == before  # a preview writes nothing

    done = web.post(
        URL,
        {"source": carried_source(body), "file_name": "crm-export.csv", "confirm": "import"},
        follow=True,
    )
    assert done.redirect_chain == [("/clients/", 302)]
    assert "Imported 1 client, 1 contact and 1 contract from crm-export.csv." in (
        done.content.decode()
    )
    client = ClientModel.objects.get(name="Fabrikam Studio")
    assert client.contacts.count() == 1 and client.contracts.count() == 1
    imported = LedgerEntry.objects.get(type="clients.imported")
    assert imported.data["file"]["name"] == "crm-export.csv"
    assert imported.actor_user.username == "alice"
    assert LedgerEntry.objects.count() == before[3] + 4


def test_problems_are_listed_by_line_and_column_and_nothing_is_written(web):
    before = written()
    source = file_of(
        CLIENT,
        CONTACT.replace("Fiona@Fabrikam.example", "fiona-at-fabrikam"),
        CONTRACT.replace("2025-01-01", "01/01/2025"),
        row(
            record="contact", client="Contoso", contact_name="C", email="c@c.example", role="legal"
        ),
    )
    response = upload(web, source)
    body = response.content.decode()
    assert response.status_code == 422
    assert "3 problems in crm-export.csv — nothing was imported" in body
    cells = re.findall(
        r'data-label="Line">(\d+)</td>\s*<td data-label="Column"><span class="mono">(\w+)</span>',
        body,
    )
    assert cells == [("3", "email"), ("4", "start_date"), ("5", "client")]
    assert "&#x27;fiona-at-fabrikam&#x27; is not an email address" in body
    assert "No client named &#x27;Contoso&#x27; in this file or in Offboard" in body
    assert 'name="confirm"' not in body  # no way to import a file with problems
    assert written() == before


def test_a_file_that_is_not_utf8_names_the_line_and_column(web):
    source = "record,client,notes\nclient,Caf\xe9 Noir,ok\n".encode("latin-1")
    response = upload(web, source)
    body = response.content.decode()
    assert response.status_code == 422
    assert 'data-label="Line">2</td>' in body and '<span class="mono">client</span>' in body
    assert "Is not UTF-8 text" in body


def test_a_file_with_a_bom_is_read_as_utf8(web):
    response = upload(web, b"\xef\xbb\xbf" + file_of(row(record="client", client="Zoë")).encode())
    assert response.status_code == 200 and "1 client, 0 contacts and 0 contracts" in (
        response.content.decode()
    )


def test_the_confirmation_checks_the_file_again(web, alice):
    """Someone adds the same client between the preview and the confirmation."""
    from offboard.clients.services import create_client

    body = upload(web, file_of(CLIENT, CONTACT)).content.decode()
    create_client(actor=alice, name="Fabrikam Studio")
    before = written()
    response = web.post(
        URL, {"source": carried_source(body), "file_name": "x.csv", "confirm": "import"}
    )
    assert response.status_code == 422
    assert "A client named &#x27;Fabrikam Studio&#x27; is already in Offboard" in (
        response.content.decode()
    )
    assert written() == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Choose the CSV file to import."),
        ({"source": "not base64!", "confirm": "import"}, "Choose the CSV file to import."),
        ({"source": "", "file_name": "empty.csv"}, "empty.csv is empty."),
    ],
)
def test_no_file_or_a_broken_one_is_refused_saying_so(web, fields, message):
    before = written()
    response = web.post(URL, fields)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert written() == before


def test_a_file_past_the_limit_is_refused(web, monkeypatch):
    monkeypatch.setattr(csvfile, "MAX_BYTES", 50)
    response = upload(web, file_of(CLIENT, CONTACT))
    assert response.status_code == 422
    assert "Is larger than the 50 bytes an import takes" in response.content.decode()


@pytest.mark.parametrize("name", ["bob", "oscar", "dave", "erin"])
def test_only_admins_may_import_and_others_write_nothing(cast, name):
    web = browser(cast[name])
    before = written()
    assert web.get(URL).status_code == 403
    refused = upload(web, file_of(CLIENT), confirm="import")
    assert refused.status_code == 403
    assert "may not import clients from a file; an admin can" in refused.content.decode()
    confirmed = web.post(
        URL,
        {
            "source": base64.b64encode(file_of(CLIENT).encode()).decode(),
            "confirm": "import",
        },
    )
    assert confirmed.status_code == 403
    assert written() == before


def test_a_visitor_is_sent_to_sign_in(db):
    response = Client().post(URL, {"source": "eA==", "confirm": "import"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
