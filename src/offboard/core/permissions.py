"""Roles and what each may do. Checked in services, so every interface gets the same rules."""

from offboard.core.actor import Actor, EndpointActor
from offboard.core.errors import PermissionDenied

ADMIN, MANAGER, OPERATOR, FINANCE, AUDITOR = "admin", "manager", "operator", "finance", "auditor"
ROLES = (ADMIN, MANAGER, OPERATOR, FINANCE, AUDITOR)
# No member's role: an inbound webhook endpoint, which may open cases and nothing else
# (core/actor.py `EndpointActor`, decision 0020).
INBOUND_WEBHOOK = "inbound_webhook"

# Capability -> roles allowed. One table, read by services and shown in docs.
CAPABILITIES: dict[str, frozenset[str]] = {
    "org.manage_members": frozenset({ADMIN}),
    "clients.write": frozenset({ADMIN, MANAGER}),
    # Adding many clients at once from a CSV file (decision 0019).
    "clients.import": frozenset({ADMIN}),
    "playbooks.import": frozenset({ADMIN, MANAGER}),
    "cases.open": frozenset({ADMIN, MANAGER, INBOUND_WEBHOOK}),
    "cases.transition": frozenset({ADMIN, MANAGER}),
    "cases.work": frozenset({ADMIN, MANAGER, OPERATOR}),
    "cases.settle": frozenset({ADMIN, MANAGER, FINANCE}),
    "cases.waive": frozenset({ADMIN, MANAGER}),
    "cases.approve": frozenset({ADMIN, MANAGER, FINANCE}),
    "cases.addendum": frozenset({ADMIN, MANAGER, OPERATOR, FINANCE}),
    "evidence.upload": frozenset({ADMIN, MANAGER, OPERATOR, FINANCE}),
    # Opening a case's evidence files and its closure certificate (web; decision 0015).
    "evidence.read": frozenset(ROLES),
    "cases.export": frozenset({ADMIN, MANAGER, AUDITOR}),
    # Portal links: issue, revoke, remind (the case owner may too, whatever their role).
    "portal.links": frozenset({ADMIN, MANAGER}),
    "portal.deem": frozenset({ADMIN, MANAGER}),
    # Signing a checkpoint on request (each one queues TSA requests); closures sign their own.
    "ledger.checkpoint": frozenset({ADMIN}),
    # Inbound webhook endpoints: create, rotate their secret, revoke (decision 0020).
    "inbound.manage": frozenset({ADMIN}),
    # Outbound webhook endpoints: create, rotate, disable, enable, delete, redeliver, and read
    # their delivery log (decision 0022).
    "webhooks.manage": frozenset({ADMIN}),
    # Connections to external systems for the revocation connectors: add, edit, disable
    # (decision 0024). Running one on a case needs cases.work.
    "connectors.manage": frozenset({ADMIN}),
    # Approve a connector run where the connection asks for it (not one's own request)
    "connectors.approve": frozenset({ADMIN, MANAGER}),
    # The organization's second-factor policy: nobody, approvers or everyone (decision 0027).
    "mfa.manage": frozenset({ADMIN}),
    # The organization's single sign-on: provider, group mapping, "SSO required" (decision 0026).
    "sso.manage": frozenset({ADMIN}),
    "read": frozenset(ROLES),
}


def can(actor: Actor | EndpointActor, capability: str) -> bool:
    return actor.role in CAPABILITIES[capability]


def require(actor: Actor | EndpointActor, capability: str) -> None:
    if not can(actor, capability):
        allowed = ", ".join(sorted(CAPABILITIES[capability] & set(ROLES)))  # members' roles
        raise PermissionDenied(
            f"Your role '{actor.role}' may not do this ({capability}); it needs one of: {allowed}.",
            details={"capability": capability, "role": actor.role},
        )
