"""Cases through the API: open, preview, read, change, transitions, approvals and the timeline."""

import datetime as dt
from typing import Any

import pytest

from offboard.cases.models import Approval, OffboardingCase, Step
from offboard.cases.services import enter_closing, open_case
from offboard.cases.state import fresh, state_digest
from offboard.ledger.models import LedgerEntry
from offboard.playbooks.spec import BUILTIN_DIR
from tests.factories import settle_everything


@pytest.fixture
def opening(client_contract: Any, playbooks: Any) -> dict[str, Any]:
    client, contract = client_contract
    return {
        "client_id": client.pk,
        "contract_ids": [contract.pk],
        "trigger": "non_renewal",
        "trigger_date": "2026-11-02",
    }


def test_opening_a_case_pins_the_playbook_and_instantiates_steps_and_registers(api, opening, cast):
    response = api("bob").post(
        "/cases",
        {
            **opening,
            "owner_id": cast["carol"].user.pk,
            "assignments": {"operator": cast["oscar"].user.pk},
            "trigger_notes": "Email from their COO",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    case = OffboardingCase.objects.get(ref=body["ref"])
    assert (case.owner.username, case.state, case.trigger_notes) == (
        "carol",
        "active",
        "Email from their COO",
    )
    assert body["playbook"]["slug"] == "marketing-agency"
    assert body["playbook"]["sha256"] == case.playbook_sha256
    assert len(body["steps"]) == case.steps.count() > 5
    inventory = next(s for s in body["steps"] if s["key"] == "inventory_accounts")
    assert inventory["owner"]["username"] == "oscar"
    assert len(body["registers"]["access_grants"]) == case.access_grants.count() > 0
    assert body["state_digest"] == state_digest(fresh(case))
    assert {g["code"] for g in body["unmet_gates"]} >= {"steps.incomplete", "access.not_revoked"}
    assert LedgerEntry.objects.get(case=case).type == "case.opened"


def test_the_owner_defaults_to_whoever_opens_the_case(api, opening):
    body = api("bob").post("/cases", opening).json()

    assert body["owner"]["username"] == "bob"


def test_a_named_playbook_version_is_used(api, opening, playbooks):
    response = api("alice").post(
        "/cases", {**opening, "playbook": "consulting", "playbook_version": 1, "draft": True}
    )

    assert response.status_code == 201, response.content
    assert response.json()["playbook"]["slug"] == "consulting"
    assert response.json()["state"] == "draft"


def test_an_unknown_playbook_is_a_field_error(api, opening):
    response = api("alice").post("/cases", {**opening, "playbook": "astrology"})

    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["playbook"]
    assert not OffboardingCase.objects.exists()


def test_the_preview_shows_dates_and_steps_and_writes_nothing(api, opening, cast):
    events_before = LedgerEntry.objects.count()

    response = api("erin").post(  # an auditor previews, naming an owner who can own work
        "/cases/preview",
        {
            **opening,
            "trigger": "termination_by_client",
            "trigger_date": "2026-11-02",
            "owner_id": cast["carol"].user.pk,
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dates"] == {
        "trigger": "2026-11-02",
        "notice": "2026-11-02",
        "effective_end": "2026-12-02",
        "data_return_deadline": "2027-01-01",
    }
    confirm = next(s for s in body["steps"] if s["key"] == "confirm_notice")
    assert confirm["due_date"] == "2026-11-04"
    assert body["registers"]["access_grants"] > 0
    assert not OffboardingCase.objects.exists()
    assert LedgerEntry.objects.count() == events_before


def test_cases_are_listed_with_progress_and_filtered(api, case, cast, client_contract, playbooks):
    client, contract = client_contract
    other = open_case(
        actor=cast["alice"],
        client=client,
        contracts=[contract],
        trigger="breach",
        trigger_date=dt.date(2026, 11, 5),
        owner_id=cast["bob"].user.pk,
        playbook_version=playbooks["marketing_agency"],
        draft=True,
        allow_duplicate=True,
    )
    erin = api("erin")

    everything = erin.get("/cases").json()
    drafts = erin.get("/cases", {"state": "draft"}).json()
    bobs = erin.get("/cases", {"owner_id": cast["bob"].user.pk}).json()
    by_ref = erin.get("/cases", {"q": case.ref}).json()
    by_client = erin.get("/cases", {"q": "northwind", "client_id": client.pk}).json()

    assert [c["ref"] for c in everything["items"]] == [other.ref, case.ref]
    first = everything["items"][1]
    assert first["steps_total"] == Step.objects.filter(case=case, required=True).count()
    assert first["steps_settled"] == 0
    assert first["client"]["name"] == "Northwind Traders"
    assert first["effective_end_date"] == "2026-12-31"
    assert [c["ref"] for c in drafts["items"]] == [other.ref]
    assert [c["ref"] for c in bobs["items"]] == [other.ref]
    assert [c["ref"] for c in by_ref["items"]] == [case.ref]
    assert by_client["count"] == 2
    assert erin.get("/cases", {"state": "open"}).status_code == 422


def test_an_unknown_case_is_not_found(api, case):
    response = api("alice").get("/cases/C-1999-0001")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No case C-1999-0001 in this organization."


def test_patching_a_case_changes_only_what_is_sent(api, case, cast):
    response = api("bob").patch(
        f"/cases/{case.ref}",
        {"effective_end_date": "2027-01-31", "owner_id": cast["carol"].user.pk},
    )

    assert response.status_code == 200, response.content
    case.refresh_from_db()
    assert (case.effective_end_date, case.owner.username) == (dt.date(2027, 1, 31), "carol")
    assert case.trigger_notes == ""
    event = LedgerEntry.objects.filter(case=case).latest("id")
    assert event.type == "case.updated"
    assert event.data["old"] == {
        "owner_id": cast["alice"].user.pk,
        "effective_end_date": "2026-12-31",
    }


def test_an_auditor_cannot_own_a_case(api, case, cast):
    response = api("bob").patch(f"/cases/{case.ref}", {"owner_id": cast["erin"].user.pk})

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"] == {
        "owner_id": ["erin is an auditor and cannot own work"]
    }


def test_closing_is_refused_while_gates_are_unmet_and_lists_them(api, case):
    response = api("alice").post(f"/cases/{case.ref}/closing")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "gates_unmet"
    gates = error["details"]["gates"]
    assert {g["code"] for g in gates} >= {"steps.incomplete", "deliverables.not_accepted"}
    assert all(set(g) == {"code", "message", "resolve", "objects", "kind"} for g in gates)
    case.refresh_from_db()
    assert case.state == "active"


def test_the_gates_endpoint_lists_unmet_gates_with_their_objects(api, case):
    body = api("erin").get(f"/cases/{case.ref}/gates").json()

    access = next(g for g in body["unmet_gates"] if g["code"] == "access.not_revoked")
    assert access["kind"] == "readiness"
    assert access["objects"][0]["type"] == "access_grant"
    assert "Revoke or transfer" in access["resolve"]


def test_a_draft_is_activated_and_a_case_is_cancelled_with_a_reason(api, opening):
    alice = api("alice")
    ref = alice.post("/cases", {**opening, "draft": True}).json()["ref"]

    activated = alice.post(f"/cases/{ref}/activate")
    again = alice.post(f"/cases/{ref}/activate")
    cancelled = alice.post(f"/cases/{ref}/cancel", {"reason": "Client renewed after all"})

    assert activated.json()["state"] == "active"
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_transition"
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "Client renewed after all"


def test_approving_after_a_change_returned_the_case_to_active_is_refused(api, case, cast):
    case = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=case)
    seen = api("bob").get(f"/cases/{case.ref}").json()["state_digest"]
    # Carol reopens a step after Bob looked: the case returns to active.
    step = next(s for s in case.steps.all() if s.status == "done")
    api("carol").post(f"/cases/{case.ref}/steps/{step.key}/reopen", {"reason": "Wrong file"})

    response = api("bob").post(
        f"/cases/{case.ref}/approvals", {"decision": "approved", "state_digest": seen}
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert not Approval.objects.exists()


def test_an_approval_on_a_changed_state_is_refused(api, case, cast):
    case = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=case)

    response = api("bob").post(
        f"/cases/{case.ref}/approvals", {"decision": "approved", "state_digest": "0" * 64}
    )

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "stale_state_digest"
    assert error["details"]["current_state_digest"] == state_digest(fresh(case))


def test_a_rejection_needs_a_comment(api, case, cast):
    case = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=case)
    digest = api("bob").get(f"/cases/{case.ref}").json()["state_digest"]

    response = api("bob").post(
        f"/cases/{case.ref}/approvals", {"decision": "rejected", "state_digest": digest}
    )

    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["comment"]


