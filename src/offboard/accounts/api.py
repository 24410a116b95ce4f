"""Who am I, the organization's members and their roles, and my API tokens."""

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from offboard.accounts import selectors, services
from offboard.core.api import actor_of
from offboard.core.permissions import require
from offboard.core.schemas import Input, Moment, UserRef, error_responses, paginated
from offboard.core.scopes import ALL_SCOPES, scope

router = Router(tags=["accounts"])

Role = Literal["admin", "manager", "operator", "finance", "auditor"]


class OrgOut(Schema):
    slug: str
    name: str


class MeOut(Schema):
    user: UserRef
    email: str
    org: OrgOut
    role: Role = Field(
        description="Your role in this organization; it decides what you may change."
    )
    auth_method: str = Field(description="How this request authenticated (`token`).")


class MemberOut(Schema):
    user: UserRef
    email: str
    role: Role
    joined_at: dt.datetime
    active: bool = Field(description="False once deactivated: no login, no API tokens.")

    @staticmethod
    def resolve_email(obj: Any) -> str:
        return str(obj.user.email)

    @staticmethod
    def resolve_active(obj: Any) -> bool:
        return bool(obj.user.is_active)

    @staticmethod
    def resolve_joined_at(obj: Any) -> dt.datetime:
        return obj.created_at


class MemberIn(Input):
    username: str = Field(min_length=2, max_length=150, description="Letters, digits and . _ @ + -")
    role: Role
    email: str = Field("", max_length=254)
    password: str | None = Field(
        None,
        min_length=8,
        max_length=200,
        description="Optional; without one the user cannot log in to the web app until it is set.",
    )
    first_name: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)


class RoleIn(Input):
    role: Role


class DeactivateIn(Input):
    reason: str = Field("", max_length=2000, description="Why they leave; kept in the record.")


ScopeName = Literal[
    "read",
    "cases:write",
    "clients:write",
    "playbooks:write",
    "ledger:write",
    "exports",
    "tokens",
    "admin",
]
assert set(ScopeName.__args__) == set(ALL_SCOPES)  # type: ignore[attr-defined]


class TokenOut(Schema):
    id: int
    name: str
    prefix: str = Field(description="The first characters after `obt_`, to recognise the token.")
    user: UserRef = Field(description="Whose token it is: it acts as this member.")
    scopes: list[ScopeName] = Field(description="What the token may be used for.")
    created_at: dt.datetime
    created_by: UserRef | None = Field(description="Who created it.")
    expires_at: dt.datetime = Field(description="After this, requests with it get 401.")
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_by: UserRef | None = Field(description="Who revoked it: its owner or an admin.")


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The bearer token. Shown this once; only its hash is stored.")


class TokenIn(Input):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    scopes: list[ScopeName] | None = Field(
        None,
        description="What the token may be used for (see the `BearerToken` scheme). Omitted: "
        "every scope of the token making this request. Never more than those.",
    )
    expires_at: Moment | None = Field(
        None,
        description="When it stops working (RFC 3339, with zone). Omitted: the organization's default lifetime; "
        "later than its maximum is refused (422 naming `expires_at`).",
    )


class TokenPolicyOut(Schema):
    default_days: int = Field(description="A token created without `expires_at` lives this long.")
    max_days: int = Field(description="No token may be created to live longer than this.")


class TokenPolicyIn(Input):
    default_days: int = Field(ge=1, le=services.MAX_TOKEN_DAYS)
    max_days: int = Field(ge=1, le=services.MAX_TOKEN_DAYS)


def _policy(org: Any) -> dict[str, int]:
    return {"default_days": org.api_token_default_days, "max_days": org.api_token_max_days}


@router.get("/me", response={200: MeOut, **error_responses()}, summary="Who am I")
def me(request: HttpRequest) -> Any:
    actor = actor_of(request)
    return {
        "user": actor.user,
        "email": actor.user.email,
        "org": actor.org,
        "role": actor.role,
        "auth_method": actor.auth_method,
    }


@router.get("/members", response={200: list[MemberOut], **error_responses()})
@paginated
def list_members(request: HttpRequest) -> Any:
    return selectors.members(actor_of(request).org)


@router.post(
    "/members",
    response={201: MemberOut, **error_responses(403, 422)},
    summary="Add a member (admin)",
)
@scope("admin")
def add_member(request: HttpRequest, payload: MemberIn) -> Any:
    actor = actor_of(request)
    membership = services.create_user(actor=actor, org=actor.org, **payload.dict())
    return Status(201, membership)


