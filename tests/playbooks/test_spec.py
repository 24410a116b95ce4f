"""The playbook spec: built-ins, line-numbered errors, semantic rules and robustness."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboard.playbooks.spec import (
    ACCESS_ACTIONS,
    ACCESS_DIRECTIONS,
    DATA_ACTIONS,
    DATA_METHODS,
    DUE_ANCHORS,
    EVIDENCE_KINDS,
    FEE_TYPES,
    HANDOVER_KINDS,
    ROLES,
    SEED_FIELDS,
    SEED_REGISTERS,
    SERVICE_TYPES,
    SETTLEMENT_KINDS,
    STEP_CATEGORIES,
    PlaybookError,
    PlaybookInvalid,
    PlaybookSpec,
    StepSpec,
    builtin_playbook_paths,
    load_schema,
    parse_playbook,
)

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline

BUILTINS = builtin_playbook_paths()
PHASE_ORDER = ["notice", "delivery", "handover", "access", "data", "finance", "closure"]

# Line numbers in the tests below refer to this text.
MINIMAL = textwrap.dedent(
    """\
    slug: test-playbook
    name: Test playbook
    service_type: consulting
    fee_types: [fixed, retainer]
    approval_policy:
      min_approvers: 1
      roles: [manager]
    steps:
      - key: confirm_notice
        phase: notice
        title: Confirm the notice
        owner_role: case_owner
        due: {from: trigger, offset_days: 2}
        category: notice
      - key: final_invoice
        phase: finance
        title: Issue the final invoice
        owner_role: finance
        due:
          from: end
          offset_days: 10
        category: invoice
        depends_on: [confirm_notice]
    seeds:
      data_dispositions:
        - {dataset: Client files, location: shared drive, action: return, method: export}
    """
)


def edited(old: str, new: str, source: str = MINIMAL) -> str:
    assert source.count(old) == 1, f"{old!r} must occur exactly once"
    return source.replace(old, new)


def errors_of(source: str | bytes) -> list[PlaybookError]:
    with pytest.raises(PlaybookInvalid) as info:
        parse_playbook(source)
    assert info.value.errors, "PlaybookInvalid must carry at least one error"
    return info.value.errors


def only_error(source: str | bytes) -> PlaybookError:
    errors = errors_of(source)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def step_yaml(key: str, category: str, depends_on: list[str], fee_types: str = "") -> str:
    lines = [
        f"  - key: {key}",
        "    phase: general",
        f"    title: Step {key}",
        "    owner_role: operator",
        "    due: {from: end, offset_days: 1}",
        f"    category: {category}",
        f"    depends_on: [{', '.join(depends_on)}]",
    ]
    if fee_types:
        lines.append(f"    fee_types: [{fee_types}]")
    return "\n".join(lines) + "\n"


def playbook_with_steps(*steps: str) -> str:
    head = MINIMAL.split("steps:\n")[0]
    return head + "steps:\n" + "".join(steps)


# --- the minimal playbook --------------------------------------------------------------------


def test_the_minimal_playbook_parses_with_defaults_filled_in() -> None:
    spec = parse_playbook(MINIMAL)
    assert spec.slug == "test-playbook"
    assert spec.description == ""
    assert spec.fee_types == ("fixed", "retainer")
    assert spec.steps[0] == StepSpec(
        key="confirm_notice",
        phase="notice",
        title="Confirm the notice",
        guidance="",
        owner_role="case_owner",
        due_anchor="trigger",
        due_offset_days=2,
        required=True,
        evidence=(),
        depends_on=(),
        category="notice",
        fee_types=None,
    )
    assert spec.steps[1].depends_on == ("confirm_notice",)
    assert spec.approval_policy.min_approvers == 1
    assert spec.approval_policy.roles == ("manager",)
    assert set(spec.seeds) == set(SEED_REGISTERS)
    assert spec.seeds["deliverables"] == ()
    assert spec.seeds["data_dispositions"] == (
        {
            "dataset": "Client files",
            "location": "shared drive",
            "action": "return",
            "method": "export",
            "retention_basis": "",
        },
    )


def test_bytes_and_text_give_the_same_spec() -> None:
    assert parse_playbook(MINIMAL.encode("utf-8")) == parse_playbook(MINIMAL)


def test_a_byte_order_mark_is_accepted() -> None:
    assert parse_playbook(b"\xef\xbb\xbf" + MINIMAL.encode()).slug == "test-playbook"


def test_a_spec_is_hashable_and_frozen() -> None:
    spec = parse_playbook(MINIMAL)
    assert hash(spec) == hash(parse_playbook(MINIMAL))
    with pytest.raises(AttributeError):
        spec.slug = "other"  # type: ignore[misc]


def test_the_schema_allows_exactly_the_values_the_module_declares() -> None:
    schema = load_schema()
    defs = schema["$defs"]
    step = defs["step"]["properties"]
    assert tuple(schema["properties"]["service_type"]["enum"]) == SERVICE_TYPES
    assert tuple(defs["fee_types"]["items"]["enum"]) == FEE_TYPES
    assert (
        tuple(schema["properties"]["approval_policy"]["properties"]["roles"]["items"]["enum"])
        == ROLES
    )
    assert tuple(step["owner_role"]["enum"]) == ("case_owner", *ROLES)
    assert tuple(step["due"]["properties"]["from"]["enum"]) == DUE_ANCHORS
    assert tuple(step["evidence"]["items"]["enum"]) == EVIDENCE_KINDS
    assert tuple(step["category"]["enum"]) == STEP_CATEGORIES
    assert tuple(defs["handover_item"]["properties"]["kind"]["enum"]) == HANDOVER_KINDS
    assert tuple(defs["access_grant"]["properties"]["direction"]["enum"]) == ACCESS_DIRECTIONS
    assert tuple(defs["access_grant"]["properties"]["planned_action"]["enum"]) == ACCESS_ACTIONS
    assert tuple(defs["data_disposition"]["properties"]["action"]["enum"]) == DATA_ACTIONS
    assert tuple(defs["data_disposition"]["properties"]["method"]["enum"]) == DATA_METHODS
    assert tuple(defs["settlement"]["properties"]["kind"]["enum"]) == SETTLEMENT_KINDS
    seeds = schema["properties"]["seeds"]["properties"]
    assert tuple(seeds) == SEED_REGISTERS
    for register, fields in SEED_FIELDS.items():
        ref = seeds[register]["items"]["$ref"].rsplit("/", 1)[1]
        assert tuple(defs[ref]["properties"]) == (*fields, "fee_types")


# --- built-ins -------------------------------------------------------------------------------


def test_there_is_one_builtin_per_service_type() -> None:
    specs = [parse_playbook(path.read_bytes()) for path in BUILTINS]
    assert [path.name for path in BUILTINS] == [
        "accounting.yaml",
        "consulting.yaml",
        "managed-it.yaml",
        "marketing-agency.yaml",
        "software-development.yaml",
    ]
    assert sorted(spec.service_type for spec in specs) == sorted(SERVICE_TYPES)


@pytest.fixture(params=BUILTINS, ids=lambda path: path.stem)
def builtin(request: pytest.FixtureRequest) -> PlaybookSpec:
    path: Path = request.param
    spec = parse_playbook(path.read_bytes())
    assert spec.slug == path.stem
    return spec


def test_every_builtin_supports_all_fee_types_with_12_to_20_steps(builtin: PlaybookSpec) -> None:
    assert builtin.fee_types == FEE_TYPES
    assert 12 <= len(builtin.steps) <= 20
    for fee_type in FEE_TYPES:
        assert len(builtin.steps_for(fee_type)) >= 12


def test_every_builtin_runs_its_phases_in_order(builtin: PlaybookSpec) -> None:
    phases = [step.phase for step in builtin.steps]
    assert set(phases) == set(PHASE_ORDER)
    assert phases == sorted(phases, key=PHASE_ORDER.index)


def test_every_builtin_has_meaningful_guidance(builtin: PlaybookSpec) -> None:
    for step in builtin.steps:
        assert len(step.guidance) >= 120, step.key
        assert step.evidence, f"{step.key} asks for no evidence"
    assert len(builtin.description) >= 200


def test_every_builtin_needs_two_approvers_unless_it_is_consulting_or_accounting(
    builtin: PlaybookSpec,
) -> None:
    assert builtin.approval_policy.roles == ("manager", "admin")
    if builtin.service_type in ("consulting", "accounting"):
        assert builtin.approval_policy.min_approvers in (1, 2)
    else:
        assert builtin.approval_policy.min_approvers == 2


def test_every_builtin_invoices_a_fixed_fee_only_after_written_acceptance(
    builtin: PlaybookSpec,
) -> None:
    [acceptance] = [
        s
        for s in builtin.steps
        if s.title.startswith("Obtain written acceptance sign-off") and s.fee_types == ("fixed",)
    ]
    assert acceptance.category == "deliverable"
    assert acceptance.required
    fixed = builtin.steps_for("fixed")
    [invoice] = [s for s in fixed if s.category == "invoice"]
    assert acceptance.key in invoice.depends_on
    for other in ("time_and_materials", "retainer"):
        assert acceptance.key not in {s.key for s in builtin.steps_for(other)}


def test_every_builtin_sends_a_non_renewal_notice_for_retainers(builtin: PlaybookSpec) -> None:
    [notice] = [s for s in builtin.steps if s.title.startswith("Send written non-renewal notice")]
    assert notice.category == "notice"
    assert notice.fee_types == ("retainer",)
    assert notice.key in {s.key for s in builtin.steps_for("retainer")}
    assert notice.key not in {s.key for s in builtin.steps_for("fixed")}


def test_every_builtin_has_one_final_invoice_and_one_payment_step_per_fee_type(
    builtin: PlaybookSpec,
) -> None:
    for fee_type in FEE_TYPES:
        steps = builtin.steps_for(fee_type)
        assert [s.category for s in steps].count("invoice") == 1
        assert [s.category for s in steps].count("payment") == 1
        assert [s.category for s in steps].count("approval") == 1
        assert {"data_return", "data_deletion", "access", "handover"} <= {s.category for s in steps}


def test_no_builtin_makes_data_return_or_deletion_wait_for_payment(builtin: PlaybookSpec) -> None:
    for fee_type in FEE_TYPES:
        steps = {s.key: s for s in builtin.steps_for(fee_type)}
        for step in steps.values():
            if step.category not in ("data_return", "data_deletion"):
                continue
            seen, todo = set(), list(step.depends_on)
            while todo:
                key = todo.pop()
                if key not in seen:
                    seen.add(key)
                    todo.extend(steps[key].depends_on)
            assert all(steps[k].category != "payment" for k in seen), step.key


@pytest.mark.parametrize("notice_days", [30, 90])
def test_no_builtin_step_is_due_before_a_step_it_waits_for(
    builtin: PlaybookSpec, notice_days: int
) -> None:
    trigger = dt.date(2026, 3, 2)
    anchors = {"trigger": trigger, "notice": trigger, "end": trigger + dt.timedelta(notice_days)}
    for fee_type in FEE_TYPES:
        steps = {s.key: s for s in builtin.steps_for(fee_type)}

        def due(step: StepSpec) -> dt.date:
            return anchors[step.due_anchor] + dt.timedelta(step.due_offset_days)

        for step in steps.values():
            for dep in step.depends_on:
                assert due(steps[dep]) <= due(step), f"{step.key} is due before {dep}"


# For each built-in: the step removing our own access, and the transfers it must wait for.
OWN_ACCESS_REMOVAL = {
    "marketing-agency": ("revoke_agency_access", {"transfer_ad_accounts", "handover_creative"}),
    "managed-it": ("remove_admin_access", {"transfer_admin_control", "transfer_licences"}),
    "software-development": (
        "revoke_our_access",
        {"transfer_repositories", "transfer_cloud_and_services"},
    ),
    "consulting": ("revoke_consultant_access", {"handover_working_materials"}),
    "accounting": ("revoke_our_access", {"transfer_software_subscriptions"}),
}


def test_every_builtin_transfers_ownership_before_revoking_its_own_access(
    builtin: PlaybookSpec,
) -> None:
    revoke, transfers = OWN_ACCESS_REMOVAL[builtin.slug]
    for fee_type in FEE_TYPES:
        steps = {s.key: s for s in builtin.steps_for(fee_type)}
        waits_for, todo = set(), list(steps[revoke].depends_on)
        while todo:
            key = todo.pop()
            if key not in waits_for:
                waits_for.add(key)
                todo.extend(steps[key].depends_on)
        assert steps[revoke].category == "access"
        assert transfers <= waits_for
        assert all(steps[key].category == "handover" for key in transfers)


def test_every_builtin_seeds_all_registers_realistically(builtin: PlaybookSpec) -> None:
    for register in SEED_REGISTERS:
        assert builtin.seeds[register], f"{register} has no seed items"
        for item in builtin.seeds[register]:
            assert tuple(k for k in item if k != "fee_types") == SEED_FIELDS[register]
    directions = {g["direction"] for g in builtin.seeds["access_grants"]}
    assert directions == set(ACCESS_DIRECTIONS)
    kinds = [s["kind"] for s in builtin.seeds["settlements"]]
    assert "final_invoice" in kinds
    for item in builtin.seeds["data_dispositions"]:
        if item["action"] == "retain":
            assert item["retention_basis"]


def test_steps_for_keeps_no_dangling_dependency(builtin: PlaybookSpec) -> None:
    for fee_type in FEE_TYPES:
        steps = builtin.steps_for(fee_type)
        keys = {s.key for s in steps}
        assert all(s.fee_types is None or fee_type in s.fee_types for s in steps)
        assert all(set(s.depends_on) <= keys for s in steps)
    assert len(builtin.steps_for("fixed")) < len(builtin.steps)


def test_seeds_for_drops_other_fee_types_and_the_fee_types_field(builtin: PlaybookSpec) -> None:
    for fee_type in FEE_TYPES:
        seeds = builtin.seeds_for(fee_type)
        assert set(seeds) == set(SEED_REGISTERS)
        for register, items in seeds.items():
            assert all("fee_types" not in item for item in items)
            expected = [
                {k: v for k, v in item.items() if k != "fee_types"}
                for item in builtin.seeds[register]
                if fee_type in item.get("fee_types", FEE_TYPES)
            ]
            assert list(items) == expected


def test_the_example_in_the_documentation_is_a_valid_playbook() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "playbooks.md").read_text("utf-8")
    example = doc.split("## A complete example")[1].split("```yaml\n")[1].split("```")[0]
    spec = parse_playbook(example)
    assert spec.slug == "seo-retainer-exit"
    assert [s.key for s in spec.steps_for("retainer")][:2] == [
        "confirm_notice",
        "send_non_renewal_notice",
    ]


# --- fee-type filtering on a small playbook --------------------------------------------------


def test_steps_for_bridges_a_dependency_on_a_step_of_another_fee_type() -> None:
    source = playbook_with_steps(
        step_yaml("deliver", "deliverable", []),
        step_yaml("accept", "deliverable", ["deliver"], fee_types="fixed"),
        step_yaml("invoice", "invoice", ["accept"]),
    )
    spec = parse_playbook(source)
    assert spec.step("invoice").depends_on == ("accept",)
    fixed = {s.key: s.depends_on for s in spec.steps_for("fixed")}
    assert fixed == {"deliver": (), "accept": ("deliver",), "invoice": ("accept",)}
    retainer = {s.key: s.depends_on for s in spec.steps_for("retainer")}
    assert retainer == {"deliver": (), "invoice": ("deliver",)}


def test_seeds_for_keeps_items_without_fee_types_for_every_fee_type() -> None:
    source = MINIMAL + (
        "  settlements:\n"
        "    - {kind: final_invoice}\n"
        "    - {kind: credit, description: Unused retainer, fee_types: [retainer]}\n"
    )
    spec = parse_playbook(source)
    assert spec.seeds["settlements"][1]["fee_types"] == ["retainer"]
    assert spec.seeds_for("fixed")["settlements"] == ({"kind": "final_invoice", "description": ""},)
    assert spec.seeds_for("retainer")["settlements"] == (
        {"kind": "final_invoice", "description": ""},
        {"kind": "credit", "description": "Unused retainer"},
    )
    spec.seeds_for("retainer")["settlements"][0]["kind"] = "changed"
    assert spec.seeds["settlements"][0]["kind"] == "final_invoice"


def test_steps_for_refuses_a_fee_type_the_playbook_does_not_support() -> None:
    spec = parse_playbook(MINIMAL)
    with pytest.raises(ValueError, match="does not support fee type 'time_and_materials'"):
        spec.steps_for("time_and_materials")
    with pytest.raises(ValueError, match="does not support fee type 'hourly'"):
        spec.seeds_for("hourly")


# --- errors with line numbers ----------------------------------------------------------------


def test_it_reports_the_line_of_an_unknown_key() -> None:
    error = only_error(edited("    category: notice\n", "    category: notice\n    colour: red\n"))
    assert error.line == 15
    assert error.path == "steps[0].colour"
    assert error.message.startswith("unknown field 'colour'; allowed fields: key, phase, title")


def test_it_suggests_the_field_an_unknown_key_was_probably_meant_to_be() -> None:
    missing, unknown = errors_of(edited("    owner_role: finance", "    owner_rol: finance"))
    assert str(missing) == "line 15: steps[1].owner_role: missing required field 'owner_role'"
    assert (unknown.line, unknown.path) == (18, "steps[1].owner_rol")
    assert "(did you mean 'owner_role'?)" in unknown.message


def test_it_reports_the_line_of_a_wrong_type() -> None:
    error = only_error(edited("offset_days: 10", "offset_days: ten"))
    assert str(error) == "line 21: steps[1].due.offset_days: 'ten' is not an integer"


def test_it_tells_how_to_quote_a_value_yaml_read_as_something_else() -> None:
    error = only_error(edited("title: Confirm the notice", "title: yes"))
    assert (error.line, error.path) == (11, "steps[0].title")
    assert error.message == "'yes' is not text; put it in quotes to use it as text: \"yes\""


def test_it_tells_how_to_write_a_list() -> None:
    error = only_error(
        edited("    category: notice\n", "    category: notice\n    evidence: file\n")
    )
    assert (
        str(error) == "line 15: steps[0].evidence: 'file' is not a list; write it as a list: [file]"
    )


def test_it_reports_a_missing_required_key_on_the_line_of_its_mapping() -> None:
    error = only_error(edited("    title: Confirm the notice\n", ""))
    assert str(error) == "line 9: steps[0].title: missing required field 'title'"


def test_it_reports_a_missing_nested_key_on_the_line_naming_the_mapping() -> None:
    error = only_error(edited("      from: end\n", ""))
    assert str(error) == "line 19: steps[1].due.from: missing required field 'from'"


def test_it_reports_the_line_of_a_bad_enum_value() -> None:
    error = only_error(edited("owner_role: finance", "owner_role: finanse"))
    assert (error.line, error.path) == (18, "steps[1].owner_role")
    assert error.message == (
        "'finanse' is not allowed (did you mean 'finance'?); "
        "use one of: case_owner, admin, manager, operator, finance, auditor"
    )


def test_it_reports_the_line_of_a_duplicate_key() -> None:
    error = only_error(edited("    title: Confirm the notice\n", "    title: A\n    title: B\n"))
    assert (error.line, error.path) == (12, "steps[0].title")
    assert error.message.startswith("duplicate key 'title': it is already given on line 11")


def test_it_reports_the_line_of_a_yaml_syntax_error() -> None:
    error = only_error(edited("title: Issue the final invoice", "title: Issue: the final invoice"))
    assert str(error) == "line 17: YAML syntax error: mapping values are not allowed here"


def test_it_reports_the_line_of_a_tab_used_for_indentation() -> None:
    error = only_error(edited("    category: invoice", "\tcategory: invoice"))
    assert error.line == 22
    assert error.message.startswith("YAML syntax error: found character '\\t'")


def test_it_reports_every_error_at_once_sorted_by_line() -> None:
    source = edited("slug: test-playbook", "slug: Test Playbook")
    source = edited("offset_days: 10", "offset_days: -4000", source)
    source = edited("roles: [manager]", "roles: [manager, manager]", source)
    source = edited("action: return", "action: keep", source)
    source = edited("    category: notice\n", "    category: notice\n    colour: red\n", source)
    with pytest.raises(PlaybookInvalid) as info:
        parse_playbook(source)
    assert str(info.value).splitlines() == [
        "line 1: slug: 'Test Playbook': use lowercase letters and digits, words joined by single "
        "hyphens, e.g. 'marketing-agency'",
        "line 7: approval_policy.roles: lists 'manager' more than once",
        "line 15: steps[0].colour: unknown field 'colour'; allowed fields: key, phase, title, "
        "guidance, owner_role, due, required, escalate, evidence, category, depends_on, fee_types, about",
        "line 22: steps[1].due.offset_days: '-4000' is too small: the minimum is -3650",
        "line 27: seeds.data_dispositions[0].action: 'keep' is not allowed; "
        "use one of: return, delete, retain",
    ]


def test_a_document_that_is_a_list_is_refused() -> None:
    error = only_error("- slug: a\n- name: b\n")
    assert str(error) == (
        "line 1: the playbook must be a mapping of fields (slug: ..., name: ..., steps: ...), "
        "not a list"
    )


@pytest.mark.parametrize("source", ["", "# only a comment\n", b"", "---\n"])
def test_an_empty_document_is_refused(source: str | bytes) -> None:
    assert str(only_error(source)) == "the playbook is empty; it must be a mapping of fields"


def test_bad_utf8_is_refused_with_its_line() -> None:
    source = MINIMAL.encode().replace(b"Test playbook", b"Test \xff playbook")
    assert str(only_error(source)) == (
        "line 2: the file is not valid UTF-8 text (byte 0xff at offset 31); save it as UTF-8"
    )


def test_control_characters_are_refused_with_their_line() -> None:
    error = only_error(edited("Test playbook", "Test\x07playbook"))
    assert str(error) == "line 2: character U+0007 is not allowed in YAML; remove it"


def test_a_nul_written_as_an_escape_is_refused_with_its_line() -> None:
    # YAML refuses a raw NUL byte, but "\\0" inside double quotes makes one: no database keeps it.
    error = only_error(edited("title: Confirm the notice", 'title: "Confirm\\0the notice"'))
    assert str(error) == "line 11: steps[0].title: must not contain NUL characters"


def test_two_documents_in_one_file_are_refused() -> None:
    error = only_error(MINIMAL + "---\nslug: second\n")
    assert error.line == 27
    assert "expected a single document" in error.message


def test_an_unknown_yaml_tag_is_refused_with_its_line() -> None:
    error = only_error(edited("title: Confirm the notice", "title: !secret Confirm the notice"))
    assert (error.line, error.path) == (11, "steps[0].title")
    assert "could not determine a constructor for the tag '!secret'" in error.message


def test_a_merge_key_is_refused() -> None:
    errors = errors_of(edited("  min_approvers: 1\n", "  <<: {min_approvers: 1}\n"))
    assert [str(e) for e in errors] == [
        "line 5: approval_policy.min_approvers: missing required field 'min_approvers'",
        "line 6: approval_policy: YAML merge keys ('<<') are not supported; write the fields out "
        "in full",
    ]


def test_anchors_and_aliases_are_followed() -> None:
    source = edited("roles: [manager]", "roles: &approvers [manager]")
    source = edited("phase: finance", "phase: *approvers", source)
    error = only_error(source)
    assert str(error) == "line 16: steps[1].phase: a list is not text"


def test_a_self_referencing_alias_is_refused() -> None:
    errors = errors_of("slug: &a [*a]\n")
    assert "line 1: slug[0]: an alias refers to its own parent (a loop)" in map(str, errors)


def test_deep_nesting_is_refused() -> None:
    errors = errors_of("slug: " + "[" * 1500)
    assert errors[0].message.startswith("the YAML is nested too deeply")


def test_an_oversized_playbook_is_refused() -> None:
    error = only_error(b"#" * 1_000_001)
    assert error.message == "the playbook is 1000001 bytes long; at most 1000000 are allowed"


# --- semantic rules --------------------------------------------------------------------------


def test_it_rejects_a_duplicate_step_key() -> None:
    source = MINIMAL.replace("seeds:\n", step_yaml("confirm_notice", "general", []) + "seeds:\n")
    error = only_error(source)
    assert str(error) == (
        "line 24: steps[2].key: step key 'confirm_notice' is already used by the step on line 9; "
        "step keys must be unique"
    )


def test_it_rejects_a_dependency_on_an_unknown_step() -> None:
    error = only_error(edited("depends_on: [confirm_notice]", "depends_on: [confirm_notise]"))
    assert str(error) == (
        "line 23: steps[1].depends_on[0]: step 'final_invoice' depends on 'confirm_notise', "
        "but no step has that key (did you mean 'confirm_notice'?)"
    )


def test_it_rejects_a_step_depending_on_itself() -> None:
    error = only_error(edited("depends_on: [confirm_notice]", "depends_on: [final_invoice]"))
    assert (
        str(error)
        == "line 23: steps[1].depends_on[0]: step 'final_invoice' cannot depend on itself"
    )


def test_it_rejects_a_dependency_cycle_and_names_it() -> None:
    source = playbook_with_steps(
        step_yaml("a", "general", []),
        step_yaml("b", "general", ["d"]),
        step_yaml("c", "general", ["b"]),
        step_yaml("d", "general", ["c"]),
    )
    error = only_error(source)
    assert error.path == "steps[1].depends_on"
    assert error.line == 22
    assert error.message == (
        "dependency cycle 'b' -> 'd' -> 'c' -> 'b': none of these steps could ever start; "
        "remove one dependency"
    )


def test_it_rejects_data_return_waiting_directly_for_payment() -> None:
    source = playbook_with_steps(
        step_yaml("final_payment", "payment", []),
        step_yaml("return_data", "data_return", ["final_payment"]),
    )
    error = only_error(source)
    assert error.path == "steps[1].depends_on[0]"
    assert error.line == 22
    assert error.message == (
        "step 'return_data' (data_return) waits for payment step 'final_payment': returning or "
        "deleting the client's data must never be conditioned on payment"
    )


def test_it_rejects_data_deletion_waiting_for_payment_through_other_steps() -> None:
    source = playbook_with_steps(
        step_yaml("final_payment", "payment", []),
        step_yaml("approve", "approval", ["final_payment"]),
        step_yaml("review", "general", ["approve"]),
        step_yaml("delete_data", "data_deletion", ["review"]),
    )
    error = only_error(source)
    assert error.path == "steps[3].depends_on[0]"
    assert error.message == (
        "step 'delete_data' (data_deletion) waits for payment step 'final_payment' (through "
        "'review' -> 'approve'): returning or deleting the client's data must never be "
        "conditioned on payment"
    )


def test_a_payment_step_may_wait_for_data_return() -> None:
    source = playbook_with_steps(
        step_yaml("return_data", "data_return", []),
        step_yaml("final_payment", "payment", ["return_data"]),
    )
    assert parse_playbook(source).step("final_payment").depends_on == ("return_data",)


def test_it_rejects_retaining_data_without_a_basis() -> None:
    error = only_error(edited("action: return, method: export", "action: retain"))
    assert str(error) == (
        "line 26: seeds.data_dispositions[0].retention_basis: data set 'Client files' is "
        "retained, so it needs a retention_basis: the law or contract clause that requires "
        "keeping it"
    )


def test_retaining_data_with_a_basis_is_accepted() -> None:
    source = edited(
        "action: return, method: export", "action: retain, retention_basis: 'Tax law, 6 years'"
    )
    [item] = parse_playbook(source).seeds["data_dispositions"]
    assert item["retention_basis"] == "Tax law, 6 years"


def test_it_rejects_a_step_fee_type_the_playbook_does_not_support() -> None:
    source = edited(
        "    category: notice\n", "    category: notice\n    fee_types: [time_and_materials]\n"
    )
    assert str(only_error(source)) == (
        "line 15: steps[0].fee_types: fee type 'time_and_materials' not supported by this "
        "playbook; its fee_types are: fixed, retainer"
    )


def test_it_rejects_an_auditor_as_approver_or_step_owner() -> None:
    source = edited("roles: [manager]", "roles: [manager, auditor]")
    source = edited("owner_role: case_owner", "owner_role: auditor", source)
    assert [str(e) for e in errors_of(source)] == [
        "line 7: approval_policy.roles[1]: 'auditor' cannot approve a closure (auditors are "
        "read-only); use one of: admin, manager, operator, finance",
        "line 12: steps[0].owner_role: 'auditor' cannot own a step (auditors are read-only); "
        "use one of: case_owner, admin, manager, operator, finance",
    ]


@pytest.mark.parametrize(
    ("count", "message"),
    [(0, "'0' is too small: the minimum is 1"), (6, "'6' is too large: the maximum is 5")],
)
def test_it_bounds_the_number_of_approvers(count: int, message: str) -> None:
    error = only_error(edited("min_approvers: 1", f"min_approvers: {count}"))
    assert str(error) == f"line 6: approval_policy.min_approvers: {message}"


def test_a_key_with_a_trailing_line_break_is_refused() -> None:
    errors = errors_of(edited("key: confirm_notice", 'key: "confirm_notice\\n"'))
    assert str(errors[0]) == (
        "line 9: steps[0].key: 'confirm_notice\\n': use lowercase letters, digits and underscores "
        "only, e.g. 'confirm_notice'"
    )


def test_semantic_rules_wait_until_the_schema_passes() -> None:
    source = edited("depends_on: [confirm_notice]", "depends_on: [nowhere]")
    source = edited("title: Confirm the notice", "title: ''", source)
    assert [str(e) for e in errors_of(source)] == ["line 11: steps[0].title: must not be blank"]


# --- robustness ------------------------------------------------------------------------------

ROBUST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Mutating a built-in costs a full parse (~40 ms) per example.
ROBUST_BUILTIN = settings(ROBUST, max_examples=60)


def parses_or_explains(source: str | bytes) -> None:
    """The only two outcomes allowed for any input."""
    try:
        result = parse_playbook(source)
    except PlaybookInvalid as exc:
        assert exc.errors
        text = source if isinstance(source, str) else source.decode("utf-8", errors="replace")
        last_line = len(text.splitlines()) + 1
        for error in exc.errors:
            assert error.message
            assert error.line is None or 1 <= error.line <= last_line, str(error)
        assert str(exc) == "\n".join(str(e) for e in exc.errors)
        return
    assert isinstance(result, PlaybookSpec)


@ROBUST_BUILTIN
@given(st.sampled_from(BUILTINS), st.data())
def test_deleting_any_line_of_a_builtin_parses_or_explains(path: Path, data: st.DataObject) -> None:
    lines = path.read_text("utf-8").splitlines(keepends=True)
    index = data.draw(st.integers(0, len(lines) - 1))
    parses_or_explains("".join(lines[:index] + lines[index + 1 :]))


@ROBUST_BUILTIN
@given(st.sampled_from(BUILTINS), st.data())
def test_splicing_random_text_into_a_builtin_parses_or_explains(
    path: Path, data: st.DataObject
) -> None:
    source = path.read_text("utf-8")
    at = data.draw(st.integers(0, len(source)))
    cut = data.draw(st.integers(0, 40))
    yaml_ish = st.text(alphabet="-:[]{}&*!|>'\"#%@`, \n\tax1", max_size=30)
    noise = data.draw(yaml_ish | st.text(max_size=30))
    parses_or_explains(source[:at] + noise + source[at + cut :])


@ROBUST
@given(st.text(max_size=300))
def test_random_text_parses_or_explains(source: str) -> None:
    parses_or_explains(source)


@ROBUST
@given(st.binary(max_size=300))
def test_random_bytes_parse_or_explain(source: bytes) -> None:
    parses_or_explains(source)


@ROBUST
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["slug", "steps", "key", "due", "seeds", "x"]), children
            )
        ),
        max_leaves=20,
    )
)
def test_random_json_documents_parse_or_explain(document: object) -> None:
    parses_or_explains(json.dumps(document))


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["fixed", "retainer", "payment", "data_return", "confirm_notice", "retain"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@ROBUST_BUILTIN
@given(st.sampled_from(BUILTINS), st.data())
def test_replacing_any_value_of_a_builtin_parses_or_explains(
    path: Path, data: st.DataObject
) -> None:
    import yaml

    document = yaml.safe_load(path.read_text("utf-8"))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(_paths(document)[1:]))
        parent = document
        for part in where[:-1]:
            parent = parent[part]  # type: ignore[index]
        parent[where[-1]] = data.draw(JSONISH)  # type: ignore[index]
    parses_or_explains(yaml.safe_dump(document, allow_unicode=True))


# --- escalation ------------------------------------------------------------------------------


def test_a_step_may_set_its_own_escalation_delays() -> None:
    source = edited(
        "    category: notice\n",
        "    category: notice\n    escalate: {owner_after_days: 1, managers_after_days: 4}\n",
    )
    confirm, final = parse_playbook(source).steps
    assert (confirm.escalate_owner_days, confirm.escalate_managers_days) == (1, 4)
    assert (final.escalate_owner_days, final.escalate_managers_days) == (None, None)


def test_managers_told_before_the_owner_is_refused_on_its_line() -> None:
    source = edited(
        "    category: notice\n",
        "    category: notice\n    escalate: {owner_after_days: 5, managers_after_days: 2}\n",
    )
    error = only_error(source)
    assert error.line == 15
    assert error.path == "steps[0].escalate.managers_after_days"
    assert "make managers_after_days at least 5" in error.message


def test_an_escalation_delay_must_be_a_whole_number_of_days() -> None:
    source = edited(
        "    category: notice\n", "    category: notice\n    escalate: {owner_after_days: -1}\n"
    )
    assert "steps[0].escalate.owner_after_days" in only_error(source).path
