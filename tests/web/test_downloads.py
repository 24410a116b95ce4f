"""Opening a case's evidence files and its closure certificate from the workspace: who may, what
the response says about the file, and that nothing outside the case (or the organization) is
ever served."""

import re

import pytest
from django.test import Client

from offboard.cases.services import add_addendum, complete_step
from offboard.core.permissions import CAPABILITIES
from offboard.web.views import safe_filename
from tests.conftest import CAST
from tests.factories import close_with_approvals, settle_everything, upload

LETTER = b"%PDF-1.4 the client's notice letter\n"


def _client(user):
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def letter(case, cast):
    """A file attached to the case's first step, completed with it."""
    file = upload(cast["alice"], LETTER, "notice-letter.pdf")
    step = case.steps.get(key="confirm_notice")
    complete_step(actor=cast["alice"], step=step, evidence=[file], note="Notice received")
    return file


def _bytes(response):
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("name", sorted(CAST))
def test_every_role_that_reads_the_case_downloads_its_evidence(case, cast, letter, name):
    response = _client(cast[name].user).get(f"/cases/{case.ref}/files/{letter.sha256}")
    assert response.status_code == 200, (name, CAST[name])
    assert _bytes(response) == LETTER
    assert response["Content-Disposition"] == 'attachment; filename="notice-letter.pdf"'
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_a_role_without_the_right_to_read_evidence_is_refused(case, cast, letter, monkeypatch):
    """The check is real: take the right away from auditors and erin is refused, saying why."""
    monkeypatch.setitem(CAPABILITIES, "evidence.read", CAPABILITIES["evidence.read"] - {"auditor"})
    erin = _client(cast["erin"].user)
    response = erin.get(f"/cases/{case.ref}/files/{letter.sha256}")
    assert response.status_code == 403
    body = response.content.decode()
    assert "may not do this (evidence.read)" in body and LETTER.decode() not in body
    assert (
        _client(cast["oscar"].user).get(f"/cases/{case.ref}/files/{letter.sha256}").status_code
        == 200
    )


def test_another_organizations_member_gets_a_404_for_the_file_and_the_certificate(
    case, letter, mallory
):
    outsider = _client(mallory.user)
    assert outsider.get(f"/cases/{case.ref}/files/{letter.sha256}").status_code == 404
    assert outsider.get(f"/cases/{case.ref}/certificate.pdf").status_code == 404


def test_a_file_not_on_this_case_is_a_404_even_within_the_organization(
    case, cast, letter, playbooks, client_contract
):
    from offboard.cases.services import open_case

    alice = _client(cast["alice"].user)
    loose = upload(cast["alice"], b"%PDF-1.4 never attached\n", "loose.pdf")
    assert alice.get(f"/cases/{case.ref}/files/{loose.sha256}").status_code == 404
    client, contract = client_contract
    other = open_case(
        actor=cast["alice"],
        client=client,
        contracts=[contract],
        trigger="non_renewal",
        trigger_date=case.trigger_date,
        owner_id=cast["alice"].user.pk,
        playbook_version=playbooks["marketing_agency"],
        allow_duplicate=True,
    )
    assert alice.get(f"/cases/{other.ref}/files/{letter.sha256}").status_code == 404
    for bad in ("0" * 64, letter.sha256[:12], "../../etc/passwd", letter.sha256 + "0"):
        assert alice.get(f"/cases/{case.ref}/files/{bad}").status_code == 404, bad


def test_a_visitor_who_is_not_logged_in_is_sent_to_the_login(case, letter):
    response = Client().get(f"/cases/{case.ref}/files/{letter.sha256}")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_file_name_in_the_header_is_made_safe(case, cast):
    file = upload(cast["alice"], b"plain text", 'report "final"; v2.txt')
    step = case.steps.get(key="confirm_notice")
    complete_step(actor=cast["alice"], step=step, evidence=[file], note="x")
    response = _client(cast["bob"].user).get(f"/cases/{case.ref}/files/{file.sha256}")
    assert response["Content-Disposition"] == 'attachment; filename="report _final_ v2.txt"'
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("invoice.pdf", "invoice.pdf"),
        ("C:\\Users\\me\\scan.png", "scan.png"),
        ("../../etc/passwd", "passwd"),
        ("bad\r\nheader.txt", "bad_header.txt"),
        ("...", "fallback"),
        ("", "fallback"),
        ("x" * 300 + ".pdf", "x" * 150),
    ],
)
def test_safe_filename(name, safe):
    assert safe_filename(name, "fallback") == safe


def test_the_workspace_links_every_file_chip_to_its_download(case, cast, letter):
    later = upload(cast["alice"], b"%PDF-1.4 grant removed\n", "github-removed.pdf")
    grant = case.access_grants.first()
    from offboard.cases.services import update_register_item

    update_register_item(actor=cast["alice"], item=grant, values={}, evidence=[later])
    body = _client(cast["erin"].user).get(f"/cases/{case.ref}/").content.decode()
    for file in (letter, later):
        link = re.search(
            rf'<a class="file" href="/cases/{case.ref}/files/{file.sha256}"[^>]*>', body
        )
        assert link, file.original_name
        assert "download" in link.group(0)
    assert '<span class="file"' not in body


def test_a_closed_cases_certificate_and_addenda_files_download(case, cast):
    from offboard.notifications.receipts import issued_certificate

    closed = close_with_approvals(settle_everything(case, cast), cast)
    erin = _client(cast["erin"].user)
    refused = erin.get(f"/cases/{closed.ref}/certificate.pdf")
    assert refused.status_code == 404 and b"not issued yet" in refused.content
    assert (
        f"/cases/{closed.ref}/certificate.pdf"
        not in erin.get(f"/cases/{closed.ref}/").content.decode()
    )

    certificate = issued_certificate(closed)
    response = erin.get(f"/cases/{closed.ref}/certificate.pdf")
    assert response.status_code == 200
    pdf = _bytes(response)
    assert pdf.startswith(b"%PDF") and len(pdf) == certificate.size
    assert response["Content-Type"] == "application/pdf"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="{closed.ref}-closure-certificate.pdf"'
    )
    page = erin.get(f"/cases/{closed.ref}/").content.decode()
    assert f'href="/cases/{closed.ref}/certificate.pdf"' in page

    note = upload(cast["alice"], b"%PDF-1.4 client confirmed receipt\n", "confirmation.pdf")
    add_addendum(actor=cast["alice"], case=closed, text="Client confirmed.", evidence=[note])
    page = erin.get(f"/cases/{closed.ref}/").content.decode()
    assert f'href="/cases/{closed.ref}/files/{note.sha256}"' in page
    assert _bytes(erin.get(f"/cases/{closed.ref}/files/{note.sha256}")).startswith(
        b"%PDF-1.4 client"
    )


def test_an_open_case_has_no_certificate(case, cast):
    response = _client(cast["alice"].user).get(f"/cases/{case.ref}/certificate.pdf")
    assert (
        response.status_code == 404
        and b"only a closed case has a closure certificate" in response.content
    )
