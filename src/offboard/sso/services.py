"""Single sign-on's changes: an admin configures the organization's provider; a sign-in through
it adds the member (just in time), changes their role, or deactivates them when the provider
no longer puts them in an allowed group. One function per action, one event per change; the
client secret is sealed and never in an event."""

from __future__ import annotations

import ipaddress
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from offboard.accounts.models import Membership, Organization, User
from offboard.accounts.services import end_membership
from offboard.core import clock
from offboard.core.actor import Actor, SystemActor
from offboard.core.errors import NotFound, ValidationFailed
from offboard.core.permissions import ADMIN, ROLES, require
from offboard.core.sealing import seal
from offboard.ledger.recorder import record_event
from offboard.sso.models import SsoConfig, SsoIdentity

SSO_JOB = "single sign-on"
REMOVED_REASON = "removed from the identity provider's groups"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CLAIM = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")
_LOOPBACK_NAMES = {"localhost"}


def system_actor(org: Organization) -> SystemActor:
    return SystemActor(org=org, job=SSO_JOB)


def _issuer_problem(issuer: str) -> str | None:
    parts = urllib.parse.urlsplit(issuer)
    if not parts.netloc or parts.query or parts.fragment:
        return "must be the provider's issuer URL, e.g. https://login.example.com/realm"
    host = (parts.hostname or "").lower()
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in _LOOPBACK_NAMES
        if loopback:
            return None
        return "must use https (http only for a provider on this machine: 127.0.0.1 or localhost)"
    return "must start with https://"


def parse_domains(value: str | list[str]) -> list[str]:
    items = value if isinstance(value, list) else re.split(r"[\s,]+", value or "")
    return [str(d).strip().lower().lstrip("@") for d in items if str(d).strip()]


def parse_group_roles(value: str | dict[str, str]) -> dict[str, str]:
    """`group = role` lines (or a mapping) as a mapping; a line without `=` is a field error."""
    if isinstance(value, dict):
        return {str(k).strip(): str(v).strip().lower() for k, v in value.items()}
    mapping: dict[str, str] = {}
    for number, line in enumerate((value or "").splitlines(), start=1):
        if not line.strip():
            continue
        group, sep, role = line.rpartition("=")
        if not sep or not group.strip():
            raise ValidationFailed(
                {
                    "group_roles": [
                        f"line {number} must read 'group = role', e.g. 'offboard-admins = admin'"
                    ]
                }
            )
        mapping[group.strip()] = role.strip().lower()
    return mapping


