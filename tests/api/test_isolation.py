"""Tenant isolation: another organization's objects do not exist for you — 404, never 403."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from offboard.cases.services import grant_waiver
from offboard.ledger.models import LedgerEntry
from tests.api.conftest import token_for
from tests.factories import connector_objects, upload

# Every endpoint that names an object by id, ref, slug or sha256, with a body it would accept.
TABLE: list[tuple[str, str, dict[str, Any] | None]] = [
    ("PATCH", "/members/{bob}", {"role": "operator"}),
    ("POST", "/members/{bob}/deactivate", {"reason": "left"}),
    ("POST", "/members/{bob}/reactivate", {}),
    ("DELETE", "/tokens/{token}", None),
    ("DELETE", "/members/{alice}/tokens/{token}", None),
    ("GET", "/ledger/entries/{entry}", None),
    ("GET", "/clients/{client}", None),
    (
        "POST",
        "/clients/{client}/contacts",
        {"name": "M", "email": "m@globex.example", "role": "legal"},
    ),
    ("GET", "/clients/{client}/contracts", None),
    (
        "POST",
        "/clients/{client}/contracts",
        {
            "reference": "G-1",
            "service_type": "consulting",
            "fee_type": "fixed",
            "start_date": "2026-01-01",
        },
    ),
    ("GET", "/clients/contracts/{contract}", None),
    ("POST", "/clients/contracts/{contract}/notice", {"received_at": "2026-11-01T10:00:00Z"}),
    ("UPLOAD", "/clients/contracts/{contract}/documents", None),
    ("GET", "/evidence/{sha}", None),
    ("GET", "/evidence/{sha}/content", None),
    ("GET", "/playbooks/{slug}", None),
    ("GET", "/playbooks/{slug}/versions/1", None),
    ("GET", "/cases/{ref}", None),
    ("PATCH", "/cases/{ref}", {"scope_notes": "mine now"}),
    ("GET", "/cases/{ref}/gates", None),
    ("GET", "/cases/{ref}/events", None),
    ("POST", "/cases/{ref}/activate", {}),
    ("POST", "/cases/{ref}/closing", {}),
    ("POST", "/cases/{ref}/close", {}),
    ("POST", "/cases/{ref}/cancel", {"reason": "sabotage"}),
    ("POST", "/cases/{ref}/approvals", {"decision": "approved", "state_digest": "a" * 64}),
    ("POST", "/cases/{ref}/addenda", {"text": "graffiti"}),
    ("GET", "/cases/{ref}/evidence-pack", None),
    ("POST", "/cases/{ref}/steps/{step}/start", {}),
    ("POST", "/cases/{ref}/steps/{step}/complete", {"note": "done"}),
    ("POST", "/cases/{ref}/steps/{step}/not-applicable", {"reason": "no"}),
    ("POST", "/cases/{ref}/steps/{step}/reopen", {"reason": "no"}),
    (
        "POST",
        "/cases/{ref}/waivers",
        {
            "target_type": "step",
            "target_id": 1,
            "justification": "x",
            "expires_at": "2099-01-01T00:00:00Z",
        },
    ),
    ("POST", "/cases/{ref}/waivers/{waiver}/revoke", {"reason": "no"}),
    ("GET", "/cases/{ref}/portal-links", None),
    ("POST", "/cases/{ref}/portal-links", {"contact_email": "nina@northwind.example"}),
    ("POST", "/portal-links/{portal_link}/revoke", {}),
    ("POST", "/portal-links/{portal_link}/reminders", {}),
    ("POST", "/portal-links/{portal_link}/deemed-acceptance", {}),
    ("GET", "/webhooks/{webhook}", None),
    ("POST", "/webhooks/{webhook}/rotate", {}),
    ("POST", "/webhooks/{webhook}/disable", {"reason": "x"}),
    ("POST", "/webhooks/{webhook}/enable", {}),
    ("DELETE", "/webhooks/{webhook}", None),
    ("GET", "/webhooks/{webhook}/deliveries", None),
    ("POST", "/webhooks/{webhook}/deliveries/{webhook_delivery}/redeliver", {}),
    ("PATCH", "/connections/{connection_id}", {"name": "Mine"}),
    ("POST", "/connections/{connection_id}/disable", {}),
    ("POST", "/connections/{connection_id}/check", {}),
    ("POST", "/connections/{connection_id}/discover", {"ids": ["x"]}),
    ("POST", "/cases/{ref}/connector-plan", {"connection": "Directory", "grants": [1]}),
    ("GET", "/cases/{ref}/connector-runs", None),
    ("POST", "/cases/{ref}/connector-runs", {"connection": "Directory", "grants": [1]}),
    ("GET", "/cases/{ref}/connector-runs/{run}", None),
    ("POST", "/cases/{ref}/connector-runs/{run}/approve", {}),
    ("POST", "/cases/{ref}/connector-runs/{run}/decline", {"reason": "x"}),
    *[
        row
        for segment, body in [
            ("deliverables", {"title": "x"}),
            ("handover-items", {"kind": "domain", "name": "x"}),
            (
                "access-grants",
                {"direction": "provider_in_client", "system": "x", "planned_action": "revoke"},
            ),
            ("data-dispositions", {"dataset": "x", "location": "y", "action": "return"}),
            ("settlements", {"kind": "credit"}),
        ]
        for row in [
            ("GET", f"/cases/{{ref}}/{segment}", None),
            ("POST", f"/cases/{{ref}}/{segment}", body),
            ("GET", f"/cases/{{ref}}/{segment}/{{{segment}}}", None),
            ("PATCH", f"/cases/{{ref}}/{segment}/{{{segment}}}", {"notes": "x"}),
        ]
    ],
]


@pytest.fixture
def acme(case: Any, cast: dict[str, Any], client_contract: Any) -> dict[str, Any]:
    """Ids of one of each of Acme's objects."""
    client, contract = client_contract
    from offboard.webhooks.services import create_webhook_endpoint

    webhook = create_webhook_endpoint(  # first: the events below each owe it a delivery
        actor=cast["alice"], name="CRM", url="https://crm.example.com/hooks"
    ).endpoint
    waiver = grant_waiver(
        actor=cast["bob"],
        case=case,
        target_type="step",
        target_id=case.steps.first().pk,
        justification="Not needed here",
        expires_at=timezone.now() + dt.timedelta(days=30),
    )
    token_for(cast["alice"])
    from offboard.portal.services import issue_portal_link

    portal_link = issue_portal_link(
        actor=cast["alice"],
        case=case,
        contact=client.contacts.get(),
        base_url="http://testserver",
        send_email=False,
    ).link
    ids = {
        "bob": cast["bob"].user.pk,
        "alice": cast["alice"].user.pk,
        "token": cast["alice"].user.api_tokens.get().pk,
        "client": client.pk,
        "contract": contract.pk,
        "sha": upload(cast["alice"]).sha256,
        "slug": case.playbook_version.playbook.slug,
        "ref": case.ref,
        "step": case.steps.first().key,
        "waiver": waiver.pk,
        "portal_link": portal_link.pk,
        "webhook": str(webhook.public_id),
        "webhook_delivery": webhook.deliveries.first().msg_id,
        # ledger indices are per organization: acme's latest is beyond mallory's empty log
        "entry": LedgerEntry.objects.filter(org=case.org).latest("index").index,
    }
    for register in (
        "deliverables",
        "handover_items",
        "access_grants",
        "data_dispositions",
        "settlements",
    ):
        ids[register.replace("_", "-")] = getattr(case, register).first().pk
    return {**ids, **connector_objects(case, cast["alice"])}


