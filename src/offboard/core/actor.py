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

    @classmethod
    def from_membership(cls, membership: "Membership", **how: str | None) -> "Actor":
        return cls(user=membership.user, org=membership.org, role=membership.role, **how)  # type: ignore[arg-type]

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.username

    def as_event_actor(self) -> dict[str, object]:
        return {
            "id": self.user.pk,
            "name": self.display_name,
            "username": self.user.username,
            "role": self.role,
            "auth": self.auth_method,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }
