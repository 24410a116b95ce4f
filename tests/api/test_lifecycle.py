"""A client exit from trigger to closed, entirely through the API; then closed is final."""

import datetime as dt
from typing import Any

from django.utils import timezone

from offboard.cases.models import Approval, OffboardingCase
from offboard.cases.services import grant_waiver
from offboard.ledger.models import LedgerEntry
from offboard.playbooks.spec import BUILTIN_DIR
from tests.factories import close_with_approvals, settle_everything


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def _set_up_client(alice: Any) -> tuple[int, int]:
    """Playbook, client, contact and contract, with the notice and the signed contract."""
    source = (BUILTIN_DIR / "marketing-agency.yaml").read_text("utf-8")
    version = _ok(alice.post_raw("/playbooks", source, "application/yaml"), 201)
    assert (version["slug"], version["version"]) == ("marketing-agency", 1)
    client = _ok(alice.post("/clients", {"name": "Northwind Traders", "reference": "CRM-77"}), 201)
    _ok(
        alice.post(
            f"/clients/{client['id']}/contacts",
            {"name": "Nina North", "email": "nina@northwind.example", "role": "primary"},
        ),
        201,
    )
    contract = _ok(
        alice.post(
            f"/clients/{client['id']}/contracts",
            {
                "reference": "NW-2025-01",
                "service_type": "marketing_agency",
                "fee_type": "retainer",
                "start_date": "2025-01-01",
                "end_date": "2026-12-31",
                "notice_period_days": 30,
            },
        ),
        201,
    )
    _ok(
        alice.post(
            f"/clients/contracts/{contract['id']}/notice",
            {"received_at": "2026-11-02T09:30:00+01:00"},
        )
    )
    _ok(
        alice.upload(
            f"/clients/contracts/{contract['id']}/documents", b"%PDF-1.4 MSA\n", "msa.pdf"
        ),
        201,
    )
    return client["id"], contract["id"]


def _settle_registers(api: Any, ref: str, proof: str) -> None:
    alice, bob, dave = api("alice"), api("bob"), api("dave")
    case = _ok(alice.get(f"/cases/{ref}"))
    regs = case["registers"]
    for d in regs["deliverables"]:
        _ok(
            alice.patch(
                f"/cases/{ref}/deliverables/{d['id']}",
                {"status": "accepted", "acceptance_note": "Accepted by email", "evidence": [proof]},
            )
        )
    for h in regs["handover_items"]:
        _ok(
            alice.patch(
                f"/cases/{ref}/handover-items/{h['id']}",
                {
                    "status": "handed_over",
                    "method": h["method"] or "Relicensed by the client",
                    "new_owner": "Client IT",
                    "evidence": [proof],
                },
            )
        )
    for g in regs["access_grants"]:
        _ok(alice.patch(f"/cases/{ref}/access-grants/{g['id']}", {"status": "revoked"}))
        _ok(
            alice.patch(
                f"/cases/{ref}/access-grants/{g['id']}",
                {"verification_level": "attested", "evidence": [proof]},
            )
        )
    # Access that stays after the exit needs a manager's waiver.
    kept = _ok(
        alice.post(
            f"/cases/{ref}/access-grants",
            {
                "direction": "client_in_provider",
                "system": "Reporting dashboard",
                "principal": "client marketing lead",
                "planned_action": "keep",
                "keep_reason": "Read-only access to historic reports for 90 days",
            },
        ),
        201,
    )
    expires = (timezone.now() + dt.timedelta(days=90)).isoformat()
    _ok(
        bob.post(
            f"/cases/{ref}/waivers",
            {
                "target_type": "access_grant",
                "target_id": kept["id"],
                "expires_at": expires,
                "justification": "Client asked for 90 days of read-only reports",
                "evidence": [proof],
            },
        ),
        201,
    )
    for d in regs["data_dispositions"]:
        if d["action"] != "retain":
            _ok(
                alice.patch(
                    f"/cases/{ref}/data-dispositions/{d['id']}",
                    {"status": "done", "legal_hold": False, "evidence": [proof]},
                )
            )
    for s in regs["settlements"]:
        if s["kind"] == "refund":  # no prepaid budget left: waived, on the record
            waiver = _ok(
                bob.post(
                    f"/cases/{ref}/waivers",
                    {
                        "target_type": "settlement",
                        "target_id": s["id"],
                        "expires_at": expires,
                        "justification": "No prepaid media budget remained",
                    },
                ),
                201,
            )
            assert waiver["in_force"] is True
            _ok(dave.patch(f"/cases/{ref}/settlements/{s['id']}", {"status": "waived"}))
        else:
            _ok(
                dave.patch(
                    f"/cases/{ref}/settlements/{s['id']}",
                    {
                        "status": "paid",
                        "amount": "1200.00",
                        "currency": "eur",
                        "reference": "INV-1",
                        "evidence": [proof],
                    },
                )
            )


