"""Settings → Single sign-on (admins): the organization's OpenID Connect provider, its group
mapping and "SSO required", shown (the client secret only as set or not set), edited, tested
(discovery and key set fetched afresh; nothing changes and nothing is recorded) and removed."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.accounts.selectors import members
from offboard.core.errors import NotFound, ValidationFailed
from offboard.core.permissions import ADMIN, ROLES, require
from offboard.sso import oidc
from offboard.sso import selectors as sso
from offboard.sso.models import SsoConfig
from offboard.sso.services import configure_sso, remove_sso
from offboard.sso.views import callback_url
from offboard.web.pages.common import actor_of, staff_page

FIELDS = (
    "issuer",
    "client_id",
    "allowed_domains",
    "groups_claim",
    "group_roles",
    "break_glass",
)


def _values(config: SsoConfig | None) -> dict[str, Any]:
    if config is None:
        return {"groups_claim": "groups"}
    return {
        "issuer": config.issuer,
        "client_id": config.client_id,
        "allowed_domains": ", ".join(config.allowed_domains),
        "groups_claim": config.groups_claim,
        "group_roles": "\n".join(f"{g} = {r}" for g, r in config.group_roles.items()),
        "sso_required": config.sso_required,
        "break_glass": config.break_glass.username if config.break_glass else "",
    }


def _render(
    request: HttpRequest,
    membership: Membership,
    *,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, Any] | None = None,
    test: dict[str, Any] | None = None,
) -> HttpResponse:
    config = sso.config_of(membership.org)
    admins = [
        m.user.username for m in members(membership.org) if m.role == ADMIN and m.user.is_active
    ]
    context = {
        "membership": membership,
        "config": config,
        "values": values if values is not None else _values(config),
        "errors": errors or {},
        "roles": ROLES,
        "admins": admins,
        "callback": callback_url(request),
        "saved": request.GET.get("saved") == "1",
        "test": test,
    }
    return render(request, "web/settings/sso.html", context, status=status)


@staff_page
def sso_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    actor = actor_of(request, membership)
    require(actor, "sso.manage")
    if request.method != "POST":
        return _render(request, membership)
    post = request.POST
    try:
        configure_sso(
            actor=actor,
            issuer=post.get("issuer", ""),
            client_id=post.get("client_id", ""),
            client_secret=post.get("client_secret", ""),
            allowed_domains=post.get("allowed_domains", ""),
            group_roles=post.get("group_roles", ""),
            groups_claim=post.get("groups_claim", ""),
            sso_required=post.get("sso_required") == "on",
            break_glass_username=post.get("break_glass", ""),
        )
    except ValidationFailed as exc:
        values: dict[str, Any] = {name: post.get(name, "") for name in FIELDS}
        values["sso_required"] = post.get("sso_required") == "on"
        return _render(request, membership, status=400, errors=exc.errors, values=values)
    return redirect("/settings/sso/?saved=1")


@staff_page
@require_POST
def test_discovery(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Fetch the discovery document and key set afresh and say what was found."""
    require(actor_of(request, membership), "sso.manage")
    config = sso.config_of(membership.org)
    if config is None:
        raise NotFound("Single sign-on is not set up.")
    try:
        discovery = oidc.discover(config.issuer, fresh=True)
        keys = oidc.key_set(discovery["jwks_uri"], fresh=True)
    except oidc.ProviderError as exc:
        return _render(request, membership, test={"ok": False, "message": exc.message})
    methods = discovery.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    usable = [m for m in ("client_secret_basic", "client_secret_post") if m in methods]
    message = (
        f"The provider answered: authorization at {discovery['authorization_endpoint']}, tokens at "
        f"{discovery['token_endpoint']}, {len(keys.keys)} signing key"
        f"{'s' if len(keys.keys) != 1 else ''}."
    )
    if not usable:
        message += (
            " It offers neither client_secret_basic nor client_secret_post: sign-ins will fail."
        )
    return _render(
        request, membership, test={"ok": bool(usable) and bool(keys.keys), "message": message}
    )


@staff_page
@require_POST
def remove(request: HttpRequest, membership: Membership) -> HttpResponse:
    remove_sso(actor=actor_of(request, membership))
    return redirect("/settings/sso/")
