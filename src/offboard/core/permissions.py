"""Roles and what each may do. Checked in services, so every interface gets the same rules."""

from offboard.core.actor import Actor
from offboard.core.errors import PermissionDenied

ADMIN, MANAGER, OPERATOR, FINANCE, AUDITOR = "admin", "manager", "operator", "finance", "auditor"
ROLES = (ADMIN, MANAGER, OPERATOR, FINANCE, AUDITOR)

# Capability -> roles allowed. One table, read by services and shown in docs.
CAPABILITIES: dict[str, frozenset[str]] = {
    "org.manage_members": frozenset({ADMIN}),
    "clients.write": frozenset({ADMIN, MANAGER}),
    "playbooks.import": frozenset({ADMIN, MANAGER}),
    "cases.open": frozenset({ADMIN, MANAGER}),
    "cases.transition": frozenset({ADMIN, MANAGER}),
    "cases.work": frozenset({ADMIN, MANAGER, OPERATOR}),
    "cases.settle": frozenset({ADMIN, MANAGER, FINANCE}),
    "cases.waive": frozenset({ADMIN, MANAGER}),
    "cases.approve": frozenset({ADMIN, MANAGER, FINANCE}),
    "cases.addendum": frozenset({ADMIN, MANAGER, OPERATOR, FINANCE}),
    "evidence.upload": frozenset({ADMIN, MANAGER, OPERATOR, FINANCE}),
    "cases.export": frozenset({ADMIN, MANAGER, AUDITOR}),
    # Portal links: issue, revoke, remind (the case owner may too, whatever their role).
    "portal.links": frozenset({ADMIN, MANAGER}),
    "portal.deem": frozenset({ADMIN, MANAGER}),
    # Signing a checkpoint on request (each one queues TSA requests); closures sign their own.
    "ledger.checkpoint": frozenset({ADMIN}),
    "read": frozenset(ROLES),
}


def can(actor: Actor, capability: str) -> bool:
    return actor.role in CAPABILITIES[capability]


def require(actor: Actor, capability: str) -> None:
    if not can(actor, capability):
        allowed = ", ".join(sorted(CAPABILITIES[capability]))
        raise PermissionDenied(
            f"Your role '{actor.role}' may not do this ({capability}); it needs one of: {allowed}.",
            details={"capability": capability, "role": actor.role},
        )
