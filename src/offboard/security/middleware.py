"""Keeps a signed-in session's "last seen" and signs out a browser whose session was ended.

The time it was last noted rides in the session itself, which Django loads for any signed-in
request anyway, so a request costs no query of ours; at most once a minute per session one
UPDATE of `security_membersession` (and Django's save of the session that notes the time).
The same UPDATE finds a session someone ended from elsewhere whose entry in the session store
could not be deleted (decision 0028): that browser is signed out there and then.

A session signed in more than OFFBOARD_SESSION_MAX_HOURS ago is signed out (the idle limit is
Django's SESSION_COOKIE_AGE, which the once-a-minute save slides along).

It also follows a session whose key Django changed during the request (a password change
cycles it), so the session keeps its place in Settings → Security.
"""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse

from offboard.core import clock
from offboard.security import services
from offboard.security.signals import KEY_AT_START, SEEN, SIGNED_IN_AT

SEEN_EVERY_SECONDS = 60


class SessionActivityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is None:
            return self.get_response(request)
        start_key = session.session_key
        setattr(request, KEY_AT_START, start_key)
        if start_key and SESSION_KEY in session:
            now = int(clock.now().timestamp())
            seen = session.get(SEEN)
            signed_in_at = session.get(SIGNED_IN_AT)
            max_age = settings.OFFBOARD_SESSION_MAX_HOURS * 3600
            # Wall-clock time, as signals.py wrote it (not the pinned clock of a demo or test).
            if isinstance(signed_in_at, int) and time.time() - signed_in_at > max_age:
                session.flush()  # signed in too long ago: sign in again (ASVS V3.3.2)
                request.user = AnonymousUser()
                start_key = None
            elif not isinstance(seen, int) or now - seen >= SEEN_EVERY_SECONDS:
                if services.touch(start_key):
                    session[SEEN] = now
                else:  # ended from elsewhere: this browser is signed out
                    session.flush()
                    request.user = AnonymousUser()
                    start_key = None
        response = self.get_response(request)
        new_key = session.session_key
        signed_in_now = getattr(request, KEY_AT_START, None) != start_key
        changed = start_key and new_key and new_key != start_key and not signed_in_now
        if changed and SESSION_KEY in session:
            services.rekey(start_key, new_key)
        return response