def _work_steps(alice: Any, ref: str, proof: str) -> None:
    steps = _ok(alice.get(f"/cases/{ref}"))["steps"]
    settled = {s["key"] for s in steps if s["status"] in ("done", "not_applicable")}
    pending = [s for s in steps if s["key"] not in settled]
    while pending:
        ready = [s for s in pending if all(dep in settled for dep in s["depends_on"])]
        assert ready, f"steps waiting on each other: {[s['key'] for s in pending]}"
        for s in ready:
            url = f"/cases/{ref}/steps/{s['key']}"
            if not s["required"]:
                done = _ok(alice.post(f"{url}/not-applicable", {"reason": "Client kept its web"}))
            else:
                _ok(alice.post(f"{url}/start"))
                done = _ok(
                    alice.post(
                        f"{url}/complete",
                        {
                            "note": "Done, see file",
                            "link": "https://example.org/proof",
                            "attestation": "I confirm this",
                            "evidence": [proof],
                        },
                    )
                )
            assert done["status"] in ("done", "not_applicable")
            settled.add(s["key"])
            pending.remove(s)


def test_a_case_runs_from_trigger_to_closed_through_the_api(api, cast):
    alice, bob, carol = api("alice"), api("bob"), api("carol")
    client_id, contract_id = _set_up_client(alice)
    notice = _ok(alice.upload("/evidence", b"%PDF-1.4 notice letter\n", "notice.pdf"), 201)
    opening = {
        "client_id": client_id,
        "contract_ids": [contract_id],
        "trigger": "non_renewal",
        "trigger_date": "2026-11-02",
        "trigger_evidence": [notice["sha256"]],
    }
    preview = _ok(alice.post("/cases/preview", opening))
    assert preview["playbook"]["slug"] == "marketing-agency"  # suggested by the service type
    assert preview["dates"]["effective_end"] == "2026-12-31"

    case = _ok(alice.post("/cases", opening), 201)
    ref = case["ref"]
    assert case["state"] == "active"
    assert [step["key"] for step in case["steps"]] == [step["key"] for step in preview["steps"]]
    assert case["trigger_evidence"][0]["sha256"] == notice["sha256"]

    proof = _ok(alice.upload("/evidence", b"%PDF-1.4 signed acceptance\n", "proof.pdf"), 201)[
        "sha256"
    ]
    _settle_registers(api, ref, proof)
    _work_steps(alice, ref, proof)

    gates = _ok(alice.get(f"/cases/{ref}/gates"))
    assert [g["code"] for g in gates["unmet_gates"]] == ["approvals.missing"]
    refused = alice.post(f"/cases/{ref}/close")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "gates_unmet"
    assert refused.json()["error"]["details"]["gates"][0]["code"] == "approvals.missing"

    assert _ok(alice.post(f"/cases/{ref}/closing"))["state"] == "closing"
    digest = _ok(bob.get(f"/cases/{ref}"))["state_digest"]
    _ok(bob.post(f"/cases/{ref}/approvals", {"decision": "approved", "state_digest": digest}), 201)
    _ok(
        carol.post(
            f"/cases/{ref}/approvals",
            {
                "decision": "approved",
                "state_digest": digest,
                "comment": "Checked the access register",
            },
        ),
        201,
    )
    closed = _ok(alice.post(f"/cases/{ref}/close"))

    assert closed["state"] == "closed"
    assert closed["unmet_gates"] == []
    assert closed["state_digest"] == digest
    stored = OffboardingCase.objects.get(ref=ref)
    assert stored.state == "closed" and stored.closed_at is not None
    assert sorted(a.approver.username for a in Approval.objects.filter(case=stored)) == [
        "bob",
        "carol",
    ]
    events = _ok(alice.get(f"/cases/{ref}/events", {"limit": 500}))
    types = [e["type"] for e in events["items"]]
    assert types[0] == "case.opened" and types[-1] == "case.closed"
    assert {
        "access_grant.revoked",
        "access_grant.verified",
        "waiver.granted",
        "settlement.paid",
        "step.completed",
        "case.approved",
    } <= set(types)
    assert events["count"] == LedgerEntry.objects.filter(case=stored).count()


