"""Enrolling, using and removing second factors, and setting the organization's policy. One
function per action, one transaction, one ledger event; no event ever holds a secret (a seed,
a code, a public key)."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import pyotp
from django.db import transaction

from offboard.accounts.models import User
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from offboard.core.permissions import require
from offboard.core.sealing import seal, unseal
from offboard.core.validation import Errors
from offboard.ledger.recorder import record_event
from offboard.mfa import selectors
from offboard.mfa.models import (
    FailedSecondFactor,
    MfaPolicy,
    Passkey,
    RecoveryCode,
    TotpDevice,
    WebAuthnUser,
)
from offboard.mfa.passkeys import NewPasskey

TOTP_STEP = 30
TOTP_WINDOW = 1  # steps either side of now: a clock a little off, a code typed as it turned
RECOVERY_CODES = 10  # of 24 characters from 31: 119 bits each (ASVS V2.6.2 asks for 112)
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
FACTOR_NAMES = {
    "totp": "Authenticator app",
    "webauthn": "Passkey",
    "recovery_code": "Recovery code",
}


def _member_data(user: User) -> dict[str, Any]:
    return {"member_id": user.pk, "username": user.username}


# --- TOTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    device: TotpDevice
    secret: str  # base32: shown to its owner while the enrolment is unconfirmed, never logged

    def provisioning_uri(self, issuer: str) -> str:
        return pyotp.TOTP(self.secret).provisioning_uri(
            name=self.device.user.username, issuer_name=issuer
        )


def pending_totp(user: User) -> TotpEnrolment | None:
    """The member's unconfirmed authenticator app, with its seed, to show again."""
    device = selectors.totp_device(user)
    if device is None or device.confirmed_at is not None:
        return None
    secret = unseal(device.secret_sealed, context=device.seal_context).decode()
    return TotpEnrolment(device=device, secret=secret)


@transaction.atomic
def start_totp_enrolment(*, actor: Actor) -> TotpEnrolment:
    """A new seed for an authenticator app, inactive until confirmed with a code. Starting
    again replaces an unconfirmed one; a confirmed one must be removed first."""
    user = User.objects.select_for_update().get(pk=actor.user.pk)
    device = TotpDevice.objects.filter(user=user).first()
    if device is not None and device.confirmed_at is not None:
        raise Conflict(
            "You already have an authenticator app. Remove it first to set up another one.",
            code="totp_exists",
        )
    if device is not None:
        device.delete()
    secret = pyotp.random_base32()  # 160 bits
    device = TotpDevice(user=user, created_at=clock.now(), secret_sealed="")
    device.secret_sealed = seal(secret.encode(), context=device.seal_context)
    device.save()
    return TotpEnrolment(device=device, secret=secret)


def _matching_step(device: TotpDevice, code: str) -> int | None:
    """The time step `code` belongs to within the window, if any and not used before."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(unseal(device.secret_sealed, context=device.seal_context).decode())
    now = int(clock.now().timestamp()) // TOTP_STEP
    for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if device.last_used_step is not None and step <= device.last_used_step:
                return None  # replayed, or older than a code already used
            return step
    return None


def _use_totp(device: TotpDevice, code: str) -> bool:
    step = _matching_step(device, code)
    if step is None:
        return False
    device.last_used_step = step
    device.last_used_at = clock.now()
    device.save(update_fields=["last_used_step", "last_used_at"])
    return True


@transaction.atomic
def check_totp(*, user: User, code: str) -> bool:
    """The sign-in's second step: the code is current and was never used before."""
    device = (
        TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
    )
    return device is not None and _use_totp(device, code)


@dataclass(frozen=True)
class Enrolled:
    recovery_codes: list[str]  # new codes to show once; empty when the member had some


def _issue_recovery_codes(user: User) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    now = clock.now()
    codes = [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(6)) for _ in range(4))
        for _ in range(RECOVERY_CODES)
    ]
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, code_hash=_code_hash(c), created_at=now) for c in codes]
    )
    return codes


def _first_codes(user: User) -> list[str]:
    """Recovery codes with a member's first factor; a member who has some keeps them."""
    if RecoveryCode.objects.filter(user=user, used_at__isnull=True).exists():
        return []
    return _issue_recovery_codes(user)


