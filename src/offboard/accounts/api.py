"""Who am I, the organization's members and their roles, and my API tokens."""

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from offboard.accounts import selectors, services
from offboard.core.api import actor_of
from offboard.core.schemas import Input, UserRef, error_responses, paginated

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


class TokenOut(Schema):
    id: int
    name: str
    prefix: str = Field(description="The first characters after `obt_`, to recognise the token.")
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The bearer token. Shown this once; only its hash is stored.")


class TokenIn(Input):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")


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
def add_member(request: HttpRequest, payload: MemberIn) -> Any:
    actor = actor_of(request)
    membership = services.create_user(actor=actor, org=actor.org, **payload.dict())
    return Status(201, membership)


@router.patch(
    "/members/{user_id}",
    response={200: MemberOut, **error_responses(403, 404, 409, 422)},
    summary="Change a member's role (admin)",
)
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
def deactivate_member(request: HttpRequest, user_id: int, payload: DeactivateIn) -> Any:
    actor = actor_of(request)
    membership = selectors.get_member(actor.org, user_id)
    return services.deactivate_member(actor=actor, membership=membership, reason=payload.reason)


@router.post(
    "/members/{user_id}/reactivate",
    response={200: MemberOut, **error_responses(403, 404, 409)},
    summary="Reactivate a deactivated member (admin); their old tokens stay revoked",
)
def reactivate_member(request: HttpRequest, user_id: int) -> Any:
    actor = actor_of(request)
    membership = selectors.get_member(actor.org, user_id)
    return services.reactivate_member(actor=actor, membership=membership)


@router.get(
    "/tokens",
    response={200: list[TokenOut], **error_responses()},
    summary="My API tokens in this organization",
)
@paginated
def list_tokens(request: HttpRequest) -> Any:
    actor = actor_of(request)
    return selectors.tokens(actor.org, actor.user)


@router.post(
    "/tokens",
    response={201: TokenCreatedOut, **error_responses(422)},
    summary="Create an API token (the plain token is returned once)",
)
def create_token(request: HttpRequest, payload: TokenIn) -> Any:
    token, plain = services.create_api_token(actor=actor_of(request), name=payload.name)
    return Status(201, {**TokenOut.from_orm(token).dict(), "token": plain})


@router.delete(
    "/tokens/{token_id}",
    response={200: TokenOut, **error_responses(404)},
    summary="Revoke an API token; requests with it then get 401",
)
def revoke_token(request: HttpRequest, token_id: int) -> Any:
    actor = actor_of(request)
    token = selectors.get_token(actor.org, actor.user, token_id)
    return services.revoke_api_token(actor=actor, token=token)
