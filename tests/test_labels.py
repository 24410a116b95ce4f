"""The words people read for stored codes (offboard.labels): every code Offboard stores or a
playbook may hold has words, and the words are what a person would say."""

import json
import re
from pathlib import Path

import pytest
from django.apps import apps

import offboard
from offboard import labels
from offboard.ledger.summary import event_summary

# A model field whose choices are words already, or which no page shows as a label.
SHOWN_AS_IS = {
    ("ledger", "Checkpoint", "reason"),  # no choices: its words are labels.CHECKPOINT_REASONS
}
# Which vocabulary answers for each model's choice field.
FIELD_VOCABULARY = {
    ("accounts", "Membership", "role"): "role",
    ("clients", "Contact", "role"): "contact_role",
    ("clients", "Contract", "service_type"): "service_type",
    ("clients", "Contract", "fee_type"): "fee_type",
    ("playbooks", "Playbook", "service_type"): "service_type",
    ("cases", "OffboardingCase", "trigger"): "trigger",
    ("cases", "OffboardingCase", "scope"): "scope",
    ("cases", "OffboardingCase", "state"): "state",
    ("cases", "Step", "status"): "status",
    ("cases", "Waiver", "target_type"): "item",
    ("cases", "Approval", "decision"): "decision",
    ("cases", "Approval", "role"): "role",
    ("cases", "Waiver", "approver_role"): "role",
    ("portal", "PortalResponse", "kind"): "status",
    ("ledger", "Timestamp", "status"): "status",
    ("notifications", "ClosureReceipt", "state"): "receipt_state",
    ("webhooks", "WebhookEndpoint", "state"): "webhook_endpoint_state",
    ("webhooks", "WebhookDelivery", "state"): "webhook_delivery_state",
    ("connectors", "Connection", "state"): "connection_state",
    ("connectors", "ConnectorRun", "state"): "connector_run_state",
    ("connectors", "ConnectorRun", "action"): "connector_run_action",
    ("ledger", "SigningKey", "backend"): "key_backend",
}


def _vocabulary_for(model: type, field: str) -> str:
    key = (model._meta.app_label, model.__name__, field)
    return FIELD_VOCABULARY.get(key) or labels.FIELDS[field]


@pytest.mark.parametrize(
    "model", [m for m in apps.get_models() if m.__module__.startswith("offboard.")]
)
def test_every_code_a_model_stores_has_words(model):
    for f in model._meta.get_fields():
        choices = getattr(f, "choices", None)
        if not choices or (model._meta.app_label, model.__name__, f.name) in SHOWN_AS_IS:
            continue
        words = labels.VOCABULARIES[_vocabulary_for(model, f.name)]
        missing = [value for value, _ in choices if str(value) not in words]
        assert not missing, f"{model.__name__}.{f.name}: no words for {missing}"


def _enums(node, path=""):
    """(property name, enum values) for every enum of the playbook schema."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and "enum" in value:
                yield key, value["enum"]
            if key == "items" and isinstance(value, dict) and "enum" in value:
                yield path, value["enum"]
            yield from _enums(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _enums(value, path)


def test_every_code_a_playbook_may_hold_has_words():
    schema = json.loads(
        (Path(offboard.__file__).parent / "playbooks" / "schema.json").read_text(encoding="utf-8")
    )
    vocabulary = {
        "service_type": "service_type",
        "fee_types": "fee_type",
        "roles": "role",
        "owner_role": "role",
        "from": "due_from",
        "evidence": "evidence",
        "kind": "kind",
        "direction": "direction",
        "planned_action": "planned_action",
        "action": "action",
        "method": "method",
    }
    checked = set()
    for name, values in _enums(schema):
        if name not in vocabulary:
            continue  # categories and registers: never shown as words
        words = labels.VOCABULARIES[vocabulary[name]]
        missing = [v for v in values if v not in words]
        assert not missing, f"{name}: no words for {missing}"
        checked.add(name)
    assert {"owner_role", "evidence", "fee_types", "kind"} <= checked


def test_every_closure_gate_has_words():
    source = (Path(offboard.__file__).parent / "cases" / "gates.py").read_text(encoding="utf-8")
    codes = set(
        re.findall(
            r'"((?:steps|deliverables|handover|access|data|settlement|approvals)\.[a-z_]+)"', source
        )
    )
    assert len(codes) >= 14
    assert codes <= set(labels.GATES), codes - set(labels.GATES)


def test_codes_read_as_people_say_them():
    assert labels.label("time_and_materials", "fee_type") == "time and materials"
    assert labels.label("managed_it", "service_type") == "managed IT / MSP"
    assert labels.label("nist_purge", "method") == "NIST SP 800-88 Purge"
    assert labels.label("case_owner", "role") == "case owner"
    assert labels.label("vault_entry", "kind") == "vault entry"
    assert labels.label("vendor_confirmed", "verification") == "vendor-confirmed"
    assert labels.labels(["file", "client_ack"], "evidence", " or ") == (
        "file or client acknowledgement"
    )
    assert labels.event_type("access_grant.verified") == "Access grant verified"
    assert labels.event_type("case.closed") == "Case closed"
    # A playbook's own phase, unknown to any vocabulary, still reads without underscores.
    assert labels.label("wind_down", "status") == "wind down"


def test_an_event_summary_says_its_codes_in_words():
    data = {
        "item": {"kind": "final_invoice", "status": "written_off", "source": "vendor_document"},
        "old": {"status": "outstanding", "source": "staff"},
    }
    assert event_summary(data) == (
        "final_invoice · status: outstanding → written_off · source: staff → vendor_document"
    )
    assert event_summary(data, labels.field_value) == (
        "final invoice · status: outstanding → written off · "
        "source: recorded by staff → confirmed by a vendor's document"
    )