def test_the_timeline_lists_events_oldest_first(api, case):
    api("alice").post(f"/cases/{case.ref}/steps/confirm_notice/start")

    events = api("erin").get(f"/cases/{case.ref}/events").json()

    assert [e["type"] for e in events["items"]] == ["case.opened", "step.started"]
    started = events["items"][1]
    assert started["actor"]["username"] == "alice"
    assert started["actor"]["auth"] == "token"
    assert started["data"]["step"] == "confirm_notice"


def test_a_step_needs_its_evidence_before_it_is_done(api, case):
    response = api("alice").post(f"/cases/{case.ref}/steps/confirm_notice/complete", {"note": "ok"})

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"] == {
        "evidence": ["step 'confirm_notice' needs evidence: file"]
    }
    assert Step.objects.get(case=case, key="confirm_notice").status == "pending"


def test_a_step_waits_for_its_dependencies(api, case):
    proof = api("alice").upload().json()["sha256"]

    response = api("alice").post(
        f"/cases/{case.ref}/steps/exit_kickoff/complete",
        {"note": "Kickoff held", "evidence": [proof]},
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "dependencies_pending"
    assert response.json()["error"]["details"]["waiting_for"] == ["confirm_notice"]


def test_a_step_is_completed_with_evidence_and_reopened(api, case):
    alice = api("alice")
    proof = alice.upload().json()["sha256"]

    done = alice.post(f"/cases/{case.ref}/steps/confirm_notice/complete", {"evidence": [proof]})
    reopened = alice.post(
        f"/cases/{case.ref}/steps/confirm_notice/reopen", {"reason": "Wrong letter"}
    )

    assert done.status_code == 200, done.content
    assert done.json()["evidence"][0]["sha256"] == proof
    assert reopened.json()["status"] == "pending"
    assert api("alice").get(f"/cases/{case.ref}/steps/nope/start").status_code == 405
    missing = alice.post(f"/cases/{case.ref}/steps/nope/start")
    assert missing.status_code == 404
    assert "No step 'nope'" in missing.json()["error"]["message"]


def test_a_register_item_is_added_read_and_updated(api, case, cast):
    alice = api("alice")
    url = f"/cases/{case.ref}/access-grants"

    added = alice.post(
        url,
        {
            "direction": "provider_in_client",
            "system": "GitHub",
            "principal": "agency-bot",
            "planned_action": "revoke",
            "owner_id": cast["oscar"].user.pk,
        },
    )
    item = added.json()
    revoked = alice.patch(f"{url}/{item['id']}", {"status": "revoked"})
    read = alice.get(f"{url}/{item['id']}").json()
    listed = alice.get(url).json()

    assert added.status_code == 201, added.content
    assert item["owner"]["username"] == "oscar"
    assert item["status"] == "active"
    assert revoked.status_code == 200
    assert read["status"] == "revoked"
    assert read["actioned_by_id"] == cast["alice"].user.pk
    assert read["principal"] == "agency-bot"  # untouched by the patch
    assert item["id"] in [g["id"] for g in listed["items"]]
    types = list(LedgerEntry.objects.filter(case=case).values_list("type", flat=True))
    assert types[-2:] == ["access_grant.added", "access_grant.revoked"]


def test_a_waiver_is_granted_and_revoked(api, case):
    grant = case.access_grants.first()
    waiver = (
        api("bob")
        .post(
            f"/cases/{case.ref}/waivers",
            {
                "target_type": "access_grant",
                "target_id": grant.pk,
                "expires_at": "2099-01-01T00:00:00Z",
                "justification": "Kept for the warranty period",
            },
        )
        .json()
    )

    revoked = api("bob").post(
        f"/cases/{case.ref}/waivers/{waiver['id']}/revoke", {"reason": "Warranty ended"}
    )
    again = api("bob").post(f"/cases/{case.ref}/waivers/{waiver['id']}/revoke", {"reason": "x"})

    assert waiver["in_force"] is True
    assert waiver["target_label"].startswith(grant.system)
    assert revoked.json()["in_force"] is False
    assert again.status_code == 409


def test_a_waiver_of_a_missing_item_names_the_target(api, case):
    response = api("bob").post(
        f"/cases/{case.ref}/waivers",
        {
            "target_type": "deliverable",
            "target_id": 999999,
            "expires_at": "2099-01-01T00:00:00Z",
            "justification": "x",
        },
    )

    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["target_id"]


def test_a_playbook_that_does_not_cover_the_fee_type_is_refused(api, opening):
    source = (BUILTIN_DIR / "consulting.yaml").read_text("utf-8")
    fixed_only = "\n".join(
        line.replace("[fixed, time_and_materials, retainer]", "[fixed]")
        for line in source.splitlines()
        if not line.startswith(" ") or "fee_types:" not in line
    )
    imported = api("alice").post("/playbooks", {"source": fixed_only})
    assert imported.status_code == 201, imported.content
    body = {**opening, "playbook": "consulting"}  # the contract is a retainer

    previewed = api("alice").post("/cases/preview", body)
    opened = api("alice").post("/cases", body)

    for response in (previewed, opened):
        assert response.status_code == 422
        assert response.json()["error"]["details"]["fields"] == {
            "playbook": ["playbook 'consulting' does not cover fee type retainer"]
        }
    assert not OffboardingCase.objects.exists()


def test_unknown_contracts_and_a_version_without_its_playbook_are_field_errors(api, opening):
    unknown = api("alice").post(
        "/cases", {**opening, "contract_ids": [opening["contract_ids"][0], 999]}
    )
    versionless = api("alice").post("/cases", {**opening, "playbook_version": 1})

    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"]["fields"] == {
        "contract_ids": ["no contract 999 in this organization"]
    }
    assert versionless.status_code == 422
    assert list(versionless.json()["error"]["details"]["fields"]) == ["playbook_version"]
    assert not OffboardingCase.objects.exists()


