"""Settings → Connections (admins): add a connection to an external system, test it, edit it
(a new secret replaces the old; the old is never shown), disable it. Each action is one service
call (`connectors/services.py`); testing changes nothing and records nothing."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.connectors import registry
from offboard.connectors import selectors as connections
from offboard.connectors.base import ConnectorError, CredentialsRefused
from offboard.connectors.models import Connection
from offboard.connectors.services import (
    check_connection,
    create_connection,
    disable_connection,
    update_connection,
)
from offboard.core.errors import NotFound, ValidationFailed
from offboard.core.permissions import can, require
from offboard.web.pages.common import actor_of, staff_page

KIND_LABELS = {
    "scim": "SCIM 2.0 directory",
    "ldap": "LDAP directory",
    "postgres": "PostgreSQL roles",
    "aws_iam": "AWS IAM",
}
# What a field is for, where its name alone does not say.
HINTS = {
    "url": "The SCIM base URL, e.g. https://idp.example.com/scim/v2",
    "delete_users": "true or false: delete the users once their access is removed "
    "(SCIM: default false, deactivate only; AWS IAM: default true)",
    "timeout": "Seconds per call (default 10)",
    "attempts": "Tries per call on network errors, 429 and 5xx (default 4)",
    "retries": "Retries per call on network errors (default 3)",
    "role_prefix": "Only roles whose name starts with this are ever touched",
    "roles": "Or an explicit list of roles, separated by commas",
    "disable_mode": "disable (the default) or delete",
    "endpoint_url": "Only for an IAM-compatible endpoint other than AWS",
    "access_key_id": "The access key's id; its secret goes in the secret field",
}
SECRET_LABELS = {
    "scim": "Bearer token",
    "ldap": "Bind password",
    "postgres": "Admin password",
    "aws_iam": "Secret access key",
}


def kinds() -> list[dict[str, Any]]:
    """Each connector kind that loads, with its config fields (required first)."""
    out = []
    for kind in registry.kinds():
        try:
            cls = registry.get(kind)
        except ConnectorError:
            continue
        required = list(cls.required_config)
        optional = [f for f in cls.config_fields if f not in required]
        out.append(
            {
                "kind": kind,
                "label": KIND_LABELS.get(kind, kind),
                "secret_label": SECRET_LABELS.get(kind, "Token or password"),
                "fields": [
                    {"name": f, "required": f in required, "hint": HINTS.get(f, "")}
                    for f in required + optional
                ],
            }
        )
    return out


def connections_card(
    request: HttpRequest,
    membership: Membership,
    *,
    errors: dict[str, list[str]] | None = None,
    failed_kind: str = "",
    failed_edit: int | None = None,
    message: str = "",
    problem: str = "",
) -> dict[str, Any]:
    if not can(actor_of(request, membership), "connectors.manage"):
        return {"shown": False}
    rows = list(connections.connections(membership.org))
    return {
        "shown": True,
        "rows": [
            {
                "c": c,
                "label": KIND_LABELS.get(c.kind, c.kind),
                "config": sorted(c.config.items()),
                "failed": failed_edit == c.pk,
            }
            for c in rows
        ],
        "active": sum(1 for c in rows if c.state == Connection.State.ACTIVE),
        "kinds": kinds(),
        "errors": errors or {},
        "failed_kind": failed_kind,
        "values": request.POST if errors else {},
        "message": message,
        "problem": problem,
    }


def _render(
    request: HttpRequest, membership: Membership, status: int = 200, **card: Any
) -> HttpResponse:
    from offboard.web.pages.settings import _render as render_settings

    return render_settings(request, membership, connections=card, status=status)


def _back() -> HttpResponse:
    return redirect(reverse("web:settings") + "#connections")


def _config(request: HttpRequest, kind: str) -> dict[str, str]:
    """The kind's config fields from the form: the ones filled in, as typed."""
    fields: list[dict[str, Any]] = next((k["fields"] for k in kinds() if k["kind"] == kind), [])
    out = {}
    for f in fields:
        value = request.POST.get(f"config_{f['name']}", "").strip()
        if value:
            out[f["name"]] = value
    return out


def _get(membership: Membership, connection_id: int) -> Connection:
    found = connections.connections(membership.org).filter(pk=connection_id).first()
    if found is None:
        raise NotFound("No such connection in this organization.")
    return found


@require_POST
@staff_page
def create(request: HttpRequest, membership: Membership) -> HttpResponse:
    kind = request.POST.get("kind", "")
    try:
        created = create_connection(
            actor=actor_of(request, membership),
            name=request.POST.get("name", ""),
            kind=kind,
            config=_config(request, kind),
            secret=request.POST.get("secret", ""),
            recheck_interval_days=request.POST.get("recheck_interval_days") or 30,  # type: ignore[arg-type]
            requires_approval=request.POST.get("requires_approval") == "on",
        )
    except ValidationFailed as exc:
        return _render(request, membership, status=422, errors=exc.errors, failed_kind=kind)
    return _render(
        request,
        membership,
        message=f"Connection “{created.name}” added. Test it to check its credentials.",
    )


@require_POST
@staff_page
def edit(request: HttpRequest, membership: Membership, connection_id: int) -> HttpResponse:
    connection = _get(membership, connection_id)
    secret = request.POST.get("secret", "")
    try:
        update_connection(
            actor=actor_of(request, membership),
            connection=connection,
            name=request.POST.get("name", connection.name),
            config=_config(request, connection.kind),
            secret=secret if secret.strip() else None,
            recheck_interval_days=request.POST.get("recheck_interval_days")  # type: ignore[arg-type]
            or connection.recheck_interval_days,
            requires_approval=request.POST.get("requires_approval") == "on",
        )
    except ValidationFailed as exc:
        return _render(
            request, membership, status=422, errors=exc.errors, failed_edit=connection.pk
        )
    return _back()


@require_POST
@staff_page
def test(request: HttpRequest, membership: Membership, connection_id: int) -> HttpResponse:
    connection = _get(membership, connection_id)
    actor = actor_of(request, membership)
    require(actor, "connectors.manage")  # testing is part of managing them
    try:
        result = check_connection(actor=actor, connection=connection)
    except CredentialsRefused as exc:
        return _render(
            request,
            membership,
            problem=f"{connection.name}: the credentials were refused — {exc.message} "
            "Enter the secret again under Edit.",
        )
    except (ConnectorError, ValidationFailed) as exc:
        return _render(request, membership, problem=f"{connection.name}: {exc.message}")
    return _render(request, membership, message=f"{connection.name}: {result.detail}")


@require_POST
@staff_page
def disable(request: HttpRequest, membership: Membership, connection_id: int) -> HttpResponse:
    connection = _get(membership, connection_id)
    disable_connection(actor=actor_of(request, membership), connection=connection)
    return _back()