def _validated(
    org: Organization,
    *,
    issuer: str,
    client_id: str,
    allowed_domains: str | list[str],
    groups_claim: str,
    group_roles: str | dict[str, str],
    sso_required: bool,
    break_glass_username: str,
    secret_needed: bool,
    client_secret: str,
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    issuer = (issuer or "").strip().rstrip("/")
    if not issuer:
        errors["issuer"] = ["is required"]
    elif len(issuer) > 500:
        errors["issuer"] = ["must be at most 500 characters"]
    elif problem := _issuer_problem(issuer):
        errors["issuer"] = [problem]
    client_id = (client_id or "").strip()
    if not client_id or len(client_id) > 255:
        errors["client_id"] = ["is required (at most 255 characters)"]
    if secret_needed and not client_secret:
        errors["client_secret"] = ["is required"]
    if len(client_secret) > 1000:
        errors["client_secret"] = ["must be at most 1000 characters"]
    domains = parse_domains(allowed_domains)
    bad = [d for d in domains if not _DOMAIN.match(d)]
    if bad:
        errors["allowed_domains"] = [f"not a domain name: {', '.join(bad[:5])[:200]}"]
    elif not domains:
        errors["allowed_domains"] = ["name at least one e-mail domain, e.g. example.com"]
    groups_claim = (groups_claim or "").strip() or "groups"
    if not _CLAIM.match(groups_claim):
        errors["groups_claim"] = ["must be a claim name such as 'groups' or 'roles'"]
    try:
        mapping = parse_group_roles(group_roles)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        mapping = {}
    wrong = sorted({r for r in mapping.values() if r not in ROLES})
    if wrong:
        errors["group_roles"] = [
            f"'{', '.join(wrong)[:100]}' is not a role: use one of {', '.join(ROLES)}"
        ]
    elif not mapping and "group_roles" not in errors:
        errors["group_roles"] = ["map at least one group to a role, e.g. 'offboard-admins = admin'"]
    elif any(len(g) > 200 for g in mapping):
        errors["group_roles"] = ["a group name must be at most 200 characters"]
    break_glass = None
    username = (break_glass_username or "").strip()
    if username:
        membership = (
            Membership.objects.select_related("user")
            .filter(org=org, user__username=username)
            .first()
        )
        if membership is None or membership.role != ADMIN or not membership.user.is_active:
            errors["break_glass"] = [
                f"'{username[:150]}' is not an active admin of this organization"
            ]
        else:
            break_glass = membership.user
    elif sso_required:
        errors["break_glass"] = [
            "name an admin who may still use a password when single sign-on is required "
            "(the way in if the identity provider fails)"
        ]
    if errors:
        raise ValidationFailed(errors)
    return {
        "issuer": issuer,
        "client_id": client_id,
        "allowed_domains": domains,
        "groups_claim": groups_claim,
        "group_roles": mapping,
        "sso_required": bool(sso_required),
        "break_glass": break_glass,
    }


def _event_data(config: SsoConfig) -> dict[str, Any]:
    """What an event says about the configuration: everything but the secret (only whether
    one is set)."""
    return {
        "issuer": config.issuer,
        "client_id": config.client_id,
        "client_secret_set": config.secret_is_set,
        "allowed_domains": list(config.allowed_domains),
        "groups_claim": config.groups_claim,
        "group_roles": dict(config.group_roles),
        "sso_required": config.sso_required,
        "break_glass": config.break_glass.username if config.break_glass else None,
    }


@transaction.atomic
def configure_sso(
    *,
    actor: Actor,
    issuer: str,
    client_id: str,
    client_secret: str = "",
    allowed_domains: str | list[str],
    group_roles: str | dict[str, str],
    groups_claim: str = "groups",
    sso_required: bool = False,
    break_glass_username: str = "",
) -> SsoConfig:
    """Set up the organization's provider, or change it. A blank secret on a change keeps the
    one saved; a new one replaces it (the old is never shown)."""
    require(actor, "sso.manage")
    existing = SsoConfig.objects.select_for_update().filter(org=actor.org).first()
    values = _validated(
        actor.org,
        issuer=issuer,
        client_id=client_id,
        allowed_domains=allowed_domains,
        groups_claim=groups_claim,
        group_roles=group_roles,
        sso_required=sso_required,
        break_glass_username=break_glass_username,
        secret_needed=existing is None or not existing.secret_is_set,
        client_secret=client_secret or "",
    )
    config = existing or SsoConfig(org=actor.org)
    old = _event_data(existing) if existing else None
    for name, value in values.items():
        setattr(config, name, value)
    if existing is None:
        config.save()  # the row's id is not needed: the seal is bound to the organization
    if client_secret:
        config.client_secret_sealed = seal(client_secret.encode(), context=config.seal_context)
    config.save()
    data = _event_data(config)
    if old is None:
        record_event(actor=actor, type="sso.configured", data=data)
    else:
        changed = {k: v for k, v in old.items() if data[k] != v}
        if client_secret:
            changed["client_secret_set"] = old["client_secret_set"]
            data["client_secret_replaced"] = True
        record_event(actor=actor, type="sso.updated", data={**data, "old": changed})
    return config


@transaction.atomic
def remove_sso(*, actor: Actor) -> None:
    """Stop single sign-on: passwords work again for every member; the sealed secret goes."""
    require(actor, "sso.manage")
    config = SsoConfig.objects.select_for_update().filter(org=actor.org).first()
    if config is None:
        raise NotFound("Single sign-on is not set up.")
    data = _event_data(config)
    config.delete()
    record_event(actor=actor, type="sso.removed", data=data)


@transaction.atomic
def record_break_glass_sign_in(
    *, config: SsoConfig, user: User, ip: str | None, user_agent: str | None
) -> None:
    """The break-glass admin signed in with a password while SSO is required: on the record."""
    membership = Membership.objects.get(org=config.org, user=user)
    actor = Actor.from_membership(membership, auth_method="session", ip=ip, user_agent=user_agent)
    record_event(
        actor=actor,
        type="sso.break_glass_sign_in",
        data={"user_id": user.pk, "username": user.username, "ip": ip, "user_agent": user_agent},
    )


@dataclass(frozen=True)
class SsoOutcome:
    """A sign-in's result: the user to log in, or the refusal to show (and its code)."""

    user: User | None = None
    refusal: str = ""
    code: str = ""


def _refuse(code: str, message: str) -> SsoOutcome:
    return SsoOutcome(refusal=message, code=code)


def mapped_role(config: SsoConfig, claims: dict[str, Any]) -> str | None:
    """The most powerful role any of the person's groups maps to (roles in ROLES order)."""
    raw = claims.get(config.groups_claim)
    groups = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    roles = {config.group_roles.get(str(g)) for g in groups} - {None}
    return next((r for r in ROLES if r in roles), None)


def _new_username(email: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._@+-]", "", email)[:140] or "member"
    username = base
    while User.objects.filter(username=username).exists():
        username = f"{base}-{secrets.token_hex(2)}"
    return username


def _deactivate(actor: SystemActor, membership: Membership) -> None:
    """As an admin's deactivation, by the provider (accounts.services.end_membership)."""
    user = User.objects.select_for_update().get(pk=membership.user_id)
    end_membership(actor=actor, membership=membership, user=user, reason=REMOVED_REASON)


@transaction.atomic
def sign_in_with_sso(*, config: SsoConfig, claims: dict[str, Any]) -> SsoOutcome:
    """Who a verified ID token is in this organization, adding them on their first sign-in
    and bringing their role in line with their groups. A person in no allowed group is refused,
    and deactivated if they were a member (the break-glass admin only refused: they are the way
    in when the provider is wrong)."""
    org = config.org
    actor = system_actor(org)
    email = str(claims.get("email") or "").strip().lower()
    if not email or "@" not in email:
        return _refuse("no_email", "The identity provider sent no e-mail address for you.")
    if "email_verified" in claims and claims["email_verified"] is not True:
        return _refuse(
            "email_unverified",
            f"The identity provider has not verified your e-mail address ({email}). Verify it "
            "there, then sign in again.",
        )
    if email.rsplit("@", 1)[1] not in config.allowed_domains:
        return _refuse(
            "domain",
            f"{email} is not in a domain {org.name} signs in with "
            f"({', '.join(config.allowed_domains)}).",
        )
    issuer, subject = config.issuer, str(claims["sub"])
    identity = (
        SsoIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    )
    membership = None
    if identity is not None:
        if identity.org_id != org.pk:
            return _refuse(
                "other_org",
                "This account of the identity provider belongs to another organization.",
            )
        membership = (
            Membership.objects.select_related("user").filter(org=org, user=identity.user).first()
        )
    else:
        membership = (
            Membership.objects.select_related("user")
            .filter(org=org, user__email__iexact=email)
            .order_by("pk")
            .first()
        )
        if (
            membership is not None
            and SsoIdentity.objects.filter(user=membership.user, issuer=issuer).exists()
        ):
            membership = None  # that member is another account of the provider
    role = mapped_role(config, claims)
    if role is None:
        not_allowed = (
            f"You are not in a group that may use Offboard at {org.name}. Ask your identity "
            "provider's administrator to add you to one."
        )
        if (
            membership is not None
            and membership.user.is_active
            and membership.user_id != config.break_glass_id
        ):
            _deactivate(actor, membership)
            return _refuse("removed", not_allowed + " Your Offboard account has been deactivated.")
        return _refuse("no_group", not_allowed)
    if membership is not None and not membership.user.is_active:
        return _refuse(
            "inactive",
            f"Your Offboard account at {org.name} is deactivated. An admin can reactivate it.",
        )
    if membership is None:
        user = User(username=_new_username(email), email=email)
        user.first_name = str(claims.get("given_name") or "")[:150]
        user.last_name = str(claims.get("family_name") or "")[:150]
        user.set_unusable_password()
        user.save()
        membership = Membership.objects.create(org=org, user=user, role=role)
        identity = SsoIdentity.objects.create(org=org, user=user, issuer=issuer, subject=subject)
        record_event(
            actor=actor,
            type="member.added",
            data={
                "user_id": user.pk,
                "username": user.username,
                "role": role,
                "via": "sso",
                "issuer": issuer,
            },
        )
    else:
        if identity is None:
            identity = SsoIdentity.objects.create(
                org=org, user=membership.user, issuer=issuer, subject=subject
            )
            record_event(
                actor=actor,
                type="sso.identity_linked",
                data={
                    "user_id": membership.user_id,
                    "username": membership.user.username,
                    "issuer": issuer,
                    "email": email,
                },
            )
        if membership.role != role and membership.user_id != config.break_glass_id:
            old = membership.role
            membership.role = role
            membership.save(update_fields=["role"])
            record_event(
                actor=actor,
                type="member.role_changed",
                data={
                    "user_id": membership.user_id,
                    "role": role,
                    "old": {"role": old},
                    "via": "sso",
                },
            )
    identity.last_sign_in_at = clock.now()
    identity.save(update_fields=["last_sign_in_at"])
    return SsoOutcome(user=membership.user)
