"""The second-factor routes, spliced into the staff site's (`web:` names)."""

from django.urls import path

from offboard.mfa import enrolment_views, views

FACTORS = "settings/security/factors/"

urlpatterns = [
    path("login/verify/", views.verify, name="login-verify"),
    path(
        "login/verify/passkey/options",
        views.verify_passkey_options,
        name="login-verify-passkey-options",
    ),
    path("login/verify/passkey", views.verify_passkey, name="login-verify-passkey"),
    path("login/passkey/options", views.passkey_login_options, name="login-passkey-options"),
    path("login/passkey", views.passkey_login, name="login-passkey"),
    path(FACTORS, enrolment_views.factors_page, name="security-factors"),
    path(f"{FACTORS}totp/start", enrolment_views.totp_start, name="totp-start"),
    path(f"{FACTORS}totp/confirm", enrolment_views.totp_confirm, name="totp-confirm"),
    path(f"{FACTORS}totp/remove", enrolment_views.totp_remove, name="totp-remove"),
    path(f"{FACTORS}passkeys/options", enrolment_views.passkey_options, name="passkey-options"),
    path(f"{FACTORS}passkeys/", enrolment_views.passkey_register, name="passkey-register"),
    path(f"{FACTORS}passkeys/remove", enrolment_views.passkey_remove, name="passkey-remove"),
    path(f"{FACTORS}recovery-codes", enrolment_views.recovery_codes, name="recovery-codes"),
    path(f"{FACTORS}policy", enrolment_views.policy, name="mfa-policy"),
]
