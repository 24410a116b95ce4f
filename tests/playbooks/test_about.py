"""`about`: the register items a step is about — declared, taken from the category, or none —
validated with lines like every other field; `client_ack` only where the portal can give it."""

from __future__ import annotations

import pytest

from offboard.playbooks.about import ABOUT_FILTERS, ACKNOWLEDGED_IN_PORTAL, Selector
from offboard.playbooks.spec import (
    SEED_REGISTERS,
    PlaybookInvalid,
    PlaybookSpec,
    builtin_playbook_paths,
    load_schema,
    parse_playbook,
)
from tests.playbooks.test_spec import edited

pytestmark = pytest.mark.offline

STEP = """  - key: revoke_access
    phase: access
    title: Remove our users from the client's systems
    owner_role: operator
    due: {from: end, offset_days: 1}
    category: access
"""


def with_step(extra: str = "", evidence: str = "") -> str:
    text = STEP + (f"    evidence: {evidence}\n" if evidence else "") + extra
    return edited("seeds:\n", text + "seeds:\n")


def errors(source: str) -> list[str]:
    with pytest.raises(PlaybookInvalid) as exc:
        parse_playbook(source)
    return [str(e) for e in exc.value.errors]


def test_without_about_a_step_is_about_what_its_category_names() -> None:
    spec = parse_playbook(with_step())
    assert spec.step("revoke_access").about == (Selector("access_grants"),)
    assert spec.step("confirm_notice").about == ()  # a notice is about no register item
    assert spec.step("final_invoice").about == ()  # issuing an invoice settles nothing


def test_about_narrows_the_register_by_what_kind_of_item_it_is() -> None:
    spec = parse_playbook(
        with_step(
            "    about:\n"
            "      - {register: access_grants, direction: [client_in_provider]}\n"
            "      - {register: handover_items, kind: [licence, domain]}\n"
        )
    )
    about = spec.step("revoke_access").about
    assert [s.as_dict() for s in about] == [
        {"register": "access_grants", "direction": ["client_in_provider"]},
        {"register": "handover_items", "kind": ["licence", "domain"]},
    ]
    grant = {"direction": "client_in_provider", "planned_action": "revoke"}
    assert about[0].matches(grant.get)
    assert not about[0].matches({**grant, "direction": "provider_in_client"}.get)
    assert about[1].describe() == "handover items (kind: licence, domain)"


def test_an_empty_about_means_no_items() -> None:
    spec = parse_playbook(with_step("    about: []\n"))
    assert spec.step("revoke_access").about == ()


def test_a_wrong_filter_or_value_is_named_with_its_line() -> None:
    found = errors(
        with_step(
            "    about:\n"
            "      - {register: deliverables, kind: [document]}\n"
            "      - {register: handover_items, kind: [licenc]}\n"
        )
    )
    assert any(
        e.startswith("line ")
        and "steps[2].about[0].kind: deliverables cannot be narrowed by 'kind'" in e
        for e in found
    ), found
    assert any(
        "steps[2].about[1].kind[0]: 'licenc' is not a kind of handover_items "
        "(did you mean 'licence'?)" in e
        for e in found
    ), found
    (unknown,) = errors(with_step("    about:\n      - {register: payments}\n"))
    assert "steps[2].about[0].register: 'payments' is not allowed; use one of:" in unknown


def test_client_ack_needs_items_the_portal_shows_but_stored_versions_still_read() -> None:
    source = with_step(evidence="[file, client_ack]")
    (error,) = errors(source)
    assert "steps[2].evidence: step 'revoke_access' accepts client_ack" in error
    assert "only deliverables and handover items" in error
    # A version imported before this rule existed is history: it reads back as it was.
    stored = parse_playbook(source, stored=True)
    assert stored.step("revoke_access").evidence == ("file", "client_ack")
    # About a handover item too, the client can acknowledge it: allowed.
    parse_playbook(
        with_step(
            "    about:\n"
            "      - {register: access_grants}\n"
            "      - {register: handover_items, kind: [vault_entry]}\n",
            evidence="[file, client_ack]",
        )
    )


def test_the_schema_knows_every_register_and_filter() -> None:
    about = load_schema()["$defs"]["about"]["properties"]
    assert tuple(about["register"]["enum"]) == SEED_REGISTERS == tuple(ABOUT_FILTERS)
    filters = {name for names in ABOUT_FILTERS.values() for name in names}
    assert set(about) - {"register"} == filters


@pytest.fixture(params=builtin_playbook_paths(), ids=lambda p: p.stem)
def builtin(request: pytest.FixtureRequest) -> PlaybookSpec:
    return parse_playbook(request.param.read_bytes())


def test_every_builtin_access_step_is_about_one_direction(builtin: PlaybookSpec) -> None:
    directions = []
    for step in builtin.steps:
        for selector in step.about:
            if selector.register == "access_grants":
                (direction,) = dict(selector.where)["direction"]
                directions.append(direction)
    assert sorted(directions) == ["client_in_provider", "provider_in_client"]


def test_every_builtin_client_ack_step_is_about_items_the_portal_shows(
    builtin: PlaybookSpec,
) -> None:
    for step in builtin.steps:
        if "client_ack" in step.evidence:
            assert any(s.register in ACKNOWLEDGED_IN_PORTAL for s in step.about), step.key
