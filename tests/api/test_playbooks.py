"""Playbooks: list, read versions, validate and import YAML (raw or wrapped in JSON)."""

import hashlib

from offboard.ledger.models import LedgerEntry
from offboard.playbooks.models import Playbook, PlaybookVersion
from offboard.playbooks.spec import BUILTIN_DIR

CONSULTING = (BUILTIN_DIR / "consulting.yaml").read_text("utf-8")
BROKEN = """slug: broken-playbook
name: Broken
service_type: consulting
fee_types: [fixed]
approval_policy: {min_approvers: 1, roles: [manager]}
steps:
  - key: first
    phase: notice
    title: First
    owner_role: wizard
    due: {from: trigger, offset_days: 2}
  - key: second
    phase: notice
    title: Second
    owner_role: manager
    due: {from: yesterday, offset_days: 2}
"""


def test_playbooks_are_listed_with_their_latest_version(api, playbooks):
    listed = api("erin").get("/playbooks").json()

    assert listed["count"] == len(playbooks)
    assert {p["slug"]: p["latest_version"] for p in listed["items"]}["marketing-agency"] == 1


def test_a_playbook_lists_its_versions_newest_first(api, playbooks):
    changed = CONSULTING.replace("name: ", "name: Revised ", 1)
    assert api("alice").post_raw("/playbooks", changed, "text/plain").status_code == 201

    detail = api("erin").get("/playbooks/consulting").json()

    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["name"].startswith("Revised ")
    assert detail["versions"][0]["created_by"]["username"] == "alice"


def test_a_version_shows_its_source_and_parsed_steps(api, playbooks):
    version = api("erin").get("/playbooks/marketing-agency/versions/1").json()

    assert version["sha256"] == hashlib.sha256(version["source"].encode()).hexdigest()
    assert version["spec"]["approval_policy"] == {"min_approvers": 2, "roles": ["manager", "admin"]}
    keys = [s["key"] for s in version["spec"]["steps"]]
    assert keys[0] == "confirm_notice"
    retainer_only = next(
        s for s in version["spec"]["steps"] if s["key"] == "send_non_renewal_notice"
    )
    assert retainer_only["fee_types"] == ["retainer"]


def test_a_missing_version_is_not_found(api, playbooks):
    assert api("erin").get("/playbooks/marketing-agency/versions/9").status_code == 404
    assert api("erin").get("/playbooks/nonexistent").status_code == 404


def test_a_playbook_is_imported_from_yaml(api, cast):
    response = api("bob").post_raw("/playbooks", CONSULTING, "application/yaml")

    assert response.status_code == 201, response.content
    assert (response.json()["slug"], response.json()["version"]) == ("consulting", 1)
    assert PlaybookVersion.objects.get().source == CONSULTING
    assert LedgerEntry.objects.filter(type="playbook.imported").count() == 1


def test_a_playbook_is_imported_from_json(api, cast):
    response = api("bob").post("/playbooks", {"source": CONSULTING})

    assert response.status_code == 201
    assert response.json()["sha256"] == hashlib.sha256(CONSULTING.encode()).hexdigest()


def test_importing_the_same_text_again_returns_the_same_version(api, cast):
    first = api("bob").post("/playbooks", {"source": CONSULTING}).json()
    second = api("bob").post("/playbooks", {"source": CONSULTING}).json()

    assert second["version"] == first["version"] == 1
    assert PlaybookVersion.objects.count() == 1


def test_an_invalid_playbook_lists_every_problem_with_its_line_and_imports_nothing(api, cast):
    events_before = LedgerEntry.objects.count()

    response = api("bob").post_raw("/playbooks", BROKEN, "application/yaml")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "playbook_invalid"
    errors = error["details"]["errors"]
    assert len(errors) >= 2
    assert {e["line"] for e in errors} >= {10, 16}
    assert all(set(e) == {"line", "path", "message"} for e in errors)
    assert any("wizard" in e["message"] for e in errors)
    assert error["details"]["fields"]["source"]
    assert Playbook.objects.count() == 0
    assert LedgerEntry.objects.count() == events_before


def test_validation_checks_without_importing(api, cast):
    valid = api("erin").post_raw("/playbooks/validate", CONSULTING, "text/plain")
    invalid = api("erin").post("/playbooks/validate", {"source": BROKEN})

    assert valid.status_code == 200
    assert valid.json()["valid"] is True
    assert valid.json()["spec"]["slug"] == "consulting"
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"]["errors"]
    assert Playbook.objects.count() == 0


def test_a_playbook_body_must_be_yaml_or_json_with_a_source(api, cast):
    wrong_type = api("bob").post_raw("/playbooks", "<xml/>", "application/xml")
    wrong_key = api("bob").post("/playbooks", {"yaml": CONSULTING})
    not_json = api("bob").post_raw("/playbooks", "{nope", "application/json")

    assert wrong_type.status_code == 422
    assert "application/yaml" in wrong_type.json()["error"]["message"]
    assert set(wrong_key.json()["error"]["details"]["fields"]) == {"source", "yaml"}
    assert list(not_json.json()["error"]["details"]["fields"]) == ["body"]
    assert Playbook.objects.count() == 0
