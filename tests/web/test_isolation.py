"""Every staff page and action that names an object answers another organization's member
with a 404 and writes nothing — checked for each URL pattern, and the table must cover them
all (a new route without a row fails here)."""

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern

from offboard.ledger.models import LedgerEntry
from tests.api.test_isolation import acme  # noqa: F401 (the fixture: one of each Acme object)

# url name → (method, url with {placeholders} from `acme`, form data)
TABLE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "case-detail": ("GET", "/cases/{ref}/", {}),
    "evidence-pack": ("POST", "/cases/{ref}/evidence-pack", {}),
    "ws-upload": ("POST", "/cases/{ref}/evidence/upload", {}),
    "ws-step": ("POST", "/cases/{ref}/steps/{step}/complete", {"note": "mine"}),
    "ws-lifecycle": ("POST", "/cases/{ref}/lifecycle/cancel", {"reason": "sabotage"}),
    "ws-case-edit": ("POST", "/cases/{ref}/edit", {"effective_end_date": "2027-01-01"}),
    "ws-waiver-add": ("POST", "/cases/{ref}/waivers/add", {"justification": "x"}),
    "ws-waiver-revoke": ("POST", "/cases/{ref}/waivers/{waiver}/revoke", {"reason": "x"}),
    "ws-approve": ("POST", "/cases/{ref}/approve", {"decision": "approved"}),
    "ws-addendum": ("POST", "/cases/{ref}/addenda", {"text": "graffiti"}),
    "ws-register-add": ("POST", "/cases/{ref}/registers/access_grants/add", {"system": "X"}),
    "ws-register-item": (
        "POST",
        "/cases/{ref}/registers/access_grants/{access-grants}/revoke",
        {"verification_level": "attested"},
    ),
    "ws-portal-send": ("POST", "/cases/{ref}/portal/links", {"contact_id": "1"}),
    "ws-portal-remind": ("POST", "/cases/{ref}/portal/links/{portal_link}/remind", {}),
    "ws-portal-revoke": ("POST", "/cases/{ref}/portal/links/{portal_link}/revoke", {}),
    "ws-portal-deem": ("POST", "/cases/{ref}/portal/links/{portal_link}/deem", {}),
    "client-detail": ("GET", "/clients/{client}/", {}),
    "client-edit": ("POST", "/clients/{client}/edit/", {"name": "Mine"}),
    "contact-create": ("POST", "/clients/{client}/contacts/new/", {"name": "M"}),
    "contact-edit": ("POST", "/clients/{client}/contacts/{contact}/edit/", {"name": "M"}),
    "contract-create": ("POST", "/clients/{client}/contracts/new/", {"reference": "G-1"}),
    "contract-document-upload": (
        "POST",
        "/clients/{client}/contracts/{contract}/documents/",
        {},
    ),
    "contract-document": ("GET", "/clients/{client}/contracts/{contract}/documents/{sha}", {}),
    "member-role": ("POST", "/settings/members/{bob}/role", {"role": "operator"}),
    "member-access": ("POST", "/settings/members/{bob}/deactivate", {"reason": "x"}),
    "token-revoke": ("POST", "/settings/tokens/{token}/revoke", {}),
}
# Named by a slug that every organization has (the built-in playbooks): each sees its own.
OWN_BY_NAME = {"playbook-detail", "playbook-diff"}


@pytest.fixture
def ids(acme, client_contract):  # noqa: F811 (the fixture imported above)
    from offboard.evidence.models import EvidenceFile

    client, contract = client_contract
    contract.documents.add(EvidenceFile.objects.get(sha256=acme["sha"]))
    return {**acme, "contact": client.contacts.get().pk}


@pytest.fixture
def mallory_web(mallory):
    c = Client()
    c.force_login(mallory.user)
    return c


@pytest.mark.parametrize("name", sorted(TABLE))
def test_another_organizations_object_is_a_404_and_nothing_is_written(ids, mallory_web, name):
    method, url, data = TABLE[name]
    before = LedgerEntry.objects.count()
    target = url.format(**ids)
    response = mallory_web.get(target) if method == "GET" else mallory_web.post(target, data)
    assert response.status_code == 404, (name, target, response.status_code)
    assert LedgerEntry.objects.count() == before


def test_the_table_covers_every_staff_url_that_names_an_object():
    from offboard.web.urls import urlpatterns

    named = {
        p.name
        for p in urlpatterns
        if isinstance(p, URLPattern) and p.name and p.pattern.regex.groupindex
    }
    assert named - OWN_BY_NAME == set(TABLE)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_the_same_request_by_a_member_reaches_the_object(ids, cast, name):
    """The table's URLs are right: for Acme's admin none of them is a 404."""
    method, url, data = TABLE[name]
    web = Client()
    web.force_login(cast["alice"].user)
    target = url.format(**ids)
    response = web.get(target) if method == "GET" else web.post(target, data)
    assert response.status_code != 404, (name, target)
