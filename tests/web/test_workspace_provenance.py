"""The workspace on how a register fact is known and when: each settled row says it, and the
forms that change a status take the time it happened and staff / vendor document."""

import datetime as dt
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from offboard.cases.models import AccessGrant, HandoverItem
from offboard.core import clock

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def alice_web(cast):
    c = Client()
    c.force_login(cast["alice"].user)
    return c


def _url(case, tail=""):
    return f"/cases/{case.ref}/{tail}"


def test_a_revocation_confirmed_by_the_vendors_document_attached_with_it(alice_web, case):
    grant = case.access_grants.filter(planned_action="revoke").order_by("id").first()
    happened = (clock.now() - dt.timedelta(days=2)).replace(second=0, microsecond=0)

    response = alice_web.post(
        _url(case, f"registers/access_grants/{grant.pk}/revoke"),
        {
            "actioned_at": happened.strftime("%Y-%m-%dT%H:%M"),
            "source": "vendor_document",
            "source_document": "attached",
            "source_vendor": "Google Ireland",
            "verification_level": "vendor_confirmed",
            "evidence_file": SimpleUploadedFile("google-letter.pdf", b"%PDF-1.4 letter\n"),
        },
        **HX,
    )

    assert response.status_code == 200, response.content
    item = AccessGrant.objects.get(pk=grant.pk)
    letter = item.evidence.get()
    assert item.status == "revoked" and item.actioned_at == happened
    assert item.source == "vendor_document"
    assert item.source_detail == {"document_sha256": letter.sha256, "vendor": "Google Ireland"}
    body = response.content.decode()
    row = body[body.index(f'id="access_grants-{grant.pk}"') :]
    assert '<span class="src src-vendor_document"' in row
    assert "Revoked — confirmed by a vendor&#x27;s document (Google Ireland)" in row
    assert "happened " in row and " · recorded " in row  # recorded two days after it happened


def test_a_vendor_document_source_without_the_document_is_refused_in_place(alice_web, case):
    grant = case.access_grants.filter(planned_action="revoke").order_by("id").first()

    response = alice_web.post(
        _url(case, f"registers/access_grants/{grant.pk}/revoke"),
        {"source": "vendor_document", "source_document": "", "verification_level": ""},
        **HX,
    )

    assert response.status_code == 422
    assert "needs the document" in response.content.decode()
    assert AccessGrant.objects.get(pk=grant.pk).status == "active"


def test_the_edit_form_sends_the_source_only_with_a_change_of_status(alice_web, case):
    item = case.handover_items.order_by("id").first()
    url = _url(case, f"registers/handover_items/{item.pk}/edit")
    page = alice_web.get(_url(case)).content.decode()
    form = re.search(rf'action="{url}".*?</form>', page, re.S).group(0)
    assert 'name="source"' in form and 'name="source_document"' in form
    assert ">The file attached with this change</option>" in form

    response = alice_web.post(
        url,
        {"status": "handed_over", "method": "Moved", "source": "staff", "_bools": "1"},
    )
    assert response.status_code == 302
    assert HandoverItem.objects.get(pk=item.pk).source == "staff"

    # Saving the form again with the source as shown changes nothing about the fact.
    response = alice_web.post(url, {"notes": "Called them", "source": "staff", "_bools": "1"})
    assert response.status_code == 302
    assert HandoverItem.objects.get(pk=item.pk).notes == "Called them"


def test_each_settled_row_says_how_it_is_known_and_an_unsettled_one_does_not(alice_web, case, cast):
    from offboard.cases.services import update_register_item

    item = case.handover_items.order_by("id").first()
    update_register_item(
        actor=cast["oscar"], item=item, values={"status": "handed_over", "method": "Moved"}
    )

    body = alice_web.get(_url(case)).content.decode()
    row = re.search(rf'<li id="handover_items-{item.pk}".*?</li>', body, re.S).group(0)
    assert '<span class="src src-staff"' in row and ">Staff</span>" in row
    assert "Handed over — recorded by staff (Oscar)" in row
    other = case.handover_items.order_by("id")[1]
    row = re.search(rf'<li id="handover_items-{other.pk}".*?</li>', body, re.S).group(0)
    assert 'class="src' not in row and 'class="known' not in row
