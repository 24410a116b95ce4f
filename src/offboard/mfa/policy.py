"""The organization's second-factor policy as the services apply it: `require_second_factor`
is the one check that approvals and closures call (offboard.cases.services.closure).

Under a policy that covers the member, the action needs a second factor passed in this
session (`Actor.second_factor`, filled by the web from the session). An API token carries
none, so a covered member's approval through the API is refused. The CLI's actor
(`auth_method == "cli"`) is the installation's operator, who holds the server itself, and is
exempt (decision 0027)."""

from typing import Any

from offboard.core.errors import PermissionDenied
from offboard.core.permissions import CAPABILITIES
from offboard.mfa.models import MfaPolicy
from offboard.mfa.selectors import required_for

RequiredFor = MfaPolicy.RequiredFor
EXEMPT_AUTH_METHODS = frozenset({"cli"})


def covers(org: Any, role: str) -> bool:
    """Whether the organization's policy asks a member of this role for a second factor."""
    policy = required_for(org)
    if policy == RequiredFor.EVERYONE:
        return True
    if policy == RequiredFor.APPROVERS:
        return role in CAPABILITIES["cases.approve"]
    return False


def require_second_factor(actor: Any, action: str) -> None:
    """Refuse `action` ("approve", "close") when the policy covers the actor and no second
    factor was passed in this session."""
    if getattr(actor, "auth_method", None) in EXEMPT_AUTH_METHODS:
        return
    if getattr(actor, "second_factor", None):
        return
    if not covers(actor.org, actor.role):
        return
    if getattr(actor, "auth_method", None) == "token":
        way_out = (
            "an API token carries no second factor, so approve or close in the web app "
            "after signing in with your authenticator or passkey."
        )
    else:
        way_out = "sign in with your authenticator or passkey (Settings → Security) and try again."
    raise PermissionDenied(
        "Your organization requires a second factor for approvals and closures: " + way_out,
        details={"policy": required_for(actor.org), "action": action, "second_factor": None},
    )
