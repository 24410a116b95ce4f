"""Organizations, users, memberships and API tokens: every change through one function."""

import datetime as dt
import hashlib
import re
import secrets
import warnings
from collections.abc import Sequence

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from offboard.accounts.models import ApiToken, Membership, Organization, User
from offboard.core import clock
from offboard.core.actor import Actor, EventActor
from offboard.core.errors import Conflict, NotFound, TokenExpired, ValidationFailed
from offboard.core.permissions import ROLES, require
from offboard.core.scopes import ALL_SCOPES, SCOPES
from offboard.core.validation import Errors
from offboard.ledger.recorder import record_event
from offboard.ledger.services import start_log
from offboard.security.services import end_sessions_of

TOKEN_PREFIX = "obt_"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{2,150}$")
# The longest token lifetime an organization may allow (ten years).
MAX_TOKEN_DAYS = 3650


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def create_organization(*, slug: str, name: str) -> Organization:
    """Create a tenant. Bootstrapping: no actor exists yet, so there is no event."""
    errors: dict[str, list[str]] = {}
    if not _SLUG.match(slug or ""):
        errors["slug"] = ["must be 3-50 lowercase letters, digits or hyphens"]
    if not (name or "").strip():
        errors["name"] = ["must not be empty"]
    if errors:
        raise ValidationFailed(errors)
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationFailed({"slug": [f"organization '{slug}' already exists"]})
    org = Organization.objects.create(slug=slug, name=name.strip())
    start_log(org)  # an empty Merkle log and the key that will sign its checkpoints
    return org


def _validate_user_fields(username: str, email: str, password: str | None) -> None:
    errors: dict[str, list[str]] = {}
    if not _USERNAME.match(username or ""):
        errors["username"] = ["must be 2-150 letters, digits or . _ @ + -"]
    elif User.objects.filter(username=username).exists():
        errors["username"] = [f"'{username}' is already taken"]
    if email and ("@" not in email or len(email) > 254):
        errors["email"] = ["is not an email address"]
    if password is not None and len(password) < 8:
        errors["password"] = ["must be at least 8 characters"]
    if errors:
        raise ValidationFailed(errors)


@transaction.atomic
def create_user(
    *,
    actor: Actor | None,
    org: Organization,
    username: str,
    role: str,
    password: str | None = None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_superuser: bool = False,
) -> Membership:
    """Create a user with a role in `org`. `actor` is None only when bootstrapping (CLI init).

    Nobody is made an installation superuser (decision 0011): `is_superuser` is ignored, with
    a warning, and goes away once no caller passes it.
    """
    if is_superuser:
        warnings.warn(
            "create_user(is_superuser=True) is ignored: an organization's member is never an "
            "installation superuser (decision 0011).",
            DeprecationWarning,
            stacklevel=3,  # the caller, past transaction.atomic's wrapper
        )
    if actor is not None:
        require(actor, "org.manage_members")
        if actor.org.pk != org.pk:
            raise NotFound("No such organization.")
    if role not in ROLES:
        raise ValidationFailed({"role": [f"'{role}' is not one of {', '.join(ROLES)}"]})
    _validate_user_fields(username, email, password)
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    membership = Membership.objects.create(org=org, user=user, role=role)
    if actor is not None:
        record_event(
            actor=actor,
            type="member.added",
            data={"user_id": user.pk, "username": username, "role": role},
        )
    return membership


