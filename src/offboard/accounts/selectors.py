"""Read queries for accounts."""

from django.db.models import QuerySet

from offboard.accounts.models import ApiToken, Membership, Organization, User
from offboard.core.errors import NotFound


def membership_for(user: User, org: Organization | None = None) -> Membership | None:
    qs = Membership.objects.select_related("org", "user").filter(user=user)
    if org is not None:
        qs = qs.filter(org=org)
    return qs.order_by("created_at", "pk").first()


def members(org: Organization) -> QuerySet[Membership]:
    return Membership.objects.select_related("user").filter(org=org).order_by("user__username")


def get_member(org: Organization, user_id: int) -> Membership:
    m = members(org).filter(user_id=user_id).first()
    if m is None:
        raise NotFound(f"No member with id {user_id} in this organization.")
    return m


def get_org(slug: str) -> Organization:
    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        raise NotFound(f"No organization '{slug}'.")
    return org


def tokens(org: Organization, user: User) -> QuerySet[ApiToken]:
    return (
        ApiToken.objects.select_related("user", "created_by", "revoked_by")
        .filter(org=org, user=user)
        .order_by("-created_at", "-pk")
    )


def everyones_tokens(org: Organization) -> QuerySet[ApiToken]:
    """Every member's tokens in the organization (what an admin sees), newest first."""
    return (
        ApiToken.objects.select_related("user", "created_by", "revoked_by")
        .filter(org=org)
        .order_by("-created_at", "-pk")
    )


def get_token(org: Organization, user: User, token_id: int) -> ApiToken:
    """One of `user`'s own tokens; anyone else's is not found."""
    t = tokens(org, user).filter(pk=token_id).first()
    if t is None:
        raise NotFound(f"No API token with id {token_id}.")
    return t


def get_member_token(org: Organization, user_id: int, token_id: int) -> ApiToken:
    """A member's token in the organization (for an admin), by the member's id and its own."""
    t = everyones_tokens(org).filter(user_id=user_id, pk=token_id).first()
    if t is None:
        raise NotFound(f"No API token with id {token_id} for member {user_id}.")
    return t
