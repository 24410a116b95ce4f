"""The single sign-on pages: find the organization's provider, send the person there with a
fresh state, nonce and PKCE verifier kept in the session, and on their return check all of it,
exchange the code, verify the ID token and sign them in. Whatever goes wrong at the provider
gives a page saying what to do next, never a server error."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from offboard.accounts.signin import complete_sign_in
from offboard.core import clock
from offboard.core.sealing import SealedValueUnavailable
from offboard.sso import oidc, selectors, services
from offboard.sso.models import SsoConfig

PENDING = "offboard.sso.pending"
PENDING_SECONDS = 600
PENDING_KEPT = 5
SCOPE = "openid email profile"


def _problem(
    request: HttpRequest, title: str, message: str, status: int = 400, **extra: Any
) -> HttpResponse:
    context = {"title": title, "message": message, **extra}
    return render(request, "sso/problem.html", context, status=status)


def callback_url(request: HttpRequest) -> str:
    path = reverse("web:sso-callback")
    base = getattr(settings, "OFFBOARD_BASE_URL", "")
    return f"{base.rstrip('/')}{path}" if base else request.build_absolute_uri(path)


def _safe_next(request: HttpRequest, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("web:dashboard")


# The page's form answers with a redirect to the organization's provider, which the browser
# checks against the page's CSP `form-action`: on this page only (our form, nothing a user
# wrote), it also allows any https origin and a provider on this machine.
FORM_ACTION = "form-action 'self' https: http://127.0.0.1:* http://localhost:*"


def _provider_bound(response: HttpResponse) -> HttpResponse:
    policy = getattr(settings, "OFFBOARD_CSP", "")
    if policy:
        parts = [p for p in policy.split("; ") if not p.startswith("form-action")]
        response["Content-Security-Policy"] = "; ".join([*parts, FORM_ACTION])
    return response


@require_http_methods(["GET", "POST"])
def sso_login(request: HttpRequest) -> HttpResponse:
    """Ask for the organization (its short name, or one's work e-mail address)."""
    return _provider_bound(_sso_login(request))


def _sso_login(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "POST":
        entered = request.POST.get("organization", "")[:254]
        config = selectors.config_for_login(entered)
        if config is not None:
            return _start(request, config, next_url)
        error = (
            "No organization signs in with single sign-on under that name or e-mail domain. "
            "Check it, or log in with your password."
        )
        context = {"error": error, "entered": entered, "next": next_url}
        return render(request, "sso/login.html", context, status=400)
    return render(request, "sso/login.html", {"next": next_url})


def sso_login_org(request: HttpRequest, org_slug: str) -> HttpResponse:
    config = selectors.config_for_slug(org_slug)
    if config is None:
        return _problem(
            request,
            "Single sign-on is not set up",
            f"The organization '{org_slug[:50]}' has no single sign-on. Log in with your password, "
            "or ask an admin to set it up.",
            status=404,
        )
    return _start(request, config, request.GET.get("next", ""))


def _start(request: HttpRequest, config: SsoConfig, next_url: str) -> HttpResponse:
    try:
        discovery = oidc.discover(config.issuer)
    except oidc.ProviderError as exc:
        return _provider_down(request, config, exc)
    auth = oidc.authorization_request(
        discovery=discovery,
        client_id=config.client_id,
        redirect_uri=callback_url(request),
        scope=SCOPE,
    )
    pending = {
        k: v
        for k, v in (request.session.get(PENDING) or {}).items()
        if clock.now().timestamp() - float(v.get("at", 0)) < PENDING_SECONDS
    }
    pending[auth.state] = {
        "org": config.org_id,
        "nonce": auth.nonce,
        "verifier": auth.code_verifier,
        "next": _safe_next(request, next_url),
        "at": clock.now().timestamp(),
    }
    request.session[PENDING] = dict(list(pending.items())[-PENDING_KEPT:])
    return HttpResponseRedirect(auth.url)


def _provider_down(
    request: HttpRequest, config: SsoConfig, exc: oidc.ProviderError
) -> HttpResponse:
    return _problem(
        request,
        "The identity provider did not answer as expected",
        f"{exc.message} Try again in a few minutes. If it keeps failing, tell an admin of "
        f"{config.org.name}: they can test the set-up under Settings → Single sign-on.",
        status=502,
    )


def callback(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    pending = request.session.get(PENDING) or {}
    started = pending.pop(state, None) if state else None
    request.session[PENDING] = pending  # a state is used once, whatever happens next
    if not isinstance(started, dict) or (
        clock.now().timestamp() - float(started.get("at", 0)) > PENDING_SECONDS
    ):
        return _problem(
            request,
            "This sign-in cannot be completed",
            "It was not started from this browser, it was completed already, or it waited "
            "too long. Start again from the login page.",
        )
    config = SsoConfig.objects.select_related("org").filter(org_id=started["org"]).first()
    if config is None:
        return _problem(request, "Single sign-on is not set up", "Log in with your password.")
    if request.GET.get("error"):
        error = request.GET.get("error", "")[:100]
        description = request.GET.get("error_description", "")[:300]
        return _problem(
            request,
            "The identity provider did not sign you in",
            f"It answered '{error}'{f': {description}' if description else ''}. Start again "
            "from the login page; if it happens again, ask your identity provider's administrator.",
        )
    code = request.GET.get("code", "")
    if not code:
        return _problem(
            request, "This sign-in cannot be completed", "The provider sent no code. Start again."
        )
    try:
        discovery = oidc.discover(config.issuer)
        tokens = oidc.exchange_code(
            discovery=discovery,
            client_id=config.client_id,
            client_secret=selectors.client_secret(config),
            code=code,
            redirect_uri=callback_url(request),
            code_verifier=started["verifier"],
        )
        claims = oidc.verify_id_token(
            tokens["id_token"],
            discovery=discovery,
            client_id=config.client_id,
            nonce=started["nonce"],
        )
    except oidc.ProviderError as exc:
        return _provider_down(request, config, exc)
    except SealedValueUnavailable:
        return _problem(
            request,
            "Single sign-on cannot be used right now",
            "Offboard cannot read the client secret it keeps for the provider (its sealing key is "
            "missing). Tell an admin: they can enter the secret again under Settings → Single "
            "sign-on.",
            status=503,
        )
    outcome = services.sign_in_with_sso(config=config, claims=claims)
    if outcome.user is None:
        return _problem(
            request,
            "You cannot sign in to Offboard",
            outcome.refusal,
            status=403,
            code=outcome.code,
        )
    complete_sign_in(
        request,
        outcome.user,
        method="sso",
        second_factor="sso_mfa" if oidc.has_second_factor(claims) else None,
        details={"issuer": config.issuer},
    )
    return redirect(started.get("next") or reverse("web:dashboard"))