def _closed_case_writes(case: Any, proof: str) -> list[tuple[str, str, dict[str, Any]]]:
    ref = f"/cases/{case.ref}"
    step = case.steps.first().key
    expires = (timezone.now() + dt.timedelta(days=30)).isoformat()
    grant = case.access_grants.first()
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", ref, {"scope_notes": "late change"}),
        ("POST", f"{ref}/activate", {}),
        ("POST", f"{ref}/closing", {}),
        ("POST", f"{ref}/close", {}),
        ("POST", f"{ref}/cancel", {"reason": "changed our mind"}),
        ("POST", f"{ref}/approvals", {"decision": "approved", "state_digest": "a" * 64}),
        ("POST", f"{ref}/steps/{step}/start", {}),
        ("POST", f"{ref}/steps/{step}/complete", {"note": "again", "evidence": [proof]}),
        ("POST", f"{ref}/steps/{step}/not-applicable", {"reason": "no"}),
        ("POST", f"{ref}/steps/{step}/reopen", {"reason": "redo"}),
        (
            "POST",
            f"{ref}/waivers",
            {
                "target_type": "access_grant",
                "target_id": grant.pk,
                "justification": "late",
                "expires_at": expires,
            },
        ),
        ("POST", f"{ref}/waivers/{case.waivers.first().pk}/revoke", {"reason": "late"}),
    ]
    adds = {
        "deliverables": {"title": "Late extra"},
        "handover-items": {"kind": "document", "name": "Late runbook"},
        "access-grants": {
            "direction": "provider_in_client",
            "system": "Jira",
            "planned_action": "revoke",
        },
        "data-dispositions": {"dataset": "Late export", "location": "S3", "action": "return"},
        "settlements": {"kind": "credit", "description": "Late credit"},
    }
    for segment, body in adds.items():
        item = getattr(case, segment.replace("-", "_")).first()
        writes.append(("POST", f"{ref}/{segment}", body))
        writes.append(("PATCH", f"{ref}/{segment}/{item.pk}", {"notes": "late note"}))
    return writes


def test_every_write_to_a_closed_case_answers_409_except_an_addendum(api, case, cast):
    case = settle_everything(case, cast)
    grant_waiver(
        actor=cast["bob"],
        case=case,
        target_type="settlement",
        target_id=case.settlements.first().pk,
        justification="Belt and braces",
        expires_at=timezone.now() + dt.timedelta(days=30),
    )
    case = close_with_approvals(case, cast)
    alice = api("alice")
    proof = alice.upload("/evidence").json()["sha256"]
    events_before = LedgerEntry.objects.filter(case=case).count()

    answers = {
        f"{method} {url}": alice.call(method, url, body)
        for method, url, body in _closed_case_writes(case, proof)
    }
    wrong = {
        call: (r.status_code, r.json()["error"]["code"])
        for call, r in answers.items()
        if (r.status_code, r.json()["error"]["code"]) != (409, "case_closed")
    }
    assert wrong == {}
    assert "closed and cannot be changed" in next(iter(answers.values())).json()["error"]["message"]
    assert LedgerEntry.objects.filter(case=case).count() == events_before
    case.refresh_from_db()
    assert case.state == "closed"

    addendum = alice.post(
        f"/cases/{case.ref}/addenda",
        {"text": "Client confirmed receipt of the exports", "evidence": [proof]},
    )
    assert addendum.status_code == 201, addendum.content
    assert addendum.json()["evidence"][0]["sha256"] == proof
    detail = alice.get(f"/cases/{case.ref}").json()
    assert [a["text"] for a in detail["addenda"]] == ["Client confirmed receipt of the exports"]
    assert LedgerEntry.objects.filter(case=case).latest("id").type == "case.addendum"
