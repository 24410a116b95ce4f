"""Settings → Security → Two-factor: a member's authenticator app, passkeys and recovery
codes, and (for admins) the organization's second-factor policy."""

import json
from typing import Any

import segno
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.accounts.signin import mark_second_factor, second_factor_of
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.permissions import can
from offboard.mfa import passkeys, selectors, services
from offboard.mfa.models import MfaPolicy
from offboard.mfa.policy import covers
from offboard.web.pages.common import actor_of, staff_page

REGISTER_CHALLENGE = "offboard.mfa.register_challenge"
POLICY_WORDS = {
    "nobody": "Nobody: second factors are optional",
    "approvers": "Members who approve closures (admins, managers, finance)",
    "everyone": "Everyone: members without one must set one up to go on",
}


def _qr_svg(uri: str) -> str:
    """The enrolment QR code, drawn here as inline SVG (no image service, no script)."""
    return segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#111", light="#fff")


def _render(
    request: HttpRequest,
    membership: Membership,
    *,
    recovery_codes: list[str] | None = None,
    totp_error: str = "",
    status: int = 200,
) -> HttpResponse:
    user = membership.user
    pending = services.pending_totp(user)
    pending_view = None
    if pending is not None:
        uri = pending.provisioning_uri(f"Offboard ({membership.org.name})")
        pending_view = {"secret": pending.secret, "qr": _qr_svg(uri)}
    policy = selectors.required_for(membership.org)
    context: dict[str, Any] = {
        "membership": membership,
        "factors": selectors.factors_of(user),
        "pending": pending_view,
        "recovery_codes": recovery_codes or [],
        "totp_error": totp_error,
        "policy": policy,
        "policy_words": POLICY_WORDS,
        "policy_choices": MfaPolicy.RequiredFor.values,
        "covered": covers(membership.org, membership.role),
        "session_factor": second_factor_of(request),
        "can_manage": can(actor_of(request, membership), "mfa.manage"),
        "required_now": request.GET.get("required") == "1",
    }
    return render(request, "mfa/factors.html", context, status=status)


@staff_page
def factors_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _render(request, membership)


@require_POST
@staff_page
def totp_start(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        services.start_totp_enrolment(actor=actor_of(request, membership))
    except Conflict as exc:
        messages.error(request, exc.message)
    return redirect("/settings/security/factors/#totp")


@require_POST
@staff_page
def totp_confirm(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        enrolled = services.confirm_totp(
            actor=actor_of(request, membership), code=request.POST.get("code", "")
        )
    except ValidationFailed as exc:
        return _render(request, membership, totp_error=" ".join(exc.errors["code"]), status=400)
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect("web:security-factors")
    # The member just showed a current code: this session has passed a second factor.
    mark_second_factor(request, "totp")
    messages.success(request, "Your authenticator app is set up.")
    return _render(request, membership, recovery_codes=enrolled.recovery_codes)


@require_POST
@staff_page
def totp_remove(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        services.remove_totp(actor=actor_of(request, membership))
        messages.success(request, "Your authenticator app was removed.")
    except Conflict as exc:
        messages.error(request, exc.message)
    return redirect("web:security-factors")


@require_POST
@staff_page
def passkey_remove(request: HttpRequest, membership: Membership) -> HttpResponse:
    passkey = selectors.get_passkey(membership.user, request.POST.get("passkey", ""))
    services.remove_passkey(actor=actor_of(request, membership), passkey=passkey)
    messages.success(request, f"The passkey “{passkey.name}” was removed.")
    return redirect("web:security-factors")


@require_POST
@staff_page
def recovery_codes(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        codes = services.regenerate_recovery_codes(actor=actor_of(request, membership))
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect("web:security-factors")
    return _render(request, membership, recovery_codes=codes)


@require_POST
@staff_page
def passkey_options(request: HttpRequest, membership: Membership) -> HttpResponse:
    user = membership.user
    options, challenge = passkeys.registration_options(
        passkeys.relying_party(request),
        user_handle=services.user_handle(user),
        username=user.username,
        display_name=user.get_full_name(),
        existing=selectors.factors_of(user).passkeys,
    )
    request.session[REGISTER_CHALLENGE] = challenge.hex()
    return HttpResponse(options, content_type="application/json")


@require_POST
@staff_page
def passkey_register(request: HttpRequest, membership: Membership) -> HttpResponse:
    challenge = request.session.pop(REGISTER_CHALLENGE, None)
    if not challenge:
        return JsonResponse({"error": "Start again: the passkey request had expired."}, status=400)
    try:
        body = json.loads(request.body)
        name = str(body.get("name") or "") if isinstance(body, dict) else ""
        credential = json.dumps(body.get("credential")) if isinstance(body, dict) else ""
        new = passkeys.check_registration(
            passkeys.relying_party(request), body=credential, challenge=bytes.fromhex(challenge)
        )
        added = services.add_passkey(actor=actor_of(request, membership), name=name, credential=new)
    except ValueError:
        return JsonResponse({"error": "The browser's answer is not JSON."}, status=400)
    except passkeys.PasskeyRefused as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except ValidationFailed as exc:
        return JsonResponse({"error": "Name: " + " ".join(exc.errors.get("name", []))}, status=400)
    except Conflict as exc:
        return JsonResponse({"error": exc.message}, status=409)
    # Registering asked the authenticator to verify its user: a second factor passed.
    mark_second_factor(request, "webauthn")
    return JsonResponse(
        {"name": added.passkey.name, "recovery_codes": added.recovery_codes}, status=201
    )


@require_POST
@staff_page
def policy(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        services.set_policy(
            actor=actor_of(request, membership),
            required_for=request.POST.get("required_for", ""),
        )
        messages.success(request, "The second-factor policy was changed.")
    except ValidationFailed as exc:
        messages.error(request, "Policy: " + " ".join(exc.errors.get("required_for", [])))
    return redirect("/settings/security/factors/#policy")
