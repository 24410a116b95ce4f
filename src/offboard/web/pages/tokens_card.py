"""The Settings card of API tokens: a member's own tokens (an admin's view lists every
member's), the form that makes one (name, scopes, expiry date filled with the organization's
default), the new token in the answer that made it and nowhere else, revocation, and for
admins the organization's token lifetimes (decision 0029)."""

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from offboard.accounts import selectors as accounts
from offboard.accounts.models import Membership
from offboard.accounts.services import (
    api_token_limit,
    create_api_token,
    default_api_token_expiry,
    revoke_api_token,
    set_api_token_policy,
)
from offboard.core import clock
from offboard.core.errors import ValidationFailed
from offboard.core.permissions import can
from offboard.core.scopes import ALL_SCOPES, SCOPES
from offboard.web.pages.common import actor_of, staff_page

FIELDS = ("name", "scopes", "expires_at")


def tokens_card(
    request: HttpRequest,
    membership: Membership,
    *,
    new_token: str = "",
    errors: dict[str, list[str]] | None = None,
    policy_errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    admin = can(actor_of(request, membership), "org.manage_members")
    org = membership.org
    rows = accounts.everyones_tokens(org) if admin else accounts.tokens(org, membership.user)
    now = clock.now()
    errors = errors or {}
    values = request.POST if errors else None
    return {
        "admin": admin,
        "rows": list(rows),
        "now": now,
        "new_token": new_token,
        "errors": {name: errors.get(name, []) for name in FIELDS},
        "scopes": [
            {
                "name": name,
                "words": words,
                "checked": name in values.getlist("scopes") if values is not None else True,
            }
            for name, words in SCOPES.items()
        ],
        "name": values.get("name", "") if values is not None else "",
        "expires": values.get("expires_at", "")
        if values is not None
        else f"{default_api_token_expiry(org, now):%Y-%m-%d}",
        "max_date": f"{api_token_limit(org, now):%Y-%m-%d}",
        "min_date": f"{now:%Y-%m-%d}",
        "default_days": org.api_token_default_days,
        "max_days": org.api_token_max_days,
        "policy_errors": policy_errors or {},
    }


def _render(request: HttpRequest, membership: Membership, status: int, **card: Any) -> Any:
    from offboard.web.pages.settings import _render as render_settings

    return render_settings(request, membership, api_tokens=card, status=status)


def _expiry(value: str) -> dt.datetime | None:
    """The end (UTC) of the day picked in the form; empty: the organization's default."""
    if not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed({"expires_at": ["is not a date (YYYY-MM-DD)"]}) from None
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


@require_POST
@staff_page
def create_token(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The new token is in this response only: it is never stored in clear nor shown again."""
    try:
        _, plain = create_api_token(
            actor=actor_of(request, membership),
            name=request.POST.get("name", ""),
            scopes=[s for s in request.POST.getlist("scopes") if s in ALL_SCOPES],
            expires_at=_expiry(request.POST.get("expires_at", "")),
        )
    except ValidationFailed as exc:
        return _render(request, membership, 422, errors=exc.errors)
    response = _render(request, membership, 200, new_token=plain)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@staff_page
def revoke_token(request: HttpRequest, membership: Membership, token_id: int) -> HttpResponse:
    """One's own token; an admin, any member's of the organization (another's is a 404)."""
    actor = actor_of(request, membership)
    if can(actor, "org.manage_members"):
        token = accounts.everyones_tokens(membership.org).filter(pk=token_id).first()
        if token is None:
            token = accounts.get_token(membership.org, membership.user, token_id)  # the 404
    else:
        token = accounts.get_token(membership.org, membership.user, token_id)
    revoke_api_token(actor=actor, token=token)
    return redirect(reverse("web:settings") + "#tokens")


@require_POST
@staff_page
def token_policy(request: HttpRequest, membership: Membership) -> HttpResponse:
    """An admin sets how long new tokens live by default and at most."""
    fields: dict[str, int] = {}
    problems: dict[str, list[str]] = {}
    for name in ("default_days", "max_days"):
        raw = request.POST.get(name, "").strip()
        if not raw.isdigit():
            problems[name] = ["must be a whole number of days"]
        else:
            fields[name] = int(raw)
    try:
        if problems:
            raise ValidationFailed(problems)
        set_api_token_policy(actor=actor_of(request, membership), **fields)
    except ValidationFailed as exc:
        return _render(request, membership, 422, policy_errors=exc.errors)
    return redirect(reverse("web:settings") + "#tokens")