REFUSED_OPENINGS = {
    "owner of another organization": (
        lambda ids: {"owner_id": ids["mallory"]},
        "owner_id",
        "user {mallory} is not a member of this organization",
    ),
    "owner who does not exist": (
        lambda ids: {"owner_id": 999_999},
        "owner_id",
        "user 999999 is not a member of this organization",
    ),
    "auditor as owner": (
        lambda ids: {"owner_id": ids["erin"]},
        "owner_id",
        "erin is an auditor and cannot own work",
    ),
    "assignee of another organization": (
        lambda ids: {"assignments": {"operator": ids["mallory"]}},
        "assignments.operator",
        "user {mallory} is not a member of this organization",
    ),
    "assignee who does not exist": (
        lambda ids: {"assignments": {"operator": 999_999}},
        "assignments.operator",
        "user 999999 is not a member of this organization",
    ),
    "evidence of another organization": (
        lambda ids: {"trigger_evidence": [ids["foreign_sha256"]]},
        "trigger_evidence",
        "no evidence file with sha256 {foreign_sha256}; upload it first",
    ),
    "evidence never uploaded": (
        lambda ids: {"trigger_evidence": ["ab" * 32]},
        "trigger_evidence",
        f"no evidence file with sha256 {'ab' * 32}; upload it first",
    ),
}


