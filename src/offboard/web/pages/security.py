"""Settings → Security: the member's signed-in sessions (device, IP, last seen) with "sign
out" for each other one and "sign out everywhere else"; an admin also sees every member's
sessions in the organization and can sign any of them out. Second factors have their own page
(`/settings/security/factors/`, offboard.mfa), linked from here when it exists."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.core.permissions import can
from offboard.security import selectors as sessions
from offboard.security.services import end_sessions, hash_key
from offboard.web.pages.common import actor_of, staff_page


def _factors_url() -> str:
    """The second-factor page, once the app that serves it is installed."""
    try:
        return reverse("web:security-factors")
    except NoReverseMatch:
        return ""


def _rows(request: HttpRequest, listed: list) -> list[dict[str, object]]:
    current = request.session.session_key
    current_hash = hash_key(current) if current else ""
    return [{"session": s, "current": s.key_hash == current_hash} for s in listed]


@staff_page
def security_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    actor = actor_of(request, membership)
    is_admin = can(actor, "org.manage_members")
    mine = _rows(request, list(sessions.live_sessions_of(membership.org, membership.user)))
    everyone = []
    if is_admin:
        everyone = _rows(
            request,
            [
                s
                for s in sessions.live_sessions_in(membership.org)
                if s.user_id != membership.user_id
            ],
        )
    return render(
        request,
        "web/settings/security.html",
        {
            "membership": membership,
            "mine": mine,
            "others_mine": sum(1 for row in mine if not row["current"]),
            "is_admin": is_admin,
            "everyone": everyone,
            "factors_url": _factors_url(),
            "ended": request.GET.get("ended", ""),
        },
    )


@require_POST
@staff_page
def end_session(request: HttpRequest, membership: Membership, session_id: int) -> HttpResponse:
    """Sign one session out: the member's own other session, or (admins) any member's. Another
    organization's session, or another member's for a non-admin, is a 404."""
    session = sessions.get_live_session(membership.org, session_id)
    ended = end_sessions(
        actor=actor_of(request, membership),
        sessions=[session],
        current_session_key=request.session.session_key,
    )
    return redirect(reverse("web:security") + f"?ended={len(ended)}")


@require_POST
@staff_page
def end_other_sessions(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Sign out everywhere else: every session of the member but this one."""
    ended = end_sessions(
        actor=actor_of(request, membership),
        sessions=list(sessions.live_sessions_of(membership.org, membership.user)),
        current_session_key=request.session.session_key,
    )
    return redirect(reverse("web:security") + f"?ended={len(ended)}")