@transaction.atomic
def change_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    require(actor, "org.manage_members")
    if role not in ROLES:
        raise ValidationFailed({"role": [f"'{role}' is not one of {', '.join(ROLES)}"]})
    old = membership.role
    if old == "admin" and role != "admin":
        _keep_an_admin(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    record_event(
        actor=actor,
        type="member.role_changed",
        data={"user_id": membership.user_id, "role": role, "old": {"role": old}},
    )
    return membership


def _keep_an_admin(membership: Membership) -> None:
    """Refuse a change that would leave the organization without an active admin."""
    admins = Membership.objects.filter(org=membership.org, role="admin", user__is_active=True)
    if not admins.exclude(pk=membership.pk).exists():
        raise Conflict("The organization must keep at least one active admin.", code="last_admin")


def _locked_user(actor: Actor, membership: Membership) -> User:
    """The member's user, locked, for an admin of the member's organization."""
    require(actor, "org.manage_members")
    if membership.org_id != actor.org.pk:
        raise NotFound("No such member.")
    return User.objects.select_for_update().get(pk=membership.user_id)


@transaction.atomic
def deactivate_member(*, actor: Actor, membership: Membership, reason: str = "") -> Membership:
    """A colleague leaves: they can no longer log in, their API tokens and calendar feed stop
    working at once, and the record keeps everything they did. Cases they own keep them as
    owner until reassigned (the event lists them)."""
    user = _locked_user(actor, membership)
    if user.pk == actor.user.pk:
        raise Conflict("You cannot deactivate yourself; another admin can.", code="self")
    if not user.is_active:
        raise Conflict(f"{user.username} is already deactivated.", code="already_inactive")
    if membership.role == "admin":
        _keep_an_admin(membership)
    errors = Errors()
    reason = errors.text("reason", reason, max_length=2000, required=False)
    errors.raise_if_any()
    end_membership(actor=actor, membership=membership, user=user, reason=reason)
    membership.user = user
    return membership


def end_membership(*, actor: EventActor, membership: Membership, user: User, reason: str) -> None:
    """What deactivation does, whoever decided it (an admin, or the identity provider through
    single sign-on): the member can no longer sign in, their API tokens and calendar feeds stop
    and their sessions end at once; one `member.deactivated` event lists all of it and the open
    cases they still own. `user` is the member's user, locked; the caller has checked."""
    by = actor.user  # None for Offboard itself (single sign-on's SystemActor)
    user.is_active = False
    user.save(update_fields=["is_active"])
    tokens = ApiToken.objects.filter(user=user, org=membership.org, revoked_at__isnull=True)
    revoked = list(tokens.values_list("prefix", flat=True))
    tokens.update(revoked_at=clock.now(), revoked_by=by)
    feeds = user.calendar_feeds.filter(  # the reverse of the calendar app's user FK
        org=membership.org, revoked_at__isnull=True
    )
    feeds_revoked = list(feeds.values_list("pk", flat=True))
    feeds.update(revoked_at=clock.now(), revoked_by=by)
    owned = list(
        user.owned_cases.filter(  # the reverse of the cases app's owner FK
            org=membership.org, state__in=("draft", "active", "closing")
        ).values_list("ref", flat=True)
    )
    sessions = end_sessions_of(user=user, reason="deactivated", by=by)
    record_event(
        actor=actor,
        type="member.deactivated",
        data={
            "user_id": user.pk,
            "username": user.username,
            "role": membership.role,
            "reason": reason,
            "tokens_revoked": revoked,
            "calendar_feeds_revoked": feeds_revoked,
            "open_cases_owned": owned,
            "sessions_ended": sessions,
        },
    )


@transaction.atomic
def reactivate_member(*, actor: Actor, membership: Membership) -> Membership:
    """Let a deactivated colleague log in again (their old API tokens and calendar feed stay
    revoked)."""
    user = _locked_user(actor, membership)
    if user.is_active:
        raise Conflict(f"{user.username} is active.", code="already_active")
    user.is_active = True
    user.save(update_fields=["is_active"])
    record_event(
        actor=actor,
        type="member.reactivated",
        data={"user_id": user.pk, "username": user.username, "role": membership.role},
    )
    membership.user = user
    return membership


@transaction.atomic
def change_password(
    *, actor: Actor, membership: Membership, password: str, keep_session_key: str | None = None
) -> Membership:
    """Set a member's password: their own (any role), or a colleague's (admins). The member's
    other sessions end (all of them when an admin sets it; the one of `keep_session_key`, the
    member's own current session, stays). The event says whose, by whom and which sessions
    ended, never the password."""
    if membership.org_id != actor.org.pk:
        raise NotFound("No such member.")
    own = membership.user_id == actor.user.pk
    if not own:
        require(actor, "org.manage_members")
    user = User.objects.select_for_update().get(pk=membership.user_id)
    try:
        validate_password(password or "", user)
    except DjangoValidationError as exc:
        raise ValidationFailed({"password": list(exc.messages)}) from None
    user.set_password(password)
    user.save(update_fields=["password"])
    sessions = end_sessions_of(
        user=user,
        reason="password_changed",
        by=actor.user,
        keep_session_key=keep_session_key if own else None,
    )
    record_event(
        actor=actor,
        type="member.password_changed",
        data={
            "user_id": user.pk,
            "username": user.username,
            "own": own,
            "sessions_ended": sessions,
        },
    )
    membership.user = user
    return membership


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


def api_token_limit(org: Organization, now: dt.datetime) -> dt.datetime:
    """The latest expiry a new token may have: the end of the (UTC) day the organization's
    maximum lifetime ends, so a date picked in a form is enough."""
    return _day_end((now + dt.timedelta(days=org.api_token_max_days)).astimezone(dt.UTC).date())


def default_api_token_expiry(org: Organization, now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(days=org.api_token_default_days)


@transaction.atomic
def create_api_token(
    *,
    actor: Actor,
    name: str,
    scopes: Sequence[str] | None = None,
    expires_at: dt.datetime | None = None,
    within: Sequence[str] | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for the actor; the plain token is returned once and never stored.

    `scopes` default to all; `within` is the scopes of the token this request came with (a
    token never makes a token with more). No `expires_at`: the organization's default
    lifetime; later than its maximum is refused."""
    errors = Errors()
    name = errors.text("name", name, max_length=100)
    wanted = list(ALL_SCOPES) if scopes is None else list(dict.fromkeys(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        errors.add(
            "scopes", f"unknown: {', '.join(unknown)}; the scopes are {', '.join(ALL_SCOPES)}"
        )
    elif not wanted:
        errors.add("scopes", "choose at least one scope")
    elif within is not None and not set(wanted) <= set(within):
        beyond = [s for s in wanted if s not in within]
        errors.add(
            "scopes",
            f"this token may not grant {', '.join(beyond)}: a token only makes tokens with "
            "scopes it has itself",
        )
    org = Organization.objects.get(pk=actor.org.pk)  # the policy as it stands
    now = clock.now()
    if expires_at is None:
        expires_at = default_api_token_expiry(org, now)
    elif expires_at.tzinfo is None:
        errors.add("expires_at", "needs a time zone (e.g. 2027-03-01T00:00:00Z)")
    elif expires_at <= now:
        errors.add("expires_at", "must be in the future")
    elif expires_at > api_token_limit(org, now):
        limit = api_token_limit(org, now)
        errors.add(
            "expires_at",
            f"must be no later than {limit:%Y-%m-%d}: the organization's maximum token "
            f"lifetime is {org.api_token_max_days} days",
        )
    errors.raise_if_any()
    wanted = [s for s in ALL_SCOPES if s in wanted]  # in the table's order
    secret = secrets.token_urlsafe(32)
    prefix = secrets.token_hex(4)
    plain = f"{TOKEN_PREFIX}{prefix}_{secret}"
    token = ApiToken.objects.create(
        org=actor.org,
        user=actor.user,
        name=name,
        prefix=prefix,
        token_hash=hash_token(plain),
        scopes=wanted,
        expires_at=expires_at,
        created_by=actor.user,
    )
    record_event(
        actor=actor,
        type="api_token.created",
        data={
            "token_id": token.pk,
            "name": name,
            "prefix": prefix,
            "user_id": actor.user.pk,
            "scopes": wanted,
            "expires_at": expires_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        },
    )
    return token, plain


@transaction.atomic
def revoke_api_token(*, actor: Actor, token: ApiToken) -> ApiToken:
    """Revoke a token: one's own, or (admins) any member's of the organization. The event
    says whose token and who revoked it."""
    if token.org_id != actor.org.pk:
        raise NotFound("No such API token.")
    own = token.user_id == actor.user.pk
    if not own and actor.role != "admin":
        raise NotFound("No such API token.")
    token = (  # the token's row only, not its user's (which every event and session refers to)
        ApiToken.objects.select_for_update(of=("self",), no_key=True)
        .select_related("user")
        .get(pk=token.pk)
    )
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        token.revoked_by = actor.user
        token.save(update_fields=["revoked_at", "revoked_by"])
        record_event(
            actor=actor,
            type="api_token.revoked",
            data={
                "token_id": token.pk,
                "name": token.name,
                "prefix": token.prefix,
                "user_id": token.user_id,
                "username": token.user.username,
                "revoked_by": {"user_id": actor.user.pk, "username": actor.user.username},
                "own": own,
            },
        )
    return token


@transaction.atomic
def set_api_token_policy(*, actor: Actor, default_days: int, max_days: int) -> Organization:
    """An admin sets how long new API tokens live by default and at most (existing tokens
    keep their expiry)."""
    require(actor, "org.manage_members")
    errors = Errors()
    errors.integer("max_days", max_days, minimum=1, maximum=MAX_TOKEN_DAYS)
    errors.integer("default_days", default_days, minimum=1, maximum=MAX_TOKEN_DAYS)
    errors.raise_if_any()
    if default_days > max_days:
        raise ValidationFailed(
            {"default_days": [f"must not be longer than the maximum ({max_days} days)"]}
        )
    org = Organization.objects.select_for_update().get(pk=actor.org.pk)
    old = {"default_days": org.api_token_default_days, "max_days": org.api_token_max_days}
    new = {"default_days": default_days, "max_days": max_days}
    if new != old:
        org.api_token_default_days = default_days
        org.api_token_max_days = max_days
        org.save(update_fields=["api_token_default_days", "api_token_max_days"])
        record_event(actor=actor, type="api_token.policy_changed", data={**new, "old": old})
    return org


def authenticate_token(plain: str) -> ApiToken | None:
    """Find the live token for a bearer string; updates last-used time at most once a minute.
    A token past its expiry raises `TokenExpired` (a 401 that says so and when)."""
    if not plain.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user", "org")
        .filter(token_hash=hash_token(plain), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = clock.now()
    if token.expires_at <= now:
        raise TokenExpired(
            f"This API token ({token.prefix}…, '{token.name}') expired at "
            f"{token.expires_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC. Create a new token "
            "(POST /api/v1/tokens with another token, or Settings → API tokens).",
            details={"expired_at": token.expires_at.isoformat()},
        )
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