@pytest.mark.parametrize("refused", REFUSED_OPENINGS)
def test_the_preview_refuses_what_opening_refuses(api, opening, cast, mallory, refused):
    from tests.factories import upload

    ids = {
        "mallory": mallory.user.pk,
        "erin": cast["erin"].user.pk,
        "foreign_sha256": upload(mallory, b"%PDF-1.4 Globex only\n").sha256,
    }
    change, field, problem = REFUSED_OPENINGS[refused]
    body = {**opening, **change(ids)}
    events_before = LedgerEntry.objects.count()

    previewed = api("alice").post("/cases/preview", body)
    opened = api("alice").post("/cases", body)

    for response in (previewed, opened):
        assert response.status_code == 422, response.content
        assert response.json()["error"]["details"]["fields"] == {field: [problem.format(**ids)]}
    assert not OffboardingCase.objects.exists()
    assert LedgerEntry.objects.count() == events_before


def test_a_second_case_for_the_contract_needs_allow_duplicate(api, case, opening):
    page, resource = f"http://testserver/cases/{case.ref}/", f"/api/v1/cases/{case.ref}"
    named = {
        "ref": case.ref,
        "state": "active",
        "url": page,
        "api_url": "http://testserver" + resource,
    }

    previewed = api("alice").post("/cases/preview", opening)
    refused = api("alice").post("/cases", opening)

    assert previewed.status_code == 200
    assert previewed.json()["open_cases"] == [named]
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "duplicate_case"
    assert error["message"] == (
        f"Northwind Traders already has an open case for contract NW-2025-01: {case.ref} "
        '(active). Send "allow_duplicate": true to open another case anyway.'
    )
    assert error["details"] == {"open_cases": [named]}
    assert OffboardingCase.objects.count() == 1

    opened = api("alice").post("/cases", {**opening, "allow_duplicate": True})

    assert opened.status_code == 201, opened.content
    event = LedgerEntry.objects.get(case__ref=opened.json()["ref"], type="case.opened")
    assert event.data["duplicate"] == {"open_cases": [case.ref], "acknowledged": True}


def test_a_preview_without_an_open_case_lists_none(api, opening):
    assert api("alice").post("/cases/preview", opening).json()["open_cases"] == []
