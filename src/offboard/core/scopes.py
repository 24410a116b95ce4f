"""API token scopes: what a token may be used for. A scope never grants what the member's
role does not (services still check the role); it only narrows what a token can do.

Each API operation needs exactly one scope: every GET needs `read` unless it declares
another (`@scope(...)` on the view), and every other operation must declare one. The
bearer-token check refuses a token without it (403 `insufficient_scope`) before the body is
read, and the OpenAPI document lists it on the operation (decision 0029).
"""

from collections.abc import Callable
from typing import Any, TypeVar

# Scope -> what it allows, in the words the Settings page and the API docs show.
SCOPES: dict[str, str] = {
    "read": "Read everything your role may see (every GET but the evidence pack).",
    "cases:write": "Open and change cases: steps, registers, waivers, approvals, closures, "
    "addenda, evidence uploads, portal links and connector runs.",
    "clients:write": "Add and change clients, contacts, contracts and contract documents.",
    "playbooks:write": "Import playbooks.",
    "ledger:write": "Request a signed checkpoint of the organization's log.",
    "exports": "Download a case's evidence pack.",
    "tokens": "Create and revoke your own API tokens (never with more scopes than this one).",
    "admin": "Administer the organization: members, other members' tokens, the token policy, "
    "webhooks and connections.",
}
ALL_SCOPES: tuple[str, ...] = tuple(SCOPES)

ATTRIBUTE = "offboard_scope"
F = TypeVar("F", bound=Callable[..., Any])


def scope(name: str) -> Callable[[F], F]:
    """Declare the scope an API operation needs; put it right above the view function, under
    the router's decorator."""
    if name not in SCOPES:
        raise ValueError(f"unknown scope {name!r}; the scopes are {', '.join(ALL_SCOPES)}")

    def declare(view: F) -> F:
        setattr(view, ATTRIBUTE, name)
        return view

    return declare


def scope_of(view: Callable[..., Any], method: str) -> str:
    """The scope an operation declared, or `read` for a GET that declared none."""
    declared = getattr(view, ATTRIBUTE, None)
    if declared:
        return str(declared)
    if method == "GET":
        return "read"
    raise LookupError(
        f"API operation {view.__module__}.{view.__name__} ({method}) declares no scope: "
        "decorate it with @scope(...) from offboard.core.scopes"
    )


def missing_scope_message(needed: str) -> str:
    return (
        f"This API token lacks the '{needed}' scope this operation needs. Create a token with "
        f"the '{needed}' scope (POST /api/v1/tokens with \"scopes\", or Settings → API tokens) "
        "and use it instead."
    )
