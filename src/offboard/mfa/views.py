"""The sign-in with a second step: the password page, then (for a member with a factor) an
authenticator code, a recovery code or a passkey; and a passkey alone, passwordless.

The password is checked by `django.contrib.auth.authenticate` (through Django's login form),
so the lockout (django-axes) and every authentication backend still apply. A member with a
confirmed factor is not logged in yet: a pending sign-in (who, when, where to go next) waits
in the session for five minutes and five wrong attempts, and only a passed factor calls
`complete_sign_in`."""

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from offboard.accounts.models import User
from offboard.accounts.selectors import membership_for
from offboard.accounts.signin import MODEL_BACKEND, complete_sign_in
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict
from offboard.mfa import passkeys, selectors, services
from offboard.sso.selectors import password_barred

PENDING = "offboard.mfa.pending"
PENDING_SECONDS = 300
ATTEMPTS_PER_SIGN_IN = 5
LOGIN_CHALLENGE = "offboard.mfa.login_challenge"
VERIFY_CHALLENGE = "offboard.mfa.verify_challenge"

EXPIRED = "Your sign-in waited too long for its second step. Enter your password again."
TOO_MANY = (
    "Too many wrong codes: this sign-in was stopped. Enter your password again, or wait a "
    "few minutes if it keeps being refused."
)


class SignInView(auth_views.LoginView):
    """Django's login page, with a second step for members who enrolled a factor."""

    template_name = "web/login.html"
    form_class = AuthenticationForm

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        backend = getattr(user, "backend", MODEL_BACKEND)
        target = self.get_success_url()  # `next`, only when it is safe (LoginView checks)
        if selectors.has_confirmed_factor(user):
            self.request.session[PENDING] = {
                "user_id": user.pk,
                "at": clock.now().timestamp(),
                "backend": backend,
                "next": target,
                "failures": 0,
            }
            return redirect("web:login-verify")
        complete_sign_in(self.request, user, method="password", backend=backend)
        return HttpResponseRedirect(target)


