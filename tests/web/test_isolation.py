"""Every staff page and action that names an object answers another organization's member
with a 404 and writes nothing — checked for each URL pattern, and the table must cover them
all (a new route without a row fails here)."""

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern

from offboard.ledger.models import LedgerEntry
from offboard.security.models import MemberSession
from offboard.webhooks.models import WebhookEndpoint
from tests.api.test_isolation import acme  # noqa: F401 (the fixture: one of each Acme object)

# url name → (method, url with {placeholders} from `acme`, form data)
TABLE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "case-detail": ("GET", "/cases/{ref}/", {}),
    "evidence-pack": ("POST", "/cases/{ref}/evidence-pack", {}),
    "case-file": ("GET", "/cases/{ref}/files/{sha}", {}),
    "case-certificate": ("GET", "/cases/{ref}/certificate.pdf", {}),
    "ws-upload": ("POST", "/cases/{ref}/evidence/upload", {}),
    "ws-step": ("POST", "/cases/{ref}/steps/{step}/complete", {"note": "mine"}),
    "ws-lifecycle": (
        "POST",
        "/cases/{ref}/lifecycle/cancel",
        {"reason": "sabotage", "confirm": "cancel"},
    ),
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
    "ws-portal-revoke": (
        "POST",
        "/cases/{ref}/portal/links/{portal_link}/revoke",
        {"confirm": "revoke"},
    ),
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
    "inbound-rotate": ("POST", "/settings/inbound/{inbound_endpoint}/rotate", {}),
    "inbound-revoke": ("POST", "/settings/inbound/{inbound_endpoint}/revoke", {}),
    "webhook-rotate": ("POST", "/settings/webhooks/{webhook}/rotate", {}),
    "webhook-state": ("POST", "/settings/webhooks/{webhook}/disable", {"reason": "x"}),
    "webhook-deliveries": ("GET", "/settings/webhooks/{webhook}/deliveries/", {}),
    "webhook-redeliver": (
        "POST",
        "/settings/webhooks/{webhook}/deliveries/{webhook_delivery}/redeliver",
        {},
    ),
    "connection-edit": ("POST", "/settings/connections/{connection}/edit", {"name": "Mine"}),
    "connection-test": ("POST", "/settings/connections/{connection}/test", {}),
    "connection-disable": ("POST", "/settings/connections/{connection}/disable", {}),
    "connector-discover": ("GET", "/cases/{ref}/connectors/discover/", {}),
    "connector-revoke": ("GET", "/cases/{ref}/connectors/revoke/", {}),
    "connector-run": ("GET", "/cases/{ref}/connectors/runs/{run}/", {}),
    "connector-run-decide": ("POST", "/cases/{ref}/connectors/runs/{run}/approve", {}),
    "session-end": ("POST", "/settings/security/sessions/{member_session}/end", {}),
}
# Named by a slug that every organization has (the built-in playbooks): each sees its own.
OWN_BY_NAME = {"playbook-detail", "playbook-diff"}
# Exists only once the case is closed (Acme's case here is open): a member's 200 is in
# tests/web/test_downloads.py.
ONLY_WHEN_CLOSED = {"case-certificate"}
# Links for someone who is not signed in, where the secret in the address is the credential
# (a password-reset link): no organization's member owns them; tests/security tests them.
BEARER_LINKS = {"password-reset-confirm"}
# Where someone not signed in starts single sign-on with an organization's provider: the slug
# only picks the provider to go to, and reveals nothing (tests/sso test it).
SIGN_IN_START = {"sso-login-org"}


@pytest.fixture
def ids(acme, client_contract, cast):  # noqa: F811 (the fixture imported above)
    from offboard.cases.models import Step
    from offboard.evidence.models import EvidenceFile
    from offboard.inbound.services import create_inbound_endpoint

    client, contract = client_contract
    file = EvidenceFile.objects.get(sha256=acme["sha"])
    contract.documents.add(file)
    Step.objects.get(case__ref=acme["ref"], key=acme["step"]).evidence.add(file)
    alice = cast["alice"]
    inbound = create_inbound_endpoint(actor=alice, name="CRM", case_owner_id=alice.user.pk)
    Client().force_login(cast["bob"].user)  # a signed-in session of Acme's (offboard.security)
    return {
        "member_session": MemberSession.objects.get(user=cast["bob"].user).pk,
        **acme,
        "contact": client.contacts.get().pk,
        "inbound_endpoint": inbound.endpoint.pk,
        "webhook": WebhookEndpoint.objects.get(org=alice.org).pk,  # made by `acme`
    }


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
    assert named - OWN_BY_NAME - BEARER_LINKS - SIGN_IN_START == set(TABLE)


