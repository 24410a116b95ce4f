"""Lists paginate; list and detail endpoints cost the same number of queries at any size."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from offboard.cases.services import add_register_item, grant_waiver, open_case
from tests.factories import upload

AUTH_QUERIES = 4  # token, membership, its user and organization
LIST_QUERIES = AUTH_QUERIES + 2  # count, page: nothing per case
REGISTER_QUERIES = AUTH_QUERIES + 4  # case, count, page, evidence: nothing per item
DETAIL_QUERIES = AUTH_QUERIES + 19  # the case and one query per prefetched relation


def _open_cases(n: int, cast: dict[str, Any], client_contract: Any, playbooks: Any) -> None:
    client, contract = client_contract
    for i in range(n):
        open_case(
            actor=cast["alice"],
            client=client,
            contracts=[contract],
            trigger="breach",
            trigger_date=dt.date(2026, 11, 1) + dt.timedelta(days=i % 20),
            owner_id=cast["bob" if i % 2 else "carol"].user.pk,
            playbook_version=playbooks["marketing_agency"],
            allow_duplicate=True,
        )


def _grow(case: Any, cast: dict[str, Any], n: int) -> None:
    """n more items in every register and n waivers with evidence, each with its event."""
    values = {
        "deliverables": {"title": "Extra report"},
        "handover_items": {"kind": "document", "name": "Runbook"},
        "access_grants": {
            "direction": "provider_in_client",
            "system": "Jira",
            "planned_action": "revoke",
        },
        "data_dispositions": {"dataset": "Exports", "location": "S3", "action": "return"},
        "settlements": {"kind": "credit", "description": "Credit note"},
    }
    for i in range(n):
        proof = upload(cast["alice"], f"%PDF-1.4 proof {i}".encode())
        for register, fields in values.items():
            item = add_register_item(
                actor=cast["alice"],
                case=case,
                register=register,
                values=dict(fields),
                evidence=[proof],
            )
        grant_waiver(
            actor=cast["bob"],
            case=case,
            target_type="settlement",
            target_id=item.pk,
            justification="Credit not owed",
            evidence=[proof],
            expires_at=timezone.now() + dt.timedelta(days=30),
        )


def test_lists_paginate_with_limit_offset_and_a_total_count(api, cast, client_contract, playbooks):
    _open_cases(3, cast, client_contract, playbooks)
    erin = api("erin")

    first = erin.get("/cases", {"limit": 2}).json()
    rest = erin.get("/cases", {"limit": 2, "offset": 2}).json()
    beyond = erin.get("/cases", {"offset": 10}).json()

    assert (first["count"], len(first["items"])) == (3, 2)
    assert (rest["count"], len(rest["items"])) == (3, 1)
    assert {c["ref"] for c in first["items"] + rest["items"]} == {
        "C-2026-0001",
        "C-2026-0002",
        "C-2026-0003",
    }
    assert beyond == {"items": [], "count": 3}
    too_small = erin.get("/cases", {"limit": 0})
    assert too_small.status_code == 422
    assert list(too_small.json()["error"]["details"]["fields"]) == ["limit"]
    assert erin.get("/cases", {"offset": -1}).status_code == 422


def test_the_timeline_paginates(api, case):
    for _ in range(4):
        api("alice").post(f"/cases/{case.ref}/steps/confirm_notice/start")  # 1 works, 3 refused

    page = api("erin").get(f"/cases/{case.ref}/events", {"limit": 1, "offset": 1}).json()

    assert page["count"] == 2
    assert [e["type"] for e in page["items"]] == ["step.started"]


@pytest.mark.parametrize("n", [3, 30])
def test_listing_cases_costs_the_same_queries_for_3_or_30(
    api, cast, client_contract, playbooks, n, django_assert_max_num_queries
):
    _open_cases(n, cast, client_contract, playbooks)
    erin = api("erin")
    erin.get("/me")  # the token's last-used time is written once a minute, not per request

    with django_assert_max_num_queries(LIST_QUERIES):
        response = erin.get("/cases", {"limit": 100})

    assert response.json()["count"] == n
    assert all(c["steps_total"] > 0 for c in response.json()["items"])


@pytest.mark.parametrize("n", [1, 25])
def test_a_case_detail_costs_the_same_queries_however_much_it_holds(
    api, case, cast, n, django_assert_max_num_queries
):
    _grow(case, cast, n)
    erin = api("erin")
    erin.get("/me")

    with django_assert_max_num_queries(DETAIL_QUERIES):
        response = erin.get(f"/cases/{case.ref}")

    assert response.status_code == 200
    body = response.json()
    assert len(body["registers"]["access_grants"]) == case.access_grants.count()
    assert len(body["waivers"]) == n
    assert body["waivers"][0]["evidence"][0]["name"] == "evidence.pdf"


@pytest.mark.parametrize("n", [1, 25])
def test_a_register_list_costs_the_same_queries_however_long(
    api, case, cast, n, django_assert_max_num_queries
):
    _grow(case, cast, n)
    erin = api("erin")
    erin.get("/me")

    with django_assert_max_num_queries(REGISTER_QUERIES):
        response = erin.get(f"/cases/{case.ref}/access-grants", {"limit": 500})

    assert response.json()["count"] == case.access_grants.count()


@pytest.mark.parametrize("url", ["/clients", "/members", "/playbooks", "/tokens"])
def test_other_lists_paginate_too(api, client_contract, playbooks, url):
    page = api("alice").get(url, {"limit": 1}).json()

    assert set(page) == {"items", "count"}
    assert len(page["items"]) == 1
    assert page["count"] >= 1
