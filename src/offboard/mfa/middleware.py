"""Under a policy of "everyone", a signed-in member without a second factor is sent to set one
up, and can open nothing else until they have (the sign-in, sign-out and enrolment pages and
static files stay open; the API, the portal and the feeds have no staff session)."""

from collections.abc import Callable
from typing import Any

from django.db.models import Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from offboard.accounts.models import Membership
from offboard.accounts.signin import second_factor_of
from offboard.mfa.models import MfaPolicy
from offboard.mfa.selectors import has_confirmed_factor

OPEN_PREFIXES = (
    "/login/",
    "/logout/",
    "/password-reset/",
    "/settings/security/factors/",
    "/static/",
    "/api/",
    "/portal/",
    "/calendar/",
    "/reminders/",
)
ENROLMENT = "/settings/security/factors/?required=1"


class EnrolmentRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not second_factor_of(request)  # passed one in this session: nothing to ask
            and not request.path.startswith(OPEN_PREFIXES)
            and _everyone_must(user)
            and not has_confirmed_factor(user)
        ):
            return redirect(ENROLMENT)
        return self.get_response(request)


def _everyone_must(user: Any) -> bool:
    """Whether the member's organization (the one `membership_for` picks) requires a second
    factor of everyone: asked on every page, so one query."""
    first_org = (
        Membership.objects.filter(user=user).order_by("created_at", "pk").values("org_id")[:1]
    )
    return MfaPolicy.objects.filter(
        org_id=Subquery(first_org), required_for=MfaPolicy.RequiredFor.EVERYONE
    ).exists()
