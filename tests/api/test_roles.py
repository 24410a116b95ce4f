"""Roles: auditors read everything and change nothing; operators and finance do their part."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from offboard.cases.models import AccessGrant, Settlement
from offboard.cases.services import enter_closing, grant_waiver
from offboard.cases.state import fresh, state_digest
from offboard.ledger.models import LedgerEntry
from offboard.playbooks.spec import BUILTIN_DIR
from tests.api.conftest import token_for
from tests.factories import connector_objects, settle_everything

EXPIRES = "2099-01-01T00:00:00Z"

# Every write endpoint, with a body it would otherwise accept. (Tokens are per person: an
# auditor manages their own, see test_auth.)
WRITES: list[tuple[str, str, Any]] = [
    ("POST", "/members", {"username": "zed", "role": "operator"}),
    ("PATCH", "/members/{bob}", {"role": "operator"}),
    ("POST", "/members/{bob}/deactivate", {"reason": "left"}),
    ("POST", "/members/{bob}/reactivate", {}),
    ("DELETE", "/members/{bob}/tokens/{bob_token}", None),
    ("PUT", "/tokens/policy", {"default_days": 30, "max_days": 60}),
    ("POST", "/clients", {"name": "Contoso"}),
    (
        "POST",
        "/clients/{client}/contacts",
        {"name": "C", "email": "c@contoso.example", "role": "legal"},
    ),
    (
        "POST",
        "/clients/{client}/contracts",
        {
            "reference": "C-9",
            "service_type": "consulting",
            "fee_type": "fixed",
            "start_date": "2026-01-01",
        },
    ),
    ("POST", "/clients/contracts/{contract}/notice", {"received_at": "2026-11-01T10:00:00Z"}),
    ("UPLOAD", "/clients/contracts/{contract}/documents", None),
    ("UPLOAD", "/clients/import", None),
    ("UPLOAD", "/evidence", None),
    ("POST", "/playbooks", {"source": "playbook"}),
    ("POST", "/cases", "opening"),
    ("PATCH", "/cases/{ref}", {"scope_notes": "x"}),
    ("POST", "/cases/{ref}/activate", {}),
    ("POST", "/cases/{ref}/closing", {}),
    ("POST", "/cases/{ref}/close", {}),
    ("POST", "/cases/{ref}/cancel", {"reason": "x"}),
    ("POST", "/cases/{ref}/approvals", {"decision": "approved", "state_digest": "a" * 64}),
    ("POST", "/cases/{ref}/addenda", {"text": "x"}),
    ("POST", "/cases/{ref}/steps/{step}/start", {}),
    ("POST", "/cases/{ref}/steps/{step}/complete", {"note": "x"}),
    ("POST", "/cases/{ref}/steps/{step}/not-applicable", {"reason": "x"}),
    ("POST", "/cases/{ref}/steps/{step}/reopen", {"reason": "x"}),
    (
        "POST",
        "/cases/{ref}/waivers",
        {
            "target_type": "step",
            "target_id": "{step_id}",
            "justification": "x",
            "expires_at": EXPIRES,
        },
    ),
    ("POST", "/cases/{ref}/waivers/{waiver}/revoke", {"reason": "x"}),
    ("POST", "/cases/{ref}/deliverables", {"title": "x"}),
    ("PATCH", "/cases/{ref}/deliverables/{deliverables}", {"notes": "x"}),
    ("POST", "/cases/{ref}/handover-items", {"kind": "domain", "name": "x"}),
    ("PATCH", "/cases/{ref}/handover-items/{handover-items}", {"notes": "x"}),
    (
        "POST",
        "/cases/{ref}/access-grants",
        {"direction": "provider_in_client", "system": "x", "planned_action": "revoke"},
    ),
    ("PATCH", "/cases/{ref}/access-grants/{access-grants}", {"notes": "x"}),
    (
        "POST",
        "/cases/{ref}/data-dispositions",
        {"dataset": "x", "location": "y", "action": "return"},
    ),
    ("PATCH", "/cases/{ref}/data-dispositions/{data-dispositions}", {"notes": "x"}),
    ("POST", "/cases/{ref}/settlements", {"kind": "credit"}),
    ("PATCH", "/cases/{ref}/settlements/{settlements}", {"notes": "x"}),
    ("POST", "/cases/{ref}/portal-links", {"contact_email": "nina@northwind.example"}),
    ("POST", "/portal-links/{portal_link}/revoke", {}),
    ("POST", "/portal-links/{portal_link}/reminders", {}),
    ("POST", "/portal-links/{portal_link}/deemed-acceptance", {}),
    ("POST", "/webhooks", {"name": "CRM 2", "url": "https://crm.example.com/2"}),
    ("POST", "/webhooks/{webhook}/rotate", {}),
    ("POST", "/webhooks/{webhook}/disable", {"reason": "x"}),
    ("POST", "/webhooks/{webhook}/enable", {}),
    ("DELETE", "/webhooks/{webhook}", None),
    ("POST", "/webhooks/{webhook}/deliveries/{webhook_delivery}/redeliver", {}),
    (
        "POST",
        "/connections",
        {
            "name": "D2",
            "kind": "scim",
            "config": {"url": "http://127.0.0.1:9/v2"},
            "secret": "s3cret",
        },
    ),
    ("PATCH", "/connections/{connection_id}", {"name": "Mine"}),
    ("POST", "/connections/{connection_id}/disable", {}),
    ("POST", "/connections/{connection_id}/check", {}),
    ("POST", "/connections/{connection_id}/discover", {"ids": ["x"]}),
    ("POST", "/cases/{ref}/connector-plan", {"connection": "Directory", "grants": [1]}),
    ("POST", "/cases/{ref}/connector-runs", {"connection": "Directory", "grants": [1]}),
    ("POST", "/cases/{ref}/connector-runs/{run}/approve", {}),
    ("POST", "/cases/{ref}/connector-runs/{run}/decline", {"reason": "x"}),
]


def _portal_link(case: Any, alice: Any, client: Any) -> Any:
    from offboard.portal.services import issue_portal_link

    return issue_portal_link(
        actor=alice,
        case=case,
        contact=client.contacts.get(),
        base_url="http://testserver",
        send_email=False,
    ).link


@pytest.fixture
def ids(case: Any, cast: dict[str, Any], client_contract: Any) -> dict[str, Any]:
    client, contract = client_contract
    from offboard.webhooks.services import create_webhook_endpoint

    webhook = create_webhook_endpoint(  # first: the waiver below owes it a delivery
        actor=cast["alice"], name="CRM", url="https://crm.example.com/hooks"
    ).endpoint
    step = case.steps.first()
    waiver = grant_waiver(
        actor=cast["bob"],
        case=case,
        target_type="step",
        target_id=step.pk,
        justification="Not needed",
        expires_at=timezone.now() + dt.timedelta(days=9),
    )
    found = {
        "bob": cast["bob"].user.pk,
        "bob_token": _token_id(cast["bob"]),
        "client": client.pk,
        "contract": contract.pk,
        "ref": case.ref,
        "step": step.key,
        "step_id": step.pk,
        "waiver": waiver.pk,
        "portal_link": _portal_link(case, cast["alice"], client).pk,
        "webhook": str(webhook.public_id),
        "webhook_delivery": webhook.deliveries.first().msg_id,
    }
    for register in (
        "deliverables",
        "handover_items",
        "access_grants",
        "data_dispositions",
        "settlements",
    ):
        found[register.replace("_", "-")] = getattr(case, register).first().pk
    return {**found, **connector_objects(case, cast["alice"])}


def _token_id(actor: Any) -> int:
    token_for(actor, "laptop")
    return int(actor.user.api_tokens.get(name="laptop").pk)


def _body(body: Any, ids: dict[str, Any]) -> Any:
    if body == "opening":
        return {
            "client_id": ids["client"],
            "contract_ids": [ids["contract"]],
            "trigger": "breach",
            "trigger_date": "2026-11-02",
        }
    if body == {"source": "playbook"}:
        return {"source": (BUILTIN_DIR / "consulting.yaml").read_text("utf-8")}
    if isinstance(body, dict):
        return {
            k: ids[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v
            for k, v in body.items()
        }
    return body


@pytest.mark.parametrize(("method", "url", "body"), WRITES, ids=[f"{m} {u}" for m, u, _ in WRITES])
def test_an_auditor_may_change_nothing(api, ids, method, url, body):
    erin = api("erin")
    events_before = LedgerEntry.objects.count()

    response = erin.call(method, url.format(**ids), _body(body, ids))

    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "Your role 'auditor' may not do this" in error["message"]
    assert LedgerEntry.objects.count() == events_before


def test_the_auditor_table_covers_every_write_endpoint():
    from offboard.api import api

    # Writing nothing, these are open to every role; tokens are each person's own.
    open_to_all = {
        ("POST", "/cases/preview"),
        ("POST", "/playbooks/validate"),
        ("POST", "/tokens"),
        ("DELETE", "/tokens/{}"),
        # signing a checkpoint changes no record; an auditor signs one before an export
        ("POST", "/ledger/checkpoints"),
        # authenticated by its signature, not a token: no role (tests/inbound/)
        ("POST", "/inbound/{}/events"),
    }

    def shape(url: str) -> str:
        return "/".join("{}" if part.startswith("{") else part for part in url.split("/"))

    writes = {
        (method.upper(), shape(path.removeprefix("/api/v1")))
        for path, operations in api.get_openapi_schema()["paths"].items()
        for method in operations
        if method != "get"
    }
    covered = {("POST" if m == "UPLOAD" else m, shape(u)) for m, u, _ in WRITES}
    assert writes - open_to_all == covered


@pytest.mark.parametrize(
    "url",
    [
        "/cases/{ref}",
        "/cases/{ref}/events",
        "/cases/{ref}/gates",
        "/cases/{ref}/access-grants",
        "/clients/{client}",
        "/members",
    ],
)
def test_an_auditor_reads_everything(api, ids, url):
    assert api("erin").get(url.format(**ids)).status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/cases", "opening"),
        ("POST", "/cases/{ref}/close", {}),
        (
            "POST",
            "/cases/{ref}/waivers",
            {
                "target_type": "step",
                "target_id": "{step_id}",
                "justification": "x",
                "expires_at": EXPIRES,
            },
        ),
        ("POST", "/cases/{ref}/approvals", {"decision": "approved", "state_digest": "a" * 64}),
    ],
    ids=["open", "close", "waive", "approve"],
)
def test_an_operator_may_not_open_close_waive_or_approve(api, ids, method, url, body):
    response = api("oscar").call(method, url.format(**ids), _body(body, ids))

    assert response.status_code == 403, response.content
    assert response.json()["error"]["details"]["role"] == "operator"


def test_an_operator_works_steps_and_registers(api, ids):
    oscar = api("oscar")

    started = oscar.post(f"/cases/{ids['ref']}/steps/{ids['step']}/start")
    updated = oscar.patch(
        f"/cases/{ids['ref']}/handover-items/{ids['handover-items']}",
        {"notes": "Registrar login is in the client's vault"},
    )

    assert started.status_code == 200 and started.json()["status"] == "in_progress"
    assert updated.status_code == 200, updated.content


def test_finance_settles_but_does_not_touch_access(api, ids, cast):
    dave = api("dave")

    settled = dave.patch(
        f"/cases/{ids['ref']}/settlements/{ids['settlements']}",
        {"status": "paid", "amount": "950.50", "currency": "EUR", "reference": "INV-2026-17"},
    )
    access = dave.patch(
        f"/cases/{ids['ref']}/access-grants/{ids['access-grants']}", {"status": "revoked"}
    )

    assert settled.status_code == 200, settled.content
    assert settled.json()["amount"] == "950.50"
    settlement = Settlement.objects.get(pk=ids["settlements"])
    assert (settlement.status, str(settlement.amount)) == ("paid", "950.50")
    assert access.status_code == 403
    assert access.json()["error"]["details"]["capability"] == "cases.work"
    assert AccessGrant.objects.get(pk=ids["access-grants"]).status == "active"


def test_a_manager_may_settle_but_an_operator_may_not(api, ids):
    refused = api("oscar").patch(
        f"/cases/{ids['ref']}/settlements/{ids['settlements']}", {"status": "paid"}
    )

    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["capability"] == "cases.settle"


def test_finance_may_approve_only_where_the_policy_lets_it(api, case, cast):
    case = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=case)
    digest = state_digest(fresh(case))

    response = api("dave").post(
        f"/cases/{case.ref}/approvals", {"decision": "approved", "state_digest": digest}
    )

    assert response.status_code == 403
    assert "approval policy" in response.json()["error"]["message"]