@router.patch(
    "/members/{user_id}",
    response={200: MemberOut, **error_responses(403, 404, 409, 422)},
    summary="Change a member's role (admin)",
)
@scope("admin")
def change_member_role(request: HttpRequest, user_id: int, payload: RoleIn) -> Any:
    actor = actor_of(request)
    membership = selectors.get_member(actor.org, user_id)
    return services.change_role(actor=actor, membership=membership, role=payload.role)


@router.post(
    "/members/{user_id}/deactivate",
    response={200: MemberOut, **error_responses(403, 404, 409, 422)},
    summary="Deactivate a member who left (admin)",
    description="They can no longer log in, open sessions end and their API tokens stop at "
    "once; everything they did stays on the record (`member.deactivated`, which lists the "
    "open cases they still own). Not yourself (409 `self`), not the last active admin "
    "(409 `last_admin`).",
)
@scope("admin")
def deactivate_member(request: HttpRequest, user_id: int, payload: DeactivateIn) -> Any:
    actor = actor_of(request)
    membership = selectors.get_member(actor.org, user_id)
    return services.deactivate_member(actor=actor, membership=membership, reason=payload.reason)


@router.post(
    "/members/{user_id}/reactivate",
    response={200: MemberOut, **error_responses(403, 404, 409)},
    summary="Reactivate a deactivated member (admin); their old tokens stay revoked",
)
@scope("admin")
def reactivate_member(request: HttpRequest, user_id: int) -> Any:
    actor = actor_of(request)
    membership = selectors.get_member(actor.org, user_id)
    return services.reactivate_member(actor=actor, membership=membership)


@router.get(
    "/tokens",
    response={200: list[TokenOut], **error_responses(403)},
    summary="My API tokens in this organization; an admin may list everyone's",
    description="`?everyone=true` (admins only, 403 otherwise) lists every member's tokens.",
)
@paginated
def list_tokens(request: HttpRequest, everyone: bool = False) -> Any:
    actor = actor_of(request)
    if everyone:
        require(actor, "org.manage_members")
        return selectors.everyones_tokens(actor.org)
    return selectors.tokens(actor.org, actor.user)


@router.post(
    "/tokens",
    response={201: TokenCreatedOut, **error_responses(422)},
    summary="Create an API token (the plain token is returned once)",
    description="For yourself, with scopes no wider than the token you call with, and an "
    "expiry within the organization's maximum (`GET /tokens/policy`).",
)
@scope("tokens")
def create_token(request: HttpRequest, payload: TokenIn) -> Any:
    within = list(request.auth.scopes)  # type: ignore[attr-defined]
    token, plain = services.create_api_token(
        actor=actor_of(request),
        name=payload.name,
        scopes=payload.scopes if payload.scopes is not None else within,
        expires_at=payload.expires_at,
        within=within,
    )
    token.token = plain  # type: ignore[attr-defined]  # in this answer only, never stored
    return Status(201, token)


@router.get(
    "/tokens/policy",
    response={200: TokenPolicyOut, **error_responses()},
    summary="How long new API tokens live: by default and at most",
)
def token_policy(request: HttpRequest) -> Any:
    return _policy(actor_of(request).org)


@router.put(
    "/tokens/policy",
    response={200: TokenPolicyOut, **error_responses(403, 422)},
    summary="Set how long new API tokens live by default and at most (admin)",
    description="Tokens that exist keep their expiry. Recorded as `api_token.policy_changed`.",
)
@scope("admin")
def set_token_policy(request: HttpRequest, payload: TokenPolicyIn) -> Any:
    org = services.set_api_token_policy(
        actor=actor_of(request), default_days=payload.default_days, max_days=payload.max_days
    )
    return _policy(org)


@router.delete(
    "/tokens/{token_id}",
    response={200: TokenOut, **error_responses(404)},
    summary="Revoke one of your API tokens; requests with it then get 401",
    description="Another member's token is not found here: an admin revokes it with "
    "DELETE /members/{user_id}/tokens/{token_id}.",
)
@scope("tokens")
def revoke_token(request: HttpRequest, token_id: int) -> Any:
    actor = actor_of(request)
    token = selectors.get_token(actor.org, actor.user, token_id)
    return services.revoke_api_token(actor=actor, token=token)


@router.delete(
    "/members/{user_id}/tokens/{token_id}",
    response={200: TokenOut, **error_responses(403, 404)},
    summary="Revoke a member's API token (admin)",
    description="Recorded as `api_token.revoked`, naming whose token and who revoked it.",
)
@scope("admin")
def revoke_member_token(request: HttpRequest, user_id: int, token_id: int) -> Any:
    actor = actor_of(request)
    require(actor, "org.manage_members")
    token = selectors.get_member_token(actor.org, user_id, token_id)
    return services.revoke_api_token(actor=actor, token=token)
