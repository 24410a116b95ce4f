"""The `offboard` command line, driven in-process through Typer's runner (one test runs the
installed console script), with the shared cast of tests/conftest.py in organization Acme."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offboard.cli import app

BAD_PLAYBOOK = """\
slug: tiny
name: Tiny playbook
service_type: marketing_agency
fee_types: [fixed]
approval_policy:
  min_approvers: 1
  roles: [manager]
steps:
  - key: confirm_notice
    phase: notice
    title: Confirm the notice
    owner_role: auditor
    due: {from: trigger, offset_days: 2}
  - key: second
    phase: notice
    title: Second
    owner_role: operator
    due: {from: trigger, offset_days: 3}
    depends_on: [confirm_notise]
"""


@pytest.fixture(autouse=True)
def _no_ambient_identity(monkeypatch):
    for name in ("OFFBOARD_ORG", "OFFBOARD_USER", "OFFBOARD_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def open_args(**overrides: str) -> list[str]:
    values = {
        "--client": "Northwind Traders",
        "--contract": "NW-2025-01",
        "--trigger": "non_renewal",
        "--trigger-date": "2026-11-02",
        "--owner": "alice",
    }
    values.update(overrides)
    args = ["case", "open"]
    for option, value in values.items():
        args += [option, value]
    return args


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def fresh_case(ref: str):
    from offboard.cases.models import OffboardingCase
    from offboard.cases.state import fresh

    return fresh(OffboardingCase.objects.get(ref=ref))


# --- help ------------------------------------------------------------------------------------


def test_help_lists_every_command_group():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("init", "serve", "demo", "user", "case", "playbook"):
        assert command in result.stdout


def test_case_open_help_names_every_trigger_the_model_knows(db):
    from offboard.cases.models import OffboardingCase
    from offboard.cli.cases import TRIGGERS

    assert tuple(OffboardingCase.Trigger.values) == TRIGGERS
    assert run("case", "open", "--help").exit_code == 0


def test_serve_help_points_to_gunicorn_for_production():
    result = run("serve", "--help")
    assert result.exit_code == 0
    assert "gunicorn" in result.stdout


# --- trigger to closed -----------------------------------------------------------------------


def test_a_case_goes_from_trigger_to_closed_through_the_cli(cast, playbooks, client_contract):
    from tests.factories import settle_everything

    opened = run(*open_args(), "--json")
    assert opened.exit_code == 0, opened.stderr
    ref = json.loads(opened.stdout)["ref"]
    settle_everything(fresh_case(ref), cast)

    closing = run("case", "closing", ref, "--as", "alice")
    assert closing.exit_code == 0, closing.stderr
    assert "is closing" in closing.stdout
    bob = run("case", "approve", ref, "--decision", "approved", "--as", "bob")
    assert bob.exit_code == 0, bob.stderr
    assert "Still needed" in bob.stdout
    carol = run(
        "case",
        "approve",
        ref,
        "--decision",
        "approved",
        "--as",
        "carol",
        "--comment",
        "All registers settled",
    )
    assert carol.exit_code == 0, carol.stderr
    closed = run("case", "close", ref, "--as", "alice")

    assert closed.exit_code == 0, closed.stderr
    assert f"{ref} is closed" in closed.stdout
    case = fresh_case(ref)
    assert case.state == "closed"
    assert sorted(a.approver.username for a in case.approvals.all()) == ["bob", "carol"]
    closed = case.events.filter(type="case.closed")
    assert [e.actor["auth"] for e in closed] == ["cli"]


def test_approve_shows_the_digest_it_approves(cast, case):
    from offboard.cases.services import enter_closing
    from offboard.cases.state import state_digest
    from tests.factories import settle_everything

    case = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=case)
    digest = state_digest(fresh_case(case.ref))

    result = run("case", "approve", case.ref, "--decision", "approved", "--as", "bob")

    assert result.exit_code == 0, result.stderr
    assert digest in result.stdout
    assert fresh_case(case.ref).approvals.get().state_digest == digest


def test_approving_a_state_you_did_not_review_is_refused(cast, case):
    from offboard.cases.services import enter_closing
    from tests.factories import settle_everything

    enter_closing(actor=cast["alice"], case=settle_everything(case, cast))

    result = run(
        "case", "approve", case.ref, "--decision", "approved", "--as", "bob", "--digest", "0" * 64
    )

    assert result.exit_code == 1
    assert error_lines(result)[0].startswith(
        f"error: Case {case.ref} changed since you reviewed it"
    )
    assert fresh_case(case.ref).approvals.count() == 0


def test_close_is_refused_listing_every_unmet_gate(case):
    from offboard.cases.gates import unmet_gates

    expected = [g.code for g in unmet_gates(fresh_case(case.ref))]

    result = run("case", "close", case.ref, "--as", "alice")

    assert result.exit_code == 1
    lines = error_lines(result)
    assert lines[0] == f"error: Cannot close case {case.ref}: {len(expected)} unmet gates:"
    for code in expected:
        assert any(line.startswith(f"  - {code}: ") for line in lines), code
    assert result.stderr.count("resolve: ") == len(expected)
    assert "Traceback" not in result.output
    assert fresh_case(case.ref).state == "active"


def test_a_write_to_a_closed_case_exits_1_with_a_clear_message(cast, case):
    from tests.factories import close_with_approvals, settle_everything

    close_with_approvals(settle_everything(case, cast), cast)

    result = run("case", "cancel", case.ref, "--reason", "Changed our mind", "--as", "alice")

    assert result.exit_code == 1
    assert error_lines(result) == [
        f"error: Case {case.ref} is closed and cannot be changed; append an addendum instead."
    ]
    assert fresh_case(case.ref).state == "closed"


def test_a_closed_case_still_takes_an_addendum(cast, case, tmp_path):
    from tests.factories import close_with_approvals, settle_everything

    close_with_approvals(settle_everything(case, cast), cast)
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(b"%PDF-1.4 client letter\n")

    result = run(
        "case",
        "addendum",
        case.ref,
        "--text",
        "The client confirmed receipt.",
        "--file",
        str(letter),
        "--as",
        "bob",
    )

    assert result.exit_code == 0, result.stderr
    addendum = fresh_case(case.ref).addenda.get()
    assert addendum.text == "The client confirmed receipt."
    assert addendum.evidence.get().original_name == "letter.pdf"


def test_entering_closing_too_early_lists_the_readiness_gates(case):
    result = run("case", "closing", case.ref)

    assert result.exit_code == 1
    assert error_lines(result)[0].startswith(f"error: Cannot enter closing for case {case.ref}")
    assert "  - steps.incomplete: " in result.stderr


def test_a_draft_is_activated_and_a_case_cancelled(alice, playbooks, client_contract):
    opened = run(*open_args(), "--draft", "--json")
    ref = json.loads(opened.stdout)["ref"]
    assert json.loads(opened.stdout)["state"] == "draft"

    assert run("case", "activate", ref).exit_code == 0
    assert fresh_case(ref).state == "active"
    cancelled = run("case", "cancel", ref, "--reason", "The client renewed after all", "--json")

    assert cancelled.exit_code == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    assert fresh_case(ref).cancel_reason == "The client renewed after all"


# --- JSON ------------------------------------------------------------------------------------


def test_case_list_json_lists_cases_with_their_state(case):
    result = run("case", "list", "--json")

    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [(r["ref"], r["state"], r["client"]["name"]) for r in rows] == [
        (case.ref, "active", "Northwind Traders")
    ]
    assert rows[0]["steps"]["required"] > 0


def test_case_list_filters_by_state(case):
    assert json.loads(run("case", "list", "--state", "closed", "--json").stdout) == []
    refused = run("case", "list", "--state", "finished")
    assert refused.exit_code == 1
    assert error_lines(refused)[0].startswith("error: --state: 'finished' is not one of")


def test_case_show_json_has_steps_registers_gates_digest_and_events(case):
    from offboard.cases.state import state_digest

    result = run("case", "show", case.ref, "--json")

    assert result.exit_code == 0
    detail = json.loads(result.stdout)
    assert detail["ref"] == case.ref
    assert detail["state"] == "active"
    assert detail["contracts"] == ["NW-2025-01"]
    assert detail["state_digest"] == state_digest(fresh_case(case.ref))
    assert {s["key"] for s in detail["steps"]} == set(
        fresh_case(case.ref).steps.values_list("key", flat=True)
    )
    assert set(detail["registers"]) == {
        "deliverables",
        "handover_items",
        "access_grants",
        "data_dispositions",
        "settlements",
    }
    assert "steps.incomplete" in [g["code"] for g in detail["unmet_gates"]]
    assert detail["events"][0]["type"] == "case.opened"


def test_case_show_prints_steps_by_phase_and_the_digest(case):
    from offboard.cases.state import state_digest

    result = run("case", "show", case.ref)

    assert result.exit_code == 0
    assert case.ref in result.stdout
    assert "confirm_notice" in result.stdout
    assert "Unmet gates" in result.stdout
    assert state_digest(fresh_case(case.ref)) in result.stdout


def test_an_error_with_json_still_exits_1_with_the_message_on_stderr(org, alice):
    result = run("case", "show", "C-1999-0001", "--json")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert error_lines(result) == ["error: No case C-1999-0001 in this organization."]


# --- invalid input ---------------------------------------------------------------------------


def test_a_bad_trigger_is_refused_naming_the_option(alice, playbooks, client_contract):
    result = run(*open_args(**{"--trigger": "divorce"}))

    assert result.exit_code == 1
    assert len(error_lines(result)) == 1
    assert error_lines(result)[0].startswith("error: --trigger: 'divorce' is not one of: ")


def test_a_bad_date_is_refused_naming_the_option(alice, playbooks, client_contract):
    result = run(*open_args(**{"--trigger-date": "2026-13-45"}))

    assert result.exit_code == 1
    assert error_lines(result) == ["error: --trigger-date: '2026-13-45' is not a date (YYYY-MM-DD)"]


def test_an_unknown_contract_is_refused_naming_the_option(alice, playbooks, client_contract):
    result = run(*open_args(**{"--contract": "NOPE-1"}))

    assert result.exit_code == 1
    assert error_lines(result) == ["error: --contract: no contract 'NOPE-1' in organization 'acme'"]


def test_an_auditor_cannot_own_a_case(alice, playbooks, client_contract):
    result = run(*open_args(**{"--owner": "erin"}))

    assert result.exit_code == 1
    assert error_lines(result) == ["error: --owner: erin is an auditor and cannot own work"]


def test_a_missing_required_option_is_a_usage_error(alice):
    result = run("case", "open", "--client", "Northwind Traders")

    assert result.exit_code == 2
    assert "--contract" in result.stderr or "--trigger" in result.stderr


def test_a_second_case_for_the_contract_needs_allow_duplicate(case, playbooks):
    from offboard.cases.models import OffboardingCase

    refused = run(*open_args())

    assert refused.exit_code == 1
    assert error_lines(refused) == [
        f"error: Northwind Traders already has an open case for contract NW-2025-01: {case.ref} "
        "(active). Pass --allow-duplicate to open another case anyway."
    ]
    assert OffboardingCase.objects.count() == 1

    opened = run(*open_args(), "--allow-duplicate", "--json")

    assert opened.exit_code == 0, opened.stderr
    second = OffboardingCase.objects.get(ref=json.loads(opened.stdout)["ref"])
    event = second.events.get(type="case.opened")
    assert event.data["duplicate"] == {"open_cases": [case.ref], "acknowledged": True}


def test_nothing_is_opened_when_input_is_invalid(alice, playbooks, client_contract):
    from offboard.cases.models import OffboardingCase

    run(*open_args(**{"--scope": "partial"}))

    assert not OffboardingCase.objects.exists()


# --- who acts --------------------------------------------------------------------------------


def test_writes_default_to_the_only_admin(alice, playbooks, client_contract):
    result = run(*open_args(), "--json")

    assert result.exit_code == 0
    event = fresh_case(json.loads(result.stdout)["ref"]).events.get(type="case.opened")
    assert (event.actor["username"], event.actor["auth"]) == ("alice", "cli")


def test_the_acting_user_comes_from_the_environment(cast, playbooks, client_contract, monkeypatch):
    monkeypatch.setenv("OFFBOARD_USER", "bob")
    monkeypatch.setenv("OFFBOARD_ORG", "acme")

    result = run(*open_args(), "--json")

    assert result.exit_code == 0, result.stderr
    event = fresh_case(json.loads(result.stdout)["ref"]).events.get(type="case.opened")
    assert event.actor["username"] == "bob"


def test_an_auditor_cannot_write(case):
    result = run("case", "cancel", case.ref, "--reason", "No reason", "--as", "erin")

    assert result.exit_code == 1
    assert error_lines(result)[0].startswith("error: Your role 'auditor' may not do this")


def test_an_unknown_user_or_organization_is_one_clear_line(case):
    unknown_user = run("case", "close", case.ref, "--as", "zed")
    unknown_org = run("case", "list", "--org", "nowhere")

    assert unknown_user.exit_code == unknown_org.exit_code == 1
    assert error_lines(unknown_user) == ["error: No user 'zed' in organization 'acme'."]
    assert error_lines(unknown_org) == ["error: No organization 'nowhere'."]


def test_with_several_organizations_one_must_be_chosen(case, mallory):
    result = run("case", "list")

    assert result.exit_code == 1
    assert "choose one with --org" in error_lines(result)[0]
    assert run("case", "list", "--org", "acme").exit_code == 0


def test_another_organizations_case_is_not_found(case, mallory):
    result = run("case", "show", case.ref, "--org", "globex")

    assert result.exit_code == 1
    assert error_lines(result) == [f"error: No case {case.ref} in this organization."]


# --- users -----------------------------------------------------------------------------------


def test_user_create_adds_a_member_with_the_role(alice):
    from offboard.accounts.models import Membership

    result = run(
        "user",
        "create",
        "zoe",
        "--role",
        "operator",
        "--password",
        "long enough 1",
        "--email",
        "zoe@acme.example",
        "--first-name",
        "Zoe",
    )

    assert result.exit_code == 0, result.stderr
    member = Membership.objects.get(user__username="zoe")
    assert (member.org.slug, member.role, member.user.email) == (
        "acme",
        "operator",
        "zoe@acme.example",
    )
    assert member.user.check_password("long enough 1")


def test_user_create_asks_for_the_password_twice_when_missing(alice):
    from offboard.accounts.models import User

    result = run(
        "user", "create", "zoe", "--role", "finance", input="long enough 1\nlong enough 1\n"
    )

    assert result.exit_code == 0, result.output
    assert "long enough 1" not in result.stdout
    assert User.objects.get(username="zoe").check_password("long enough 1")


def test_user_create_refuses_a_taken_username_and_a_bad_role(alice):
    taken = run("user", "create", "bob", "--role", "operator", "--password", "long enough 1")
    bad_role = run("user", "create", "zoe", "--role", "boss", "--password", "long enough 1")

    assert taken.exit_code == bad_role.exit_code == 1
    assert error_lines(taken) == ["error: USERNAME: 'bob' is already taken"]
    assert error_lines(bad_role)[0].startswith("error: --role: 'boss' is not one of")


def test_only_an_admin_creates_users(cast):
    result = run(
        "user", "create", "zoe", "--role", "operator", "--password", "long enough 1", "--as", "bob"
    )

    assert result.exit_code == 1
    assert "may not do this (org.manage_members)" in result.stderr


def test_user_deactivate_and_reactivate(cast):
    from offboard.accounts.models import User
    from offboard.ledger.models import LedgerEntry

    result = run("user", "deactivate", "oscar", "--reason", "Contract ended")
    assert result.exit_code == 0, result.stderr
    assert "Deactivated 'oscar'" in result.stdout
    assert not User.objects.get(username="oscar").is_active
    event = LedgerEntry.objects.order_by("-index").first()
    assert event.type == "member.deactivated" and event.actor["auth"] == "cli"
    again = run("user", "deactivate", "oscar")
    assert again.exit_code == 1 and error_lines(again) == ["error: oscar is already deactivated."]
    assert run("user", "reactivate", "oscar").exit_code == 0
    assert User.objects.get(username="oscar").is_active
    unknown = run("user", "deactivate", "nobody")
    assert error_lines(unknown) == ["error: No user 'nobody' in organization 'acme'."]


def test_a_deactivated_admin_is_not_counted_when_choosing_who_acts(cast, case):
    from offboard.accounts.models import Membership
    from offboard.accounts.services import change_role, deactivate_member
    from offboard.core.actor import Actor

    bob = Membership.objects.get(user=cast["bob"].user)
    change_role(actor=cast["alice"], membership=bob, role="admin")
    bob_admin = Actor.from_membership(bob, auth_method="test")
    deactivate_member(actor=bob_admin, membership=Membership.objects.get(user=cast["alice"].user))
    result = run("user", "deactivate", "oscar")  # no --as: the one active admin acts
    assert result.exit_code == 0, result.stderr
    from offboard.ledger.models import LedgerEntry

    assert LedgerEntry.objects.order_by("-index").first().actor["username"] == "bob"


# --- playbooks -------------------------------------------------------------------------------


def test_playbook_validate_reports_each_problem_with_its_line(tmp_path):
    bad = tmp_path / "tiny.yaml"
    bad.write_text(BAD_PLAYBOOK)

    result = run("playbook", "validate", str(bad))

    assert result.exit_code == 1
    lines = error_lines(result)
    assert lines[0].startswith(f"{bad}:12: steps[0].owner_role: 'auditor' cannot own a step")
    assert lines[1].startswith(f"{bad}:19: steps[1].depends_on[0]: ")
    assert "did you mean 'confirm_notice'?" in lines[1]
    assert lines[2] == f"error: {bad} is not a valid playbook (2 problem(s))"


def test_playbook_validate_accepts_a_builtin_playbook():
    from offboard.playbooks.spec import builtin_playbook_paths

    path = builtin_playbook_paths()[0]
    result = run("playbook", "validate", str(path))

    assert result.exit_code == 0
    assert result.stdout.startswith("valid: ")


def test_playbook_import_creates_a_version_once(alice, tmp_path):
    from offboard.playbooks.models import PlaybookVersion

    good = tmp_path / "tiny.yaml"
    good.write_text(BAD_PLAYBOOK.replace("auditor", "operator").replace("notise", "notice"))

    first = run("playbook", "import", str(good))
    again = run("playbook", "import", str(good))

    assert first.exit_code == again.exit_code == 0
    assert first.stdout.startswith("imported tiny v1")
    assert again.stdout.startswith("unchanged: tiny v1")
    assert PlaybookVersion.objects.filter(playbook__slug="tiny").count() == 1


def test_playbook_import_writes_nothing_for_an_invalid_file(alice, tmp_path):
    from offboard.playbooks.models import Playbook

    bad = tmp_path / "tiny.yaml"
    bad.write_text(BAD_PLAYBOOK)

    result = run("playbook", "import", str(bad))

    assert result.exit_code == 1
    assert f"{bad}:12:" in result.stderr
    assert not Playbook.objects.exists()


def test_playbook_list_shows_the_installed_playbooks(playbooks):
    result = run("playbook", "list", "--json")

    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {r["service_type"] for r in rows} == set(playbooks)
    assert all(r["latest"]["version"] == 1 and r["builtin"] for r in rows)


# --- init ------------------------------------------------------------------------------------


def test_init_is_idempotent(transactional_db):
    from offboard.accounts.models import Membership, Organization
    from offboard.playbooks.models import PlaybookVersion
    from offboard.playbooks.spec import builtin_playbook_paths

    args = [
        "init",
        "--org",
        "initco",
        "--org-name",
        "Init Co",
        "--admin",
        "root",
        "--password",
        "correct horse 2",
        "--email",
        "root@init.example",
    ]
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "Created organization 'initco'" in first.stdout
    counts = (
        Organization.objects.count(),
        Membership.objects.count(),
        PlaybookVersion.objects.count(),
    )

    again = run(*args)

    assert again.exit_code == 0, again.output
    assert "Already initialized" in again.stdout
    assert counts == (
        Organization.objects.count(),
        Membership.objects.count(),
        PlaybookVersion.objects.count(),
    )
    assert counts == (1, 1, len(builtin_playbook_paths()))
    assert Membership.objects.get().role == "admin"


def test_init_writes_nothing_when_the_password_is_too_short(transactional_db):
    from offboard.accounts.models import Organization

    result = run("init", "--org", "initco", "--admin", "root", "--password", "short")

    assert result.exit_code == 1
    assert error_lines(result) == ["error: --password: must be at least 8 characters"]
    assert not Organization.objects.exists()


# --- the installed script --------------------------------------------------------------------


def test_the_installed_script_runs_and_validates_without_a_database(tmp_path):
    script = Path(sys.executable).with_name("offboard")
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    bad = tmp_path / "tiny.yaml"
    bad.write_text(BAD_PLAYBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFBOARD_")}

    helped = subprocess.run(
        [script, "--help"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    validated = subprocess.run(
        [script, "playbook", "validate", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )

    assert helped.returncode == 0
    assert "playbook" in helped.stdout
    assert validated.returncode == 1
    assert f"{bad}:12: steps[0].owner_role" in validated.stderr
    assert "Traceback" not in validated.stderr
    assert not (tmp_path / "var").exists()  # no database was opened