def _pending(request: HttpRequest) -> tuple[dict[str, Any], User] | None:
    data = request.session.get(PENDING)
    if not isinstance(data, dict):
        return None
    if clock.now().timestamp() - float(data.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None
    user_id = data.get("user_id")
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None:
        request.session.pop(PENDING, None)
        return None
    return data, user


def _actor(request: HttpRequest, user: User, auth_method: str) -> Actor | None:
    """The member as the actor of events at the second step (their first organization)."""
    membership = membership_for(user)
    if membership is None:
        return None
    return Actor.from_membership(
        membership,
        auth_method=auth_method,
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("User-Agent", "")[:300] or None,
    )


def _safe_next(request: HttpRequest, target: str) -> str:
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("web:dashboard")


def _finish(request: HttpRequest, data: dict[str, Any], user: User, factor: str) -> str:
    request.session.pop(PENDING, None)
    request.session.pop(VERIFY_CHALLENGE, None)
    target = _safe_next(request, str(data.get("next") or ""))
    complete_sign_in(
        request,
        user,
        method="password",
        second_factor=factor,
        backend=str(data.get("backend") or MODEL_BACKEND),
    )
    return target


def _failed(
    request: HttpRequest, data: dict[str, Any], user: User, factor: str, reason: str
) -> bool:
    """Record a failed attempt; True when this sign-in has had its last chance."""
    data["failures"] = int(data.get("failures", 0)) + 1
    actor = _actor(request, user, "password")
    if actor is not None:
        services.record_second_factor_failure(
            actor=actor, factor=factor, reason=reason, attempt=data["failures"]
        )
    if data["failures"] >= ATTEMPTS_PER_SIGN_IN:
        request.session.pop(PENDING, None)
        return True
    request.session[PENDING] = data
    return False


def _verify_context(user: User, **extra: Any) -> dict[str, Any]:
    factors = selectors.factors_of(user)
    return {"factors": factors, "pending_user": user, **extra}


def verify(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the authenticator app, a recovery code, or a passkey."""
    pending = _pending(request)
    if pending is None:
        messages.error(request, EXPIRED)
        return redirect("web:login")
    data, user = pending
    if request.method != "POST":
        return render(request, "mfa/verify.html", _verify_context(user))
    kind = request.POST.get("kind", "totp")
    code = request.POST.get("code", "")
    if selectors.recent_failures(user) >= selectors.FAILURE_LIMIT:
        request.session.pop(PENDING, None)
        messages.error(request, TOO_MANY)
        return redirect("web:login")
    if kind == "recovery":
        actor = _actor(request, user, "password")
        if (
            actor is not None
            and code.strip()
            and services.use_recovery_code(actor=actor, code=code)
        ):
            return redirect(_finish(request, data, user, "recovery_code"))
        reason, error = (
            "wrong recovery code",
            "That recovery code is not one of yours, or it was used already.",
        )
    else:
        kind = "totp"
        if services.check_totp(user=user, code=code):
            return redirect(_finish(request, data, user, "totp"))
        reason, error = (
            "wrong or reused code",
            "That code is not the current one, or it was used already. Wait for the next code "
            "and try again.",
        )
    if _failed(request, data, user, "recovery_code" if kind == "recovery" else "totp", reason):
        messages.error(request, TOO_MANY)
        return redirect("web:login")
    left = ATTEMPTS_PER_SIGN_IN - int(data["failures"])
    context = _verify_context(user, error=error, kind=kind, attempts_left=left)
    return render(request, "mfa/verify.html", context, status=400)


def _json_error(message: str, status: int = 400, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


@require_POST
def verify_passkey_options(request: HttpRequest) -> HttpResponse:
    pending = _pending(request)
    if pending is None:
        return _json_error(EXPIRED, 401, redirect=reverse("web:login"))
    _, user = pending
    allowed = list(selectors.factors_of(user).passkeys)
    if not allowed:
        return _json_error("You have no passkey: use your authenticator app or a recovery code.")
    options, challenge = passkeys.authentication_options(
        passkeys.relying_party(request), allowed=allowed
    )
    request.session[VERIFY_CHALLENGE] = challenge.hex()
    return HttpResponse(options, content_type="application/json")


@require_POST
def verify_passkey(request: HttpRequest) -> HttpResponse:
    """A passkey as the second step after a password."""
    pending = _pending(request)
    if pending is None:
        return _json_error(EXPIRED, 401, redirect=reverse("web:login"))
    data, user = pending
    challenge = request.session.pop(VERIFY_CHALLENGE, None)
    if not challenge:
        return _json_error("Start again: the passkey request had expired.")
    if selectors.recent_failures(user) >= selectors.FAILURE_LIMIT:
        request.session.pop(PENDING, None)
        return _json_error(TOO_MANY, 429, redirect=reverse("web:login"))
    try:
        credential, credential_id = passkeys.credential_id_of(
            request.body.decode("utf-8", "replace")
        )
        passkey = next(
            (p for p in selectors.factors_of(user).passkeys if p.credential_id == credential_id),
            None,
        )
        if passkey is None:
            raise passkeys.PasskeyRefused("That passkey is not one of yours.")
        count = passkeys.check_assertion(
            passkeys.relying_party(request),
            credential=credential,
            challenge=bytes.fromhex(challenge),
            passkey=passkey,
        )
        services.passkey_used(passkey=passkey, sign_count=count)
    except (passkeys.PasskeyRefused, Conflict) as exc:
        message = exc.message if isinstance(exc, Conflict) else str(exc)
        if _failed(request, data, user, "webauthn", "passkey refused"):
            return _json_error(TOO_MANY, 429, redirect=reverse("web:login"))
        return _json_error(message)
    return JsonResponse({"redirect": _finish(request, data, user, "webauthn")})


@require_POST
def passkey_login_options(request: HttpRequest) -> HttpResponse:
    """A passwordless sign-in: any passkey of this site the browser holds (discoverable)."""
    options, challenge = passkeys.authentication_options(
        passkeys.relying_party(request), allowed=[]
    )
    request.session[LOGIN_CHALLENGE] = challenge.hex()
    return HttpResponse(options, content_type="application/json")


@require_POST
def passkey_login(request: HttpRequest) -> HttpResponse:
    """Sign in with a passkey alone: it is both factors (something held, and the fingerprint
    or PIN that unlocked it, which the authenticator must confirm)."""
    challenge = request.session.pop(LOGIN_CHALLENGE, None)
    if not challenge:
        return _json_error("Start again: the passkey request had expired.")
    try:
        credential, credential_id = passkeys.credential_id_of(
            request.body.decode("utf-8", "replace")
        )
        passkey = selectors.passkey_by_credential_id(credential_id)
        if passkey is None or not passkey.user.is_active:
            raise passkeys.PasskeyRefused(
                "This passkey is not registered with Offboard, or its member was deactivated. "
                "Sign in with your password."
            )
        if password_barred(passkey.user) is not None:
            # Like a password, a passkey is a local credential: an organization that requires
            # single sign-on lets its members in through the identity provider only.
            raise passkeys.PasskeyRefused(
                "Your organization signs in with single sign-on: use its sign-in link."
            )
        count = passkeys.check_assertion(
            passkeys.relying_party(request),
            credential=credential,
            challenge=bytes.fromhex(challenge),
            passkey=passkey,
        )
        services.passkey_used(passkey=passkey, sign_count=count)
    except passkeys.PasskeyRefused as exc:
        return _json_error(str(exc))
    except Conflict as exc:
        return _json_error(exc.message)
    target = _safe_next(request, request.GET.get("next", ""))
    request.session.pop(PENDING, None)
    complete_sign_in(request, passkey.user, method="passkey", second_factor="webauthn")
    return JsonResponse({"redirect": target})
