"""Each step count says what it counts, in the same words on the playbook card, the open-a-case
preview and the case header: the steps in the playbook, those that apply only to some fee
types, the steps for this case and how many of them are required."""

import re

import pytest
from django.test import Client
from django.utils.html import strip_tags

from offboard.playbooks.spec import parse_playbook
from offboard.web.pages.playbooks import fee_limited

TINY = """
slug: tiny
name: Tiny exit
service_type: consulting
fee_types: [fixed, time_and_materials, retainer]
approval_policy: {min_approvers: 1, roles: [manager]}
steps:
  - {key: notice, phase: notice, title: Confirm the notice, owner_role: case_owner,
     due: {from: trigger, offset_days: 2}}
  - {key: agree_scope, phase: notice, title: Agree the close-out scope, owner_role: manager,
     due: {from: trigger, offset_days: 5}, fee_types: [retainer]}
  - {key: wind_down, phase: notice, title: Wind down the retainer, owner_role: manager,
     due: {from: trigger, offset_days: 6}, fee_types: [retainer]}
  - {key: accept, phase: notice, title: Obtain acceptance, owner_role: case_owner,
     due: {from: end, offset_days: 0}, fee_types: [fixed, time_and_materials]}
  - {key: everyone, phase: notice, title: Applies to all, owner_role: finance,
     due: {from: end, offset_days: 5}, fee_types: [fixed, time_and_materials, retainer]}
"""


def test_a_playbook_says_which_steps_apply_only_to_some_fee_types():
    spec = parse_playbook(TINY)
    assert fee_limited(spec) == (
        "2 apply only to retainer contracts, 1 only to fixed fee or time and materials contracts"
    )
    one = parse_playbook(TINY.replace("fee_types: [retainer]}", "}", 1))
    assert fee_limited(one).startswith("1 applies only to retainer contracts, 1 only to")
    every = parse_playbook(TINY.split("  - {key: agree_scope")[0])
    assert len(every.steps) == 1 and fee_limited(every) == ""


def _expected(spec, fee_type):
    steps = spec.steps_for(fee_type)
    limited = [s for s in spec.steps if s.fee_types and set(spec.fee_types) - set(s.fee_types)]
    return {
        "playbook": len(spec.steps),
        "limited": len(limited),
        "case": len(steps),
        "required": sum(1 for s in steps if s.required),
        "other_fees": len(spec.steps) - len(steps),
    }


def text(response) -> str:
    """What the page says, tags left out."""
    return re.sub(r"\s+", " ", strip_tags(response.content.decode()))


@pytest.fixture
def web(cast, playbooks):
    c = Client()
    c.force_login(cast["alice"].user)
    return c


def test_the_card_the_preview_and_the_case_count_steps_in_the_same_words(
    web, case, client_contract, cast, playbooks
):
    version = playbooks["marketing_agency"]
    n = _expected(version.spec, "retainer")  # the case's contract is a retainer
    assert n["limited"] and n["other_fees"] and n["required"] < n["case"] < n["playbook"]

    limited = fee_limited(version.spec)
    counted = re.findall(r"(\d+)(?: appl(?:y|ies))? only to [a-z ]+ contracts", limited)
    assert sum(int(k) for k in counted) == n["limited"]

    card = text(web.get("/playbooks/"))
    assert f"{n['playbook']} steps in the playbook; {limited}" in card

    detail = text(web.get(f"/playbooks/{version.playbook.slug}/"))
    assert f"{n['playbook']} steps in the playbook; {limited}." in detail

    client, contract = client_contract
    preview = text(
        web.post(
            "/cases/new/",
            {
                "client": client.pk,
                "contracts": [contract.pk],
                "trigger": "non_renewal",
                "trigger_date": "2026-11-02",
                "scope": "full",
                "owner": cast["alice"].user.pk,
                "playbook_version": version.pk,
                "action": "preview",
            },
        )
    )
    assert (
        f"{n['case']} steps for this case, {n['required']} required (of the {n['playbook']} "
        f"steps in the playbook, {n['other_fees']} apply only to other fee types)"
    ) in preview

    header = text(web.get(f"/cases/{case.ref}/"))
    assert f"0 of {n['required']} required steps done" in header
    assert f"· {n['case']} steps for this case" in header
    assert case.steps.count() == n["case"]
    assert case.steps.filter(required=True).count() == n["required"]
