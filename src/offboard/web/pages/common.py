"""What every staff page shares: the member behind the request, the actor for services, and
how domain errors become pages (404 for other organizations' objects, 403 with the reason)."""

import functools
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from offboard.accounts.models import Membership
from offboard.accounts.selectors import membership_for
from offboard.accounts.signin import second_factor_of
from offboard.core.actor import Actor
from offboard.core.errors import NotFound, PermissionDenied, ValidationFailed
from offboard.core.inputs import problems as out_of_bounds

View = Callable[..., HttpResponseBase]


def membership_of(request: HttpRequest) -> Membership:
    membership = membership_for(request.user)  # type: ignore[arg-type]
    if membership is None:
        raise Http404("You are not a member of any organization.")
    return membership


def actor_of(request: HttpRequest, membership: Membership) -> Actor:
    """The actor for service calls, with how the request came in (recorded on events)."""
    return Actor.from_membership(
        membership,
        auth_method="session",
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("User-Agent", "")[:300] or None,
        second_factor=second_factor_of(request),
    )


def forbidden(
    request: HttpRequest, message: str, membership: Membership | None = None
) -> HttpResponse:
    return render(
        request, "web/forbidden.html", {"message": message, "membership": membership}, status=403
    )


def staff_page(view: View) -> View:
    """Log-in required; the view gets the member as its second argument. Another organization's
    object is a 404; an action the role may not do is a 403 page saying why."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        membership = membership_of(request)
        try:
            return view(request, membership, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from None
        except PermissionDenied as exc:
            return forbidden(request, exc.message, membership)

    return wrapper


def add_errors(
    form: forms.Form, exc: ValidationFailed, aliases: dict[str, str] | None = None
) -> None:
    """Put each field's problems next to the field; problems with no field go on top."""
    aliases = aliases or {}
    for name, problems in exc.errors.items():
        field = aliases.get(name, name)
        target = field if field in form.fields else None
        for problem in problems:
            label = "" if target else f"{name.replace('_', ' ')}: "
            form.add_error(target, f"{label}{problem}")


def case_anchor(register: str, item_id: int) -> str:
    """The element id of a register row (or step: register 'step') on the case page."""
    return f"{register}-{item_id}"


class IsoDateInput(forms.DateInput):
    """`<input type=date>` with its value in ISO form (2026-12-04), the only form the browser
    takes; Django's DateInput writes the language's format (en-GB: 04/12/2026), which the
    browser drops, so a default date would come back empty."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


class StaffForm(forms.Form):
    """A form whose labels read as plain words (no trailing colon), and whose values stay
    within what the database and the services can hold (offboard.core.inputs): a date at
    the edge of the calendar is a field error, never a server error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, value in list(cleaned.items()):
            for _, problem in out_of_bounds(value, name):
                self.add_error(name, f"{problem[:1].upper()}{problem[1:]}.")
        return cleaned
