"""Passkeys (WebAuthn) through Duo's py_webauthn: the options a browser is given and the check
of what it answers. The relying party is `OFFBOARD_WEBAUTHN_RP_ID` and
`OFFBOARD_WEBAUTHN_ORIGIN`; unset, they follow `OFFBOARD_BASE_URL`, else the address the
request came to (the browser itself binds a passkey to the page's origin)."""

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from offboard.mfa.models import Passkey

RP_NAME = "Offboard"
TIMEOUT_MS = 120_000


class PasskeyRefused(Exception):
    """What the browser answered does not prove the passkey: the message says why, plainly."""


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str


def relying_party(request: HttpRequest) -> RelyingParty:
    configured_id = getattr(settings, "OFFBOARD_WEBAUTHN_RP_ID", "")
    configured_origin = getattr(settings, "OFFBOARD_WEBAUTHN_ORIGIN", "")
    origin = configured_origin or f"{request.scheme}://{request.get_host()}"
    rp_id = configured_id or (urlsplit(origin).hostname or "")
    return RelyingParty(id=rp_id, origin=origin.rstrip("/"))


def _descriptors(passkeys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    out = []
    for p in passkeys:
        transports = []
        for t in p.transports or []:
            try:
                transports.append(AuthenticatorTransport(t))
            except ValueError:
                continue
        out.append(
            PublicKeyCredentialDescriptor(
                id=base64url_to_bytes(p.credential_id), transports=transports or None
            )
        )
    return out


def registration_options(
    rp: RelyingParty,
    *,
    user_handle: bytes,
    username: str,
    display_name: str,
    existing: list[Passkey],
) -> tuple[str, bytes]:
    """(options JSON for navigator.credentials.create, the challenge to keep)."""
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=RP_NAME,
        user_id=user_handle,
        user_name=username,
        user_display_name=display_name or username,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json(options), options.challenge


def authentication_options(rp: RelyingParty, *, allowed: list[Passkey]) -> tuple[str, bytes]:
    """Options for navigator.credentials.get: the member's passkeys after a password, none
    (any discoverable passkey of this site) for a passwordless sign-in."""
    options = generate_authentication_options(
        rp_id=rp.id,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(allowed),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options), options.challenge


@dataclass(frozen=True)
class NewPasskey:
    credential_id: str
    public_key: bytes
    sign_count: int
    transports: list[str]
    aaguid: str


def _parse(body: str) -> dict[str, Any]:
    try:
        credential = json.loads(body)
    except ValueError:
        raise PasskeyRefused("The browser's answer is not JSON.") from None
    if not isinstance(credential, dict) or not isinstance(credential.get("id"), str):
        raise PasskeyRefused("The browser's answer names no credential.")
    return credential


def check_registration(rp: RelyingParty, *, body: str, challenge: bytes) -> NewPasskey:
    credential = _parse(body)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise PasskeyRefused(f"The passkey could not be registered: {exc}") from None
    raw_transports = credential.get("response", {}).get("transports") or []
    transports = [t for t in raw_transports if isinstance(t, str)][:10]
    return NewPasskey(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=transports,
        aaguid=str(verified.aaguid),
    )


def credential_id_of(body: str) -> tuple[dict[str, Any], str]:
    credential = _parse(body)
    return credential, credential["id"]


def check_assertion(
    rp: RelyingParty, *, credential: dict[str, Any], challenge: bytes, passkey: Passkey
) -> int:
    """The new sign count, once the signature, challenge, origin, user verification and the
    sign count (it must grow when either is non-zero: a cloned authenticator) all check."""
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise PasskeyRefused(f"The passkey was not accepted: {exc}") from None
    return int(verified.new_sign_count)