@pytest.mark.parametrize("name", sorted(set(TABLE) - ONLY_WHEN_CLOSED))
def test_the_same_request_by_a_member_reaches_the_object(ids, cast, name):
    """The table's URLs are right: for Acme's admin none of them is a 404."""
    method, url, data = TABLE[name]
    web = Client()
    web.force_login(cast["alice"].user)
    target = url.format(**ids)
    response = web.get(target) if method == "GET" else web.post(target, data)
    assert response.status_code != 404, (name, target)


# --- the Django admin is gone (decision 0011) --------------------------------------------------

# Every address the Django admin answered, with ids of Acme's objects: each must be a 404 for
# anyone, signed in or not, an organization's admin or an installation superuser.
FORMER_ADMIN_URLS = [
    "/admin/",
    "/admin/login/",
    "/admin/logout/",
    "/admin/password_change/",
    "/admin/jsi18n/",
    "/admin/auth/group/",
    "/admin/accounts/",
    "/admin/accounts/user/",
    "/admin/accounts/user/add/",
    "/admin/accounts/user/{bob}/change/",
    "/admin/accounts/user/{bob}/password/",
    "/admin/accounts/user/{bob}/delete/",
    "/admin/accounts/organization/",
    "/admin/accounts/membership/",
    "/admin/accounts/membership/add/",
    "/admin/accounts/apitoken/",
    "/admin/accounts/apitoken/{token}/change/",
    "/admin/cases/offboardingcase/",
    "/admin/cases/accessgrant/",
    "/admin/portal/portallink/",
    "/admin/portal/portallink/{portal_link}/change/",
    "/admin/notifications/closurereceipt/",
]


@pytest.fixture
def everyone(ids, cast, mallory):
    """A browser for each kind of visitor: anonymous, each Acme role, another organization's
    admin, and an installation superuser (as `createsuperuser` or an old demo made them)."""
    from offboard.accounts.models import User

    root = User.objects.create_superuser("root", "root@example.com", "correct horse 1")
    browsers = {"anonymous": Client()}
    for name, user in [
        *((n, a.user) for n, a in cast.items()),
        ("mallory", mallory.user),
        ("superuser", root),
    ]:
        browsers[name] = Client()
        browsers[name].force_login(user)
    return browsers


def test_the_django_admin_is_not_installed():
    from django.conf import settings

    assert "django.contrib.admin" not in settings.INSTALLED_APPS


def test_every_former_admin_url_is_a_404_for_everyone(ids, everyone):
    from offboard.accounts.models import User

    before = (LedgerEntry.objects.count(), list(User.objects.values_list("password", flat=True)))
    for who, browser in everyone.items():
        for url in FORMER_ADMIN_URLS:
            target = url.format(**ids)
            got = browser.get(target)
            assert got.status_code == 404, (who, target, got.status_code)
            posted = browser.post(target, {"password1": "pwned-pwned-1", "role": "admin"})
            assert posted.status_code in (403, 404), (who, target, posted.status_code)
    after = (LedgerEntry.objects.count(), list(User.objects.values_list("password", flat=True)))
    assert after == before


def test_the_root_urls_are_the_api_the_portal_the_calendar_feeds_and_the_staff_pages():
    """A new top-level mount (an admin site, a debug toolbar) needs a row here and a review."""
    from offboard.urls import urlpatterns

    assert [str(p.pattern) for p in urlpatterns] == [
        "health/live",  # liveness and readiness: no login, nothing named (offboard.health)
        "health/ready",
        "metrics",  # Prometheus, optionally behind OFFBOARD_METRICS_TOKEN (offboard.metrics)
        "api/v1/",
        "portal/",
        "calendar/",
        "reminders/",  # the unsubscribe links of reminder emails (offboard.reminders)
        "",
    ]


def test_no_page_links_to_the_django_admin(cast):
    from offboard.accounts.models import User

    root = User.objects.create_superuser("root", "root@example.com", "correct horse 1")
    web = Client()
    web.force_login(root)
    alice = Client()
    alice.force_login(cast["alice"].user)
    for browser in (web, alice):
        assert b"/admin/" not in browser.get("/login/").content
    assert b"/admin/" not in alice.get("/").content
