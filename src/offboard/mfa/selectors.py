"""Read queries for second factors and the organization's policy."""

import datetime as dt
from dataclasses import dataclass

from offboard.accounts.models import Organization, User
from offboard.core import clock
from offboard.core.errors import NotFound
from offboard.mfa.models import FailedSecondFactor, MfaPolicy, Passkey, RecoveryCode, TotpDevice

# A member's failed second-factor attempts counted over this window; past the limit the
# second step refuses every code until the window has moved on.
FAILURE_WINDOW = dt.timedelta(minutes=15)
FAILURE_LIMIT = 10


@dataclass(frozen=True)
class Factors:
    """What a member has enrolled."""

    totp: TotpDevice | None  # confirmed only
    passkeys: list[Passkey]
    recovery_codes_left: int

    @property
    def any(self) -> bool:
        return self.totp is not None or bool(self.passkeys)


def totp_device(user: User) -> TotpDevice | None:
    return TotpDevice.objects.filter(user=user).first()


def factors_of(user: User) -> Factors:
    device = totp_device(user)
    return Factors(
        totp=device if device is not None and device.confirmed_at is not None else None,
        passkeys=list(Passkey.objects.filter(user=user)),
        recovery_codes_left=RecoveryCode.objects.filter(user=user, used_at__isnull=True).count(),
    )


def has_confirmed_factor(user: User) -> bool:
    return (
        TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()
        or Passkey.objects.filter(user=user).exists()
    )


def get_passkey(user: User, passkey_id: object) -> Passkey:
    """One of the member's own passkeys; anyone else's is not found."""
    try:
        return Passkey.objects.get(user=user, pk=int(str(passkey_id)))
    except (Passkey.DoesNotExist, ValueError):
        raise NotFound("No such passkey among yours.") from None


def passkey_by_credential_id(credential_id: str) -> Passkey | None:
    return Passkey.objects.select_related("user").filter(credential_id=credential_id).first()


def required_for(org: Organization) -> str:
    policy = MfaPolicy.objects.filter(org=org).first()
    return policy.required_for if policy else MfaPolicy.RequiredFor.NOBODY


def recent_failures(user: User) -> int:
    since = clock.now() - FAILURE_WINDOW
    return FailedSecondFactor.objects.filter(user=user, at__gte=since).count()
