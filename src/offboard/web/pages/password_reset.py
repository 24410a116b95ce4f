"""Password reset by e-mail, for someone who cannot sign in: ask for a link (the same answer
whether the account exists or not), then set a new password through it (offboard.security
.reset, decision 0028)."""

from django.contrib.auth.password_validation import password_validators_help_texts
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from offboard.calendar.services import base_url_for
from offboard.core.errors import ValidationFailed
from offboard.security.reset import (
    InvalidResetLink,
    Visitor,
    check_reset_link,
    ip_allowed,
    request_password_reset,
    reset_password,
    send_in_background,
)


def _visitor(request: HttpRequest) -> Visitor:
    return Visitor(
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("User-Agent", "")[:300] or None,
    )


def _private(response: HttpResponse) -> HttpResponse:
    """A page whose address holds a reset token: never cached, never sent on as a referrer."""
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def request_reset(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "web/password_reset/request.html", {})
    visitor = _visitor(request)
    if not ip_allowed(visitor.ip):
        return render(request, "web/password_reset/too_many.html", {}, status=429)
    identifier = request.POST.get("identifier", "")
    messages = request_password_reset(
        identifier=identifier,
        visitor=visitor,
        base_url=base_url_for(request.build_absolute_uri("/")),
    )
    send_in_background(messages)
    # The same page, whatever happened: it must not tell whether the account exists.
    return render(request, "web/password_reset/sent.html", {})


@never_cache
@require_http_methods(["GET", "POST"])
def set_password(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = check_reset_link(token)
    except InvalidResetLink:
        return _private(render(request, "web/password_reset/invalid.html", {}, status=404))
    errors: list[str] = []
    if request.method == "POST":
        password = request.POST.get("new_password1", "")
        if password != request.POST.get("new_password2", ""):
            errors = ["The two passwords didn't match."]
        else:
            try:
                reset_password(token=token, password=password, visitor=_visitor(request))
            except InvalidResetLink:
                return _private(render(request, "web/password_reset/invalid.html", {}, status=404))
            except ValidationFailed as exc:
                errors = exc.errors.get("password", [exc.message])
            else:
                return _private(render(request, "web/password_reset/done.html", {}))
    return _private(
        render(
            request,
            "web/password_reset/set.html",
            {
                "username": user.username,
                "errors": errors,
                "help": password_validators_help_texts(),
            },
            status=422 if errors else 200,
        )
    )
