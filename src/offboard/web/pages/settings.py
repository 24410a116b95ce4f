"""Settings: members and roles, my API tokens, my calendar feed, the signing keys and
checkpoints of the organization's ledger, the certificate that signs its PDFs, and whether
time-stamping and email are configured (never secrets)."""

import base64
import secrets
from typing import Any

from django.conf import settings as conf
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from offboard.accounts import selectors as accounts
from offboard.accounts.models import Membership
from offboard.accounts.services import (
    change_password,
    change_role,
    create_user,
    deactivate_member,
    reactivate_member,
)
from offboard.calendar import selectors as calendars
from offboard.calendar.services import base_url_for, create_calendar_feed, revoke_calendar_feed
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.permissions import ROLES, can
from offboard.ledger import selectors as ledger
from offboard.reports.signing import SigningUnavailable, current_certificate
from offboard.web.pages.common import actor_of, forbidden, membership_of, staff_page
from offboard.web.pages.connections import connections_card
from offboard.web.pages.inbound_card import inbound_card
from offboard.web.pages.reminders_card import reminders_card
from offboard.web.pages.tokens_card import tokens_card
from offboard.web.pages.webhooks_card import webhooks_card

_BACKENDS = {
    "django.core.mail.backends.smtp.EmailBackend": "smtp",
    "django.core.mail.backends.filebased.EmailBackend": "file",
    "django.core.mail.backends.console.EmailBackend": "console",
    "django.core.mail.backends.locmem.EmailBackend": "locmem",
}


def _email_status() -> dict[str, object]:
    backend = _BACKENDS.get(conf.EMAIL_BACKEND, conf.EMAIL_BACKEND)
    security = "SSL/TLS" if conf.EMAIL_USE_SSL else "STARTTLS" if conf.EMAIL_USE_TLS else "none"
    return {
        "backend": backend,
        "sends": backend == "smtp" or "." in backend,
        "host": conf.EMAIL_HOST,
        "port": conf.EMAIL_PORT,
        "security": security,
        "user": conf.EMAIL_HOST_USER,
        "password_set": bool(conf.EMAIL_HOST_PASSWORD),
        "sender": conf.DEFAULT_FROM_EMAIL,
        "file_path": conf.EMAIL_FILE_PATH if backend == "file" else "",
    }


def _tsa_status() -> dict[str, object]:
    return {
        "urls": list(conf.OFFBOARD_TSA_URLS),
        "roots": bool(conf.OFFBOARD_TSA_ROOTS),
        "on_commit": conf.OFFBOARD_TSA_ON_COMMIT,
        "interval": conf.OFFBOARD_CHECKPOINT_INTERVAL,
    }


def _document_signing(org: Any) -> dict[str, object]:
    """The certificate that signs the organization's PDFs; read only (none before the first)."""
    try:
        return {"cert": current_certificate(org), "error": ""}
    except SigningUnavailable as exc:
        return {"cert": None, "error": str(exc)}


MEMBER_FIELDS = [
    ("username", "Username", "text", True),
    ("first_name", "First name", "text", False),
    ("last_name", "Last name", "text", False),
    ("email", "Email", "email", False),
    ("role", "Role", "select", True),
]


