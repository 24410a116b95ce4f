"""How a staff member's sign-in completes, shared by every way in (a password, a password and
a second factor, a passkey, single sign-on) so that the session says the same things whichever
way they came.

A sign-in step that has checked who the person is calls `complete_sign_in`. It tells the
`user_logged_in` listeners how they came in (`request.offboard_sign_in`, read while Django's
`login()` runs), logs them in, and keeps in the session how they authenticated and which
second factor, if any, they passed in this session. `second_factor_of` reads that back: a
policy that wants a second factor for an action asks it (through the actor).
"""

from typing import Any

from django.contrib.auth import login
from django.http import HttpRequest

# In the session: how this session authenticated ("password", "passkey", "sso",
# "break_glass"), and the second factor passed in it ("totp", "recovery_code", "webauthn",
# "sso_mfa") or absent.
SESSION_METHOD = "offboard.sign_in_method"
SESSION_SECOND_FACTOR = "offboard.second_factor"

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def complete_sign_in(
    request: HttpRequest,
    user: Any,
    *,
    method: str,
    second_factor: str | None = None,
    backend: str = MODEL_BACKEND,
    details: dict[str, Any] | None = None,
) -> None:
    """Log `user` in on this request, saying how. `details` (e.g. the SSO issuer, a break-glass
    flag) go to the sign-in event the listeners record; never a secret."""
    request.offboard_sign_in = {  # type: ignore[attr-defined]
        "method": method,
        "second_factor": second_factor,
        **(details or {}),
    }
    login(request, user, backend=backend)
    request.session[SESSION_METHOD] = method
    if second_factor:
        request.session[SESSION_SECOND_FACTOR] = second_factor
    else:
        request.session.pop(SESSION_SECOND_FACTOR, None)


def mark_second_factor(request: HttpRequest, factor: str) -> None:
    """A signed-in member passed a second factor later in the session (a step-up)."""
    request.session[SESSION_SECOND_FACTOR] = factor


def sign_in_method_of(request: HttpRequest) -> str | None:
    session = getattr(request, "session", None)
    return session.get(SESSION_METHOD) if session is not None else None


def second_factor_of(request: HttpRequest) -> str | None:
    session = getattr(request, "session", None)
    return session.get(SESSION_SECOND_FACTOR) if session is not None else None
