"""The words people read in place of the codes Offboard stores (`time_and_materials`,
`vault_entry`, `case_owner`): one dictionary per vocabulary, in one place.

Labels are written as they read inside a sentence ("time and materials", "NIST SP 800-88
Clear"); a page capitalizes one that starts a line. Where a model's choices carry labels, they
are the source. Codes stay for what people copy: API payloads, `--json`, the evidence pack,
and a small muted code beside its label for support.
"""

from typing import Any

from offboard.accounts.models import Membership
from offboard.cases.models import AccessGrant, DataDisposition, OffboardingCase, Source
from offboard.clients.models import Contact, FeeType, ServiceType
from offboard.security.models import MemberSession


def _inline(text: str) -> str:
    """A choice label as it reads mid-sentence: "Contract expiry" → "contract expiry", while
    an acronym keeps its capitals ("NIST SP 800-88 Clear")."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _from_choices(choices: Any) -> dict[str, str]:
    return {str(value): _inline(str(text)) for value, text in choices.choices}


GATES = {
    "steps.incomplete": "required steps",
    "deliverables.not_accepted": "deliverables",
    "handover.incomplete": "handover",
    "access.not_revoked": "access still open",
    "access.unverified": "access not verified",
    "access.kept_without_waiver": "access kept",
    "data.not_disposed": "client data",
    "data.legal_hold": "legal hold",
    "data.retained_without_basis": "data retention",
    "settlement.open": "settlement",
    "settlement.missing": "settlement",
    "approvals.rejected": "approval",
    "approvals.missing": "approvals",
    "approvals.owner_only": "approvals",
}
# Members' roles, and who a playbook step goes to ("case_owner": whoever owns the case).
ROLES = {"case_owner": "case owner", **{str(r): str(r) for r in Membership.Role}}
CONTACT_ROLES = {str(r): str(r) for r in Contact.Role}
FEE_TYPES = _from_choices(FeeType)
SERVICE_TYPES = _from_choices(ServiceType)
TRIGGERS = _from_choices(OffboardingCase.Trigger)
SCOPES = {"full": "full exit", "partial": "partial exit"}
STATES = {str(s): str(s) for s in OffboardingCase.State}
# What a step asks for as evidence.
EVIDENCE = {
    "file": "file",
    "link": "link",
    "note": "note",
    "attestation": "attestation",
    "client_ack": "client acknowledgement",
}
# Statuses of steps and register items (one word means the same in every register).
STATUSES = {
    "pending": "pending",
    "in_progress": "in progress",
    "done": "done",
    "not_applicable": "not applicable",
    "delivered": "delivered",
    "accepted": "accepted",
    "conditionally_accepted": "conditionally accepted",
    "rejected": "rejected",
    "deemed_accepted": "deemed accepted",
    "waived": "waived",
    "planned": "planned",
    "handed_over": "handed over",
    "acknowledged": "acknowledged",
    "disputed": "disputed",
    "active": "active",
    "revoked": "revoked",
    "transferred": "transferred",
    "kept": "kept",
    "outstanding": "outstanding",
    "paid": "paid",
    "written_off": "written off",
    "granted": "granted",
}
# Kinds of handover and settlement items (and of a client's portal response).
KINDS = {
    "domain": "domain",
    "hosting": "hosting",
    "repository": "repository",
    "ad_account": "ad account",
    "analytics": "analytics",
    "licence": "licence",
    "document": "document",
    "data_export": "data export",
    "vault_entry": "vault entry",
    "other": "other",
    "final_invoice": "final invoice",
    "refund": "refund",
    "credit": "credit",
    "deposit_return": "deposit return",
}
# What a waiver covers, an event is about, a link points to.
ITEMS = {
    "case": "case",
    "step": "step",
    "deliverable": "deliverable",
    "handover_item": "handover item",
    "access_grant": "access grant",
    "data_disposition": "data disposition",
    "settlement": "settlement item",
    "waiver": "waiver",
    "approval": "approval",
    "addendum": "addendum",
    "portal_link": "portal link",
    "portal": "portal",
    "connector": "connector",
    "connection": "connection",
    "member": "member",
    "api_token": "API token",  # api_token.policy_changed: "API token policy changed"
    "mfa": "second-factor",  # mfa.policy_changed: "Second-factor policy changed"
    "sso": "single sign-on",  # sso.configured: "Single sign-on configured"
}
SOURCES = _from_choices(Source)
VERIFICATIONS = {
    "observed": "observed",
    "vendor_confirmed": "vendor-confirmed",
    "attested": "attested",
    "waived": "waived",
}
DIRECTIONS = _from_choices(AccessGrant.Direction)
PLANNED_ACTIONS = {str(a): str(a) for a in AccessGrant.PlannedAction}
DISPOSITION_ACTIONS = {str(a): str(a) for a in DataDisposition.Action}
METHODS = _from_choices(DataDisposition.Method)
DECISIONS = {"approved": "approved", "rejected": "rejected"}
CHECKPOINT_REASONS = {
    "periodic": "periodic",
    "requested": "on request",
    "key_rotated": "key rotated",
    "case_closed": "at a case's closure",
}
# A closure receipt's delivery to the client's contacts.
RECEIPT_STATES = {
    "pending": "pending",
    "sent": "sent",
    "failed": "failed",
    "no_recipients": "no recipients",
}
# Outbound webhooks: an endpoint, and one delivery to it.
WEBHOOK_ENDPOINT_STATES = {"active": "active", "disabled": "disabled", "deleted": "deleted"}
WEBHOOK_DELIVERY_STATES = {
    "pending": "waiting",
    "delivered": "delivered",
    "failed": "given up",
    "cancelled": "cancelled",
}
# A connection to an external system (revocation connectors).
CONNECTION_STATES = {"active": "active", "disabled": "disabled"}
# A revoke or read-back run of a connector on a case (connectors/runs.py).
CONNECTOR_RUN_ACTIONS = {"revoke": "revoke", "verify": "read back"}
CONNECTOR_RUN_STATES = {
    "awaiting_approval": "awaiting approval",
    "queued": "waiting for a worker",
    "running": "running",
    "done": "finished",
    "failed": "failed",
}
# Where a step's due date counts from.
DUE_FROM = {"trigger": "the trigger date", "notice": "the notice date", "end": "the end date"}
# Second factors (offboard.mfa): the kinds, and who an organization's policy covers.
FACTORS = {"totp": "authenticator app", "webauthn": "passkey", "recovery_code": "recovery code"}
MFA_POLICIES = {"nobody": "nobody", "approvers": "members who approve", "everyone": "everyone"}
KEY_BACKENDS = {"file": "key file", "pkcs11": "hardware security module (PKCS#11)"}

VOCABULARIES: dict[str, dict[str, str]] = {
    "gate": GATES,
    "role": ROLES,
    "contact_role": CONTACT_ROLES,
    "fee_type": FEE_TYPES,
    "service_type": SERVICE_TYPES,
    "trigger": TRIGGERS,
    "scope": SCOPES,
    "state": STATES,
    "evidence": EVIDENCE,
    "status": STATUSES,
    "kind": KINDS,
    "item": ITEMS,
    "source": SOURCES,
    "verification": VERIFICATIONS,
    "direction": DIRECTIONS,
    "planned_action": PLANNED_ACTIONS,
    "action": DISPOSITION_ACTIONS,
    "method": METHODS,
    "decision": DECISIONS,
    "checkpoint_reason": CHECKPOINT_REASONS,
    "receipt_state": RECEIPT_STATES,
    "webhook_endpoint_state": WEBHOOK_ENDPOINT_STATES,
    "webhook_delivery_state": WEBHOOK_DELIVERY_STATES,
    "connection_state": CONNECTION_STATES,
    "connector_run_action": CONNECTOR_RUN_ACTIONS,
    "connector_run_state": CONNECTOR_RUN_STATES,
    "due_from": DUE_FROM,
    "factor": FACTORS,
    "mfa_policy": MFA_POLICIES,
    "key_backend": KEY_BACKENDS,
    "session_end_reason": _from_choices(MemberSession.EndReason),
}
# Which vocabulary a field's values come from, where events and registers name the field.
FIELDS = {
    "status": "status",
    "state": "state",
    "kind": "kind",
    "target_type": "item",
    "source": "source",
    "verification_level": "verification",
    "direction": "direction",
    "planned_action": "planned_action",
    "action": "action",
    "method": "method",
    "role": "role",
    "owner_role": "role",
    "approver_role": "role",
    "decision": "decision",
    "trigger": "trigger",
    "fee_type": "fee_type",
    "service_type": "service_type",
    "scope": "scope",
    "factor": "factor",
    "required_for": "mfa_policy",
    "end_reason": "session_end_reason",
}


def label(code: Any, vocabulary: str) -> str:
    """The words for `code` in `vocabulary`; a code it does not know (a playbook's own phase)
    reads with spaces for underscores."""
    text = "" if code is None else str(code)
    return VOCABULARIES[vocabulary].get(text) or text.replace("_", " ")


def labels(codes: Any, vocabulary: str, joiner: str = ", ") -> str:
    """Several codes as words: `["file", "client_ack"]` → "file or client acknowledgement"
    with joiner " or "."""
    return joiner.join(label(c, vocabulary) for c in codes or ())


def field_value(field: str, value: Any) -> Any:
    """A field's value as words when the field holds codes (`status`, `kind`, …); any other
    value as it is."""
    vocabulary = FIELDS.get(field)
    if vocabulary is None or not isinstance(value, str) or not value:
        return value
    return label(value, vocabulary)


def event_type(code: str) -> str:
    """An event type as words: `access_grant.verified` → "Access grant verified"."""
    subject, _, what = str(code).partition(".")
    text = f"{label(subject, 'item')} {what.replace('_', ' ')}".strip()
    return text[:1].upper() + text[1:]


def item_label(item: Any) -> str:
    """A register item as people name it: a handover item by its name (its kind is said
    beside it), a settlement item by its kind and reference, the others as their model does."""
    register = getattr(item, "register", "")
    if register == "handover_items":
        return str(item.name)
    if register == "settlements":
        words = label(item.kind, "kind")
        words = words[:1].upper() + words[1:]
        return f"{words} {item.reference}".strip()
    return str(item.label())