def _member_form(request: HttpRequest, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The add-member fields, refilled after a refusal, each with its own problems."""
    values = request.POST if errors else {}
    return [
        {
            "name": name,
            "label": label,
            "type": kind,
            "required": required,
            "value": values.get(name, "operator" if name == "role" else ""),
            "errors": errors.get(name, []),
        }
        for name, label, kind, required in MEMBER_FIELDS
    ]


def _render(
    request: HttpRequest,
    membership: Membership,
    *,
    api_tokens: dict[str, Any] | None = None,
    new_feed_url: str = "",
    feed_error: str = "",
    role_error: str = "",
    added: tuple[Membership, str] | None = None,
    add_errors: dict[str, list[str]] | None = None,
    inbound: dict[str, Any] | None = None,
    webhooks: dict[str, Any] | None = None,
    connections: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    checkpoints = ledger.recent_checkpoints(membership.org)
    rows = []
    for cp in checkpoints:
        stamps = list(cp.timestamps.all())
        granted = sum(1 for t in stamps if t.status == "granted")
        rows.append(
            {
                "cp": cp,
                "root": base64.b64encode(bytes(cp.root)).decode(),
                "stamps": len(stamps),
                "granted": granted,
            }
        )
    return render(
        request,
        "web/settings/index.html",
        {
            "membership": membership,
            "members": list(accounts.members(membership.org)),
            "roles": ROLES,
            "can_manage": can(actor_of(request, membership), "org.manage_members"),
            "api_tokens": tokens_card(request, membership, **(api_tokens or {})),
            "calendar_feed": calendars.live_feed(membership.org, membership.user),
            "new_feed_url": new_feed_url,
            "feed_error": feed_error,
            "role_error": role_error,
            "added": added,
            "add_errors": add_errors or {},
            "member_form": _member_form(request, add_errors or {}),
            "keys": list(ledger.signing_keys(membership.org)),
            "document_signing": _document_signing(membership.org),
            "checkpoints": rows,
            "log_size": ledger.log_size(membership.org),
            "tsa": _tsa_status(),
            "email": _email_status(),
            "site_host": conf.SITE_HOST,
            "inbound": inbound_card(request, membership, **(inbound or {})),
            "reminders": reminders_card(membership, saved=request.GET.get("reminders") == "saved"),
            "webhooks": webhooks_card(request, membership, **(webhooks or {})),
            "connections": connections_card(request, membership, **(connections or {})),
        },
        status=status,
    )


@staff_page
def settings_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _render(request, membership)


def _admins_only(request: HttpRequest, membership: Membership, doing: str) -> HttpResponse | None:
    """The page saying why, for a role that may not manage members; None for an admin."""
    if can(actor_of(request, membership), "org.manage_members"):
        return None
    return forbidden(
        request, f"Your role '{membership.role}' may not {doing}; only an admin can.", membership
    )


@require_POST
@staff_page
def change_member_role(request: HttpRequest, membership: Membership, user_id: int) -> HttpResponse:
    actor = actor_of(request, membership)
    if denied := _admins_only(request, membership, "change members' roles"):
        return denied
    member = accounts.get_member(membership.org, user_id)
    try:
        change_role(actor=actor, membership=member, role=request.POST.get("role", ""))
    except (ValidationFailed, Conflict) as exc:
        return _render(request, membership, role_error=exc.message, status=422)
    return redirect(reverse("web:settings") + "#members")


@require_POST
@staff_page
def member_access(
    request: HttpRequest, membership: Membership, user_id: int, action: str
) -> HttpResponse:
    """Deactivate a colleague who left (login and API tokens stop at once) or reactivate them."""
    if action not in ("deactivate", "reactivate"):
        raise Http404(f"No member action '{action}'.")
    actor = actor_of(request, membership)
    if denied := _admins_only(request, membership, f"{action} members"):
        return denied
    member = accounts.get_member(membership.org, user_id)
    try:
        if action == "deactivate":
            deactivate_member(actor=actor, membership=member, reason=request.POST.get("reason", ""))
        else:
            reactivate_member(actor=actor, membership=member)
    except (ValidationFailed, Conflict) as exc:
        return _render(request, membership, role_error=exc.message, status=422)
    return redirect(reverse("web:settings") + "#members")


@require_POST
@staff_page
def add_member(request: HttpRequest, membership: Membership) -> HttpResponse:
    """An admin adds a colleague with a role. Their first password is generated and shown in
    this response only (never stored in clear); they change it under Settings → Password."""
    actor = actor_of(request, membership)
    if denied := _admins_only(request, membership, "add members"):
        return denied
    post = request.POST
    password = secrets.token_urlsafe(12)
    try:
        added = create_user(
            actor=actor,
            org=membership.org,
            username=post.get("username", "").strip(),
            role=post.get("role", ""),
            password=password,
            email=post.get("email", "").strip(),
            first_name=post.get("first_name", "").strip()[:150],
            last_name=post.get("last_name", "").strip()[:150],
        )
    except ValidationFailed as exc:
        return _render(
            request, membership, add_errors=exc.errors or {"": [exc.message]}, status=422
        )
    response = _render(request, membership, added=(added, password))
    response["Cache-Control"] = "no-store"
    return response


class PasswordChange(auth_views.PasswordChangeView):
    """Django's form checks the old password and the new one; the change itself is the
    accounts service's, so it is recorded (`member.password_changed`)."""

    template_name = "web/settings/password.html"
    success_url = reverse_lazy("web:settings")

    def form_valid(self, form: Any) -> HttpResponse:
        membership = membership_of(self.request)
        try:
            change_password(
                actor=actor_of(self.request, membership),
                membership=membership,
                password=form.cleaned_data["new_password1"],
                keep_session_key=self.request.session.session_key,
            )
        except ValidationFailed as exc:
            for problem in exc.errors.get("password", [exc.message]):
                form.add_error("new_password2", problem)
            return self.form_invalid(form)
        update_session_auth_hash(self.request, membership.user)
        messages.success(self.request, "Your password was changed.")
        return HttpResponseRedirect(self.get_success_url())


@require_POST
@staff_page
def create_feed(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The feed's address is in this response only: its token is never stored in clear nor
    shown again. A new address replaces the member's previous one."""
    try:
        issued = create_calendar_feed(
            actor=actor_of(request, membership),
            membership=membership,
            base_url=base_url_for(request.build_absolute_uri("/")),
        )
    except Conflict as exc:
        return _render(request, membership, feed_error=exc.message, status=409)
    response = _render(request, membership, new_feed_url=issued.url)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@staff_page
def revoke_feed(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        revoke_calendar_feed(actor=actor_of(request, membership), membership=membership)
    except Conflict as exc:
        return _render(request, membership, feed_error=exc.message, status=409)
    return redirect(reverse("web:settings") + "#calendar")