@transaction.atomic
def confirm_totp(*, actor: Actor, code: str) -> Enrolled:
    """Activate the authenticator app once it shows a current code."""
    device = TotpDevice.objects.select_for_update().filter(user=actor.user).first()
    if device is None or device.confirmed_at is not None:
        raise Conflict(
            "There is no authenticator app waiting for confirmation: set one up first.",
            code="no_pending_totp",
        )
    if not _use_totp(device, code):
        raise ValidationFailed(
            {"code": ["that code is not the current one: check your device's clock and try again"]}
        )
    device.confirmed_at = clock.now()
    device.save(update_fields=["confirmed_at"])
    codes = _first_codes(actor.user)
    record_event(
        actor=actor,
        type="member.factor_enrolled",
        data={
            **_member_data(actor.user),
            "factor": "totp",
            "name": "Authenticator app",
            "recovery_codes_issued": len(codes),
        },
    )
    return Enrolled(recovery_codes=codes)


# --- Recovery codes ------------------------------------------------------------------------


def _code_hash(code: str) -> str:
    normalized = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normalized.encode()).hexdigest()


@transaction.atomic
def regenerate_recovery_codes(*, actor: Actor) -> list[str]:
    """Ten new codes, shown once; the old ones stop working."""
    if not selectors.has_confirmed_factor(actor.user):
        raise Conflict(
            "Recovery codes back up a second factor: set up an authenticator app or a passkey "
            "first.",
            code="no_factor",
        )
    codes = _issue_recovery_codes(actor.user)
    record_event(
        actor=actor,
        type="member.recovery_codes_regenerated",
        data={**_member_data(actor.user), "name": "Recovery codes", "count": len(codes)},
    )
    return codes


@transaction.atomic
def use_recovery_code(*, actor: Actor, code: str) -> bool:
    """The sign-in's second step with a recovery code: each works once."""
    row = (
        RecoveryCode.objects.select_for_update()
        .filter(user=actor.user, code_hash=_code_hash(code), used_at__isnull=True)
        .first()
    )
    if row is None:
        return False
    row.used_at = clock.now()
    row.save(update_fields=["used_at"])
    left = RecoveryCode.objects.filter(user=actor.user, used_at__isnull=True).count()
    record_event(
        actor=actor,
        type="member.recovery_code_used",
        data={**_member_data(actor.user), "name": "Recovery code", "recovery_codes_left": left},
    )
    return True


# --- Passkeys ------------------------------------------------------------------------------


def user_handle(user: User) -> bytes:
    """The member's WebAuthn user handle: 32 random bytes, made once."""
    row = WebAuthnUser.objects.filter(user=user).first()
    if row is None:
        row, _ = WebAuthnUser.objects.get_or_create(
            user=user, defaults={"handle": secrets.token_bytes(32)}
        )
    return bytes(row.handle)


@dataclass(frozen=True)
class PasskeyAdded:
    passkey: Passkey
    recovery_codes: list[str]


@transaction.atomic
def add_passkey(*, actor: Actor, name: str, credential: NewPasskey) -> PasskeyAdded:
    errors = Errors()
    name = errors.text("name", name or "Passkey", max_length=100)
    errors.raise_if_any()
    if Passkey.objects.filter(credential_id=credential.credential_id).exists():
        raise Conflict("This passkey is registered already.", code="passkey_exists")
    passkey = Passkey.objects.create(
        user=actor.user,
        credential_id=credential.credential_id,
        public_key=credential.public_key,
        sign_count=credential.sign_count,
        transports=credential.transports,
        name=name,
        aaguid=credential.aaguid,
        created_at=clock.now(),
    )
    codes = _first_codes(actor.user)
    record_event(
        actor=actor,
        type="member.factor_enrolled",
        data={
            **_member_data(actor.user),
            "factor": "webauthn",
            "factor_id": passkey.pk,
            "name": passkey.name,
            "recovery_codes_issued": len(codes),
        },
    )
    return PasskeyAdded(passkey=passkey, recovery_codes=codes)


@transaction.atomic
def passkey_used(*, passkey: Passkey, sign_count: int) -> Passkey:
    """Keep the authenticator's new sign count (the next must be higher, when non-zero)."""
    locked = Passkey.objects.select_for_update().get(pk=passkey.pk)
    if (sign_count or locked.sign_count) and sign_count <= locked.sign_count:
        raise Conflict(
            "This passkey's use counter went backwards: it may have been copied. Use another "
            "factor and remove this passkey.",
            code="passkey_counter",
        )
    locked.sign_count = sign_count
    locked.last_used_at = clock.now()
    locked.save(update_fields=["sign_count", "last_used_at"])
    return locked