@pytest.mark.parametrize(("method", "url", "body"), TABLE, ids=[f"{m} {u}" for m, u, _ in TABLE])
def test_another_organizations_object_is_not_found(acme, mallory_api, method, url, body):
    events_before = LedgerEntry.objects.count()

    response = mallory_api.call(method, url.format(**acme), body)

    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    assert LedgerEntry.objects.count() == events_before


# Authenticated by a signature under the endpoint's secret, not a token: another
# organization's endpoint, and a delivery signed with its secret, are in tests/inbound/.
SIGNED_NOT_TOKEN = {("POST", "/inbound/{endpoint_id}/events")}


def test_the_table_covers_every_endpoint_that_names_an_object():
    from offboard.api import api

    paths = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in api.get_openapi_schema()["paths"].items()
        for method in operations
        if "{" in path
    }
    covered = {("POST" if m == "UPLOAD" else m, u) for m, u, _ in TABLE} | SIGNED_NOT_TOKEN

    def shape(url: str) -> str:
        return "/".join(
            "{}" if part.startswith("{") or part.isdigit() else part for part in url.split("/")
        )

    assert {(m, shape(p)) for m, p in paths} == {(m, shape(u)) for m, u in covered}


@pytest.mark.parametrize("url", ["/cases", "/clients", "/members", "/playbooks", "/tokens"])
def test_lists_never_show_another_organizations_rows(acme, mallory_api, mallory, url):
    response = mallory_api.get(url)

    assert response.status_code == 200
    items = response.json()["items"]
    if url == "/members":
        assert [m["user"]["username"] for m in items] == ["mallory"]
    elif url == "/tokens":
        assert all(t["id"] != acme["token"] for t in items)
    else:
        assert items == []


def test_a_case_cannot_be_opened_on_another_organizations_client(acme, mallory_api):
    events_before = LedgerEntry.objects.count()

    response = mallory_api.post(
        "/cases",
        {
            "client_id": acme["client"],
            "contract_ids": [acme["contract"]],
            "trigger": "breach",
            "trigger_date": "2026-11-02",
            "playbook": acme["slug"],
        },
    )

    assert response.status_code == 422
    fields = response.json()["error"]["details"]["fields"]
    assert set(fields) == {"client_id"}
    assert "No client" in fields["client_id"][0]
    assert LedgerEntry.objects.count() == events_before


def test_another_organizations_evidence_is_an_unknown_reference(acme, mallory_api, mallory):
    from offboard.clients.services import create_client, create_contract
    from offboard.playbooks.services import install_builtin_playbooks

    install_builtin_playbooks(actor=mallory)
    client = create_client(actor=mallory, name="Initech")
    contract = create_contract(
        actor=mallory,
        client=client,
        reference="IN-1",
        service_type="consulting",
        fee_type="fixed",
        start_date=dt.date(2026, 1, 1),
    )
    events_before = LedgerEntry.objects.count()

    response = mallory_api.post(
        "/cases",
        {
            "client_id": client.pk,
            "contract_ids": [contract.pk],
            "trigger": "breach",
            "trigger_date": "2026-11-02",
            "trigger_evidence": [acme["sha"]],
        },
    )

    assert response.status_code == 422
    fields = response.json()["error"]["details"]["fields"]
    assert fields == {
        "trigger_evidence": [f"no evidence file with sha256 {acme['sha']}; upload it first"]
    }
    assert LedgerEntry.objects.count() == events_before
