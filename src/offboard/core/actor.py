"""Who performs an action: the user, their role in the organization, and how they came in."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offboard.accounts.models import Membership, Organization, User


@dataclass(frozen=True)
class Actor:
    user: "User"
    org: "Organization"
    role: str
    auth_method: str = "session"  # session | token | cli | system
    ip: str | None = None
    user_agent: str | None = None
    # The second factor this session passed ("totp", "webauthn", ...; accounts/signin.py), or
    # None: a policy may refuse approvals and closures without one.
    second_factor: str | None = None

    @classmethod
    def from_membership(cls, membership: "Membership", **how: str | None) -> "Actor":
        return cls(user=membership.user, org=membership.org, role=membership.role, **how)  # type: ignore[arg-type]

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.username

    def as_event_actor(self) -> dict[str, object]:
        actor: dict[str, object] = {
            "id": self.user.pk,
            "name": self.display_name,
            "username": self.user.username,
            "role": self.role,
            "auth": self.auth_method,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }
        if self.second_factor:  # only when passed: older events keep their shape
            actor["second_factor"] = self.second_factor
        return actor


@dataclass(frozen=True)
class ContactActor:
    """A client's contact acting through a portal link: no user account and no role in the
    organization. Events name the contact, the link's auth method, IP and user agent."""

    org: "Organization"
    contact_id: int
    name: str
    email: str
    ip: str | None = None
    user_agent: str | None = None
    role = "client_contact"
    auth_method = "portal_link"
    user = None  # no staff user: the ledger entry's actor_user stays empty

    @property
    def display_name(self) -> str:
        return self.name

    def as_event_actor(self) -> dict[str, object]:
        return {
            "id": None,
            "contact_id": self.contact_id,
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "auth": self.auth_method,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }


@dataclass(frozen=True)
class EndpointActor:
    """An inbound webhook endpoint acting on a signed delivery from another system (a CRM, a
    PSA): no user account, and it may open cases and nothing else (decision 0020). Events
    name the endpoint, the admin who configured it, the delivery's id, the sender's IP and
    user agent."""

    org: "Organization"
    endpoint_id: str
    endpoint_name: str
    configured_by: int | None  # the user id of the admin who created the endpoint
    delivery_id: str
    ip: str | None = None
    user_agent: str | None = None
    role = "inbound_webhook"
    auth_method = "webhook_signature"
    user = None  # no staff user: the ledger entry's actor_user stays empty

    @property
    def display_name(self) -> str:
        return f"{self.endpoint_name} (inbound webhook)"

    def as_event_actor(self) -> dict[str, object]:
        return {
            "id": None,
            "endpoint_id": self.endpoint_id,
            "name": self.display_name,
            "configured_by": self.configured_by,
            "delivery_id": self.delivery_id,
            "role": self.role,
            "auth": self.auth_method,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }


@dataclass(frozen=True)
class SystemActor:
    """Offboard itself, running a scheduled job of the organization (reminders, escalations:
    offboard.reminders): no user account and no role. Events name the job."""

    org: "Organization"
    job: str
    role = "system"
    auth_method = "system"
    user = None  # no staff user: the ledger entry's actor_user stays empty
    ip = None
    user_agent = None

    @property
    def display_name(self) -> str:
        return f"Offboard ({self.job})"

    def as_event_actor(self) -> dict[str, object]:
        return {
            "id": None,
            "name": self.display_name,
            "job": self.job,
            "role": self.role,
            "auth": self.auth_method,
            "ip": None,
            "user_agent": None,
        }


@dataclass(frozen=True)
class VisitorActor:
    """Someone not signed in, naming a member's account on the login or password-reset page
    (offboard.security): a failed sign-in, a reset request, a reset. They may be the member or
    an attacker, so no user is the actor; events name the account they named (`for_user_id`,
    `username`), the IP and user agent, never what they typed as a password."""

    org: "Organization"
    purpose: str  # "sign-in" | "password-reset"
    for_user_id: int | None = None
    username: str = ""
    ip: str | None = None
    user_agent: str | None = None
    role = "visitor"
    auth_method = "none"
    user = None  # not authenticated: the ledger entry's actor_user stays empty

    @property
    def display_name(self) -> str:
        return f"Someone at the {self.purpose} page"

    def as_event_actor(self) -> dict[str, object]:
        return {
            "id": None,
            "name": self.display_name,
            "purpose": self.purpose,
            "for_user_id": self.for_user_id,
            "username": self.username,
            "role": self.role,
            "auth": self.auth_method,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }


# Whoever an event can be recorded for: a member of the organization, a client's contact, an
# inbound webhook endpoint, one of Offboard's scheduled jobs, or a visitor who is not signed in.
EventActor = Actor | ContactActor | EndpointActor | SystemActor | VisitorActor
