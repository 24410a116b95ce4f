"""Read queries: a member's live sessions, the organization's, one session for an action."""

import datetime as dt

from django.conf import settings
from django.db.models import QuerySet

from offboard.accounts.models import Organization, User
from offboard.core import clock
from offboard.core.errors import NotFound
from offboard.security import counters
from offboard.security.models import MemberSession, SecurityCount


def _live(qs: QuerySet[MemberSession]) -> QuerySet[MemberSession]:
    """Not ended, used within the idle limit (Django drops a session unused for
    SESSION_COOKIE_AGE seconds) and signed in within OFFBOARD_SESSION_MAX_HOURS: a session
    past either is no longer live even if nobody ended it."""
    now = clock.now()
    since = now - dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    born_after = now - dt.timedelta(hours=settings.OFFBOARD_SESSION_MAX_HOURS)
    return qs.filter(ended_at__isnull=True, last_seen_at__gte=since, created_at__gte=born_after)


def live_sessions_of(org: Organization, user: User) -> QuerySet[MemberSession]:
    return _live(MemberSession.objects.filter(org=org, user=user)).order_by("-last_seen_at", "-pk")


def live_sessions_in(org: Organization) -> QuerySet[MemberSession]:
    return (
        _live(MemberSession.objects.filter(org=org))
        .select_related("user")
        .order_by("user__username", "-last_seen_at", "-pk")
    )


def get_live_session(org: Organization, session_id: int) -> MemberSession:
    """A live session of the organization; another organization's, or an ended one, is not
    found."""
    session = _live(MemberSession.objects.filter(org=org, pk=session_id)).first()
    if session is None:
        raise NotFound(f"No active session with id {session_id}.")
    return session


def failed_sign_ins_this_hour(user: User) -> int:
    row = SecurityCount.objects.filter(
        key=f"sign-in-failed:{user.pk}", period=counters.current_window()
    ).first()
    return row.count if row else 0
