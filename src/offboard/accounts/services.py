"""Organizations, users, memberships and API tokens: every change through one function."""

import hashlib
import re
import secrets
import warnings

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from offboard.accounts.models import ApiToken, Membership, Organization, User
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, NotFound, ValidationFailed
from offboard.core.permissions import ROLES, require
from offboard.core.validation import Errors
from offboard.ledger.recorder import record_event
from offboard.ledger.services import start_log

TOKEN_PREFIX = "obt_"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{2,150}$")


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
    user.is_active = False
    user.save(update_fields=["is_active"])
    tokens = ApiToken.objects.filter(user=user, org=membership.org, revoked_at__isnull=True)
    revoked = list(tokens.values_list("prefix", flat=True))
    tokens.update(revoked_at=clock.now())
    feeds = user.calendar_feeds.filter(  # the reverse of the calendar app's user FK
        org=membership.org, revoked_at__isnull=True
    )
    feeds_revoked = list(feeds.values_list("pk", flat=True))
    feeds.update(revoked_at=clock.now(), revoked_by=actor.user)
    owned = list(
        user.owned_cases.filter(  # the reverse of the cases app's owner FK
            org=membership.org, state__in=("draft", "active", "closing")
        ).values_list("ref", flat=True)
    )
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
        },
    )
    membership.user = user
    return membership


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
def change_password(*, actor: Actor, membership: Membership, password: str) -> Membership:
    """Set a member's password: their own (any role), or a colleague's (admins). The event
    says whose and by whom, never the password."""
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
    record_event(
        actor=actor,
        type="member.password_changed",
        data={"user_id": user.pk, "username": user.username, "own": own},
    )
    membership.user = user
    return membership


@transaction.atomic
def create_api_token(*, actor: Actor, name: str) -> tuple[ApiToken, str]:
    """Create a token for the actor; the plain token is returned once and never stored."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed({"name": ["must be 1-100 characters"]})
    secret = secrets.token_urlsafe(32)
    prefix = secrets.token_hex(4)
    plain = f"{TOKEN_PREFIX}{prefix}_{secret}"
    token = ApiToken.objects.create(
        org=actor.org, user=actor.user, name=name, prefix=prefix, token_hash=hash_token(plain)
    )
    record_event(
        actor=actor,
        type="api_token.created",
        data={"token_id": token.pk, "name": name, "prefix": prefix},
    )
    return token, plain


@transaction.atomic
def revoke_api_token(*, actor: Actor, token: ApiToken) -> ApiToken:
    if token.user_id != actor.user.pk and actor.role != "admin":
        raise NotFound("No such API token.")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        record_event(
            actor=actor,
            type="api_token.revoked",
            data={"token_id": token.pk, "prefix": token.prefix},
        )
    return token


def authenticate_token(plain: str) -> ApiToken | None:
    """Find the live token for a bearer string; updates last-used time at most once a minute."""
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
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