# --- Removing factors ----------------------------------------------------------------------


def _drop_codes_if_no_factor(user: User) -> int:
    if selectors.has_confirmed_factor(user):
        return 0
    deleted, _ = RecoveryCode.objects.filter(user=user).delete()
    return deleted


@transaction.atomic
def remove_totp(*, actor: Actor) -> None:
    device = TotpDevice.objects.select_for_update().filter(user=actor.user).first()
    if device is None:
        raise Conflict("You have no authenticator app to remove.", code="no_totp")
    confirmed = device.confirmed_at is not None
    device.delete()
    if not confirmed:
        return  # an enrolment never finished: no factor was there, nothing to record
    dropped = _drop_codes_if_no_factor(actor.user)
    record_event(
        actor=actor,
        type="member.factor_removed",
        data={
            **_member_data(actor.user),
            "factor": "totp",
            "name": "Authenticator app",
            "recovery_codes_removed": dropped,
        },
    )


@transaction.atomic
def remove_passkey(*, actor: Actor, passkey: Passkey) -> None:
    if passkey.user_id != actor.user.pk:  # selectors.get_passkey scopes it; twice is cheap
        raise Conflict("That passkey is not yours.", code="not_yours")
    data = {
        **_member_data(actor.user),
        "factor": "webauthn",
        "factor_id": passkey.pk,
        "name": passkey.name,
    }
    passkey.delete()
    data["recovery_codes_removed"] = _drop_codes_if_no_factor(actor.user)
    record_event(actor=actor, type="member.factor_removed", data=data)


# --- Failures and the policy ---------------------------------------------------------------


@transaction.atomic
def record_second_factor_failure(*, actor: Actor, factor: str, reason: str, attempt: int) -> None:
    """A wrong code or passkey at the sign-in's second step, on the member's organization's
    record (the actor: whoever knew the member's password)."""
    FailedSecondFactor.objects.create(user=actor.user, at=clock.now())
    record_event(
        actor=actor,
        type="member.second_factor_failed",
        data={
            **_member_data(actor.user),
            "factor": factor,
            "name": FACTOR_NAMES.get(factor, factor),
            "reason": reason,
            "attempt": attempt,
        },
    )


@transaction.atomic
def set_policy(*, actor: Actor, required_for: str) -> MfaPolicy:
    require(actor, "mfa.manage")
    errors = Errors()
    errors.choice("required_for", required_for, MfaPolicy.RequiredFor.values)
    errors.raise_if_any()
    policy, _ = MfaPolicy.objects.select_for_update().get_or_create(
        org=actor.org, defaults={"changed_at": clock.now()}
    )
    old = policy.required_for
    if old == required_for:
        raise ValidationFailed({"required_for": ["that is the policy already"]})
    policy.required_for = required_for
    policy.changed_at = clock.now()
    policy.changed_by = actor.user
    policy.save()
    record_event(
        actor=actor,
        type="mfa.policy_changed",
        data={"required_for": required_for, "old": {"required_for": old}},
    )
    return policy


@transaction.atomic
def reset_member_factors(*, actor: Actor, membership: Any) -> dict[str, int]:
    """A member who lost every factor and every recovery code: an admin at the installation's
    command line removes them all, so the member can sign in with the password and set up new
    ones. Not offered on the web: a stolen admin session must not strip a colleague's factors."""
    require(actor, "mfa.manage")
    if actor.auth_method != "cli":
        raise PermissionDenied(
            "Second factors are reset at the installation's command line: "
            "offboard user reset-factors USERNAME."
        )
    if membership.org_id != actor.org.pk:
        raise NotFound("No such member in this organization.")
    user = User.objects.select_for_update().get(pk=membership.user_id)
    removed = {
        "totp": TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).count(),
        "passkeys": Passkey.objects.filter(user=user).count(),
        "recovery_codes": RecoveryCode.objects.filter(user=user, used_at__isnull=True).count(),
    }
    if not any(removed.values()):
        raise Conflict(f"{user.username} has no second factor to remove.", code="no_factor")
    TotpDevice.objects.filter(user=user).delete()
    Passkey.objects.filter(user=user).delete()
    RecoveryCode.objects.filter(user=user).delete()
    record_event(
        actor=actor,
        type="member.factor_removed",
        data={**_member_data(user), "factor": "all", "name": "All second factors", **removed},
    )
    return removed
