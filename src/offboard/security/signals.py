"""Django's auth signals → the organization's log. Every way in ends in Django's `login()`
(through `offboard.accounts.signin.complete_sign_in`), so `user_logged_in` covers passwords,
second factors, passkeys and single sign-on alike; django-axes' lockouts and wrong passwords
both reach `user_login_failed` once per attempt."""

import time
from typing import Any

from django.http import HttpRequest

from offboard.core import clock
from offboard.security import services

# Set by the middleware before the view runs: the session key the request came with, so a
# sign-in over an earlier session of the same browser ends that one (`login()` cycles the key).
KEY_AT_START = "_offboard_session_key_at_start"
# In the session: when its "last seen" was last noted (seconds since the epoch).
SEEN = "offboard.seen"
# In the session: when the member signed in; past OFFBOARD_SESSION_MAX_HOURS they sign in again.
SIGNED_IN_AT = "offboard.signed_in_at"


def _ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def _agent(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.headers.get("User-Agent", "")[:300] or None


def signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    session = request.session
    if not session.session_key:  # `login()` flushed an earlier user's session: key it now
        session.save()
    key = session.session_key
    if not key:  # a session store that cannot key a session here: nothing to keep
        return
    services.record_sign_in(
        user=user,
        session_key=key,
        ip=_ip(request),
        user_agent=_agent(request),
        how=getattr(request, "offboard_sign_in", None) or {"method": "password"},
        replaced_session_key=getattr(request, KEY_AT_START, None),
    )
    setattr(request, KEY_AT_START, key)
    session[SEEN] = int(clock.now().timestamp())  # just seen: no update for the next minute
    # The absolute limit runs on the wall clock, never the pinned one (core/clock.py): a demo
    # or a test looking at a case as of next week is not a session twelve hours old.
    session[SIGNED_IN_AT] = int(time.time())


def signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None or request is None:  # an anonymous visitor's "log out"
        return
    session = getattr(request, "session", None)
    services.record_sign_out(
        user=user,
        session_key=session.session_key if session is not None else None,
        ip=_ip(request),
        user_agent=_agent(request),
    )


def sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # `credentials` has the password masked by Django already; only the username is read.
    services.record_failed_sign_in(
        username=str(credentials.get("username") or ""),
        ip=_ip(request),
        user_agent=_agent(request),
    )
