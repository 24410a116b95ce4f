"""Password reset by e-mail (decision 0028).

A request names an account by username or e-mail address; the page answers the same whether
one exists or not, and the e-mail is sent in the background after the answer, so the answer
takes the same time too. The link carries a 256-bit random token; only its SHA-256 is stored,
it expires after OFFBOARD_PASSWORD_RESET_MINUTES, and it works once. Setting the new password
ends every session of the member.
"""

import datetime as dt
import hashlib
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string

from offboard.accounts.models import User
from offboard.accounts.selectors import membership_for
from offboard.core import clock
from offboard.core.actor import VisitorActor
from offboard.core.errors import ValidationFailed
from offboard.ledger.recorder import record_event
from offboard.security import counters
from offboard.security.models import MemberSession, PasswordResetToken
from offboard.security.services import end_sessions_of

log = logging.getLogger(__name__)

RESET_PATH = "/password-reset/{token}/"


class InvalidResetLink(Exception):
    """A used, expired or unknown token: the page says the link is no longer valid."""


@dataclass(frozen=True)
class Visitor:
    ip: str | None
    user_agent: str | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def ip_allowed(ip: str | None) -> bool:
    """Count one reset request from this address; False past the hourly limit."""
    limit = settings.OFFBOARD_PASSWORD_RESET_PER_IP_HOURLY
    return limit <= 0 or counters.hit(f"reset-ip:{ip or 'unknown'}") <= limit


def _accounts_named(identifier: str) -> list[User]:
    """Active users whose username is `identifier` or whose e-mail address it is."""
    if not identifier:
        return []
    named = Q(username=identifier)
    if "@" in identifier:
        named |= Q(email__iexact=identifier)
    return list(User.objects.filter(named, is_active=True).order_by("pk"))


@transaction.atomic
def request_password_reset(
    *, identifier: str, visitor: Visitor, base_url: str
) -> list[EmailMessage]:
    """Issue a reset link to each active member the identifier names (none: nothing happens,
    and nothing says so). The messages to send (`send_in_background`), after the commit."""
    identifier = (identifier or "").strip()[:254]
    limit = settings.OFFBOARD_PASSWORD_RESET_PER_ADDRESS_HOURLY
    if limit > 0 and counters.hit(f"reset-for:{_digest(identifier.lower())}") > limit:
        log.warning("Password reset requests for one address passed %s this hour", limit)
        return []
    messages = []
    now = clock.now()
    minutes = settings.OFFBOARD_PASSWORD_RESET_MINUTES
    for user in _accounts_named(identifier):
        membership = membership_for(user)
        if membership is None or not user.email:
            continue  # nowhere to send it, and no organization to record it in
        token = secrets.token_urlsafe(32)  # 256 bits
        issued = PasswordResetToken.objects.create(
            user=user,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + dt.timedelta(minutes=minutes),
            requested_ip=visitor.ip or "",
        )
        record_event(
            actor=_resetter(membership, user, visitor),
            type="member.password_reset_requested",
            data={
                "user_id": user.pk,
                "username": user.username,
                "reset_id": issued.pk,
                "expires_at": issued.expires_at,
            },
        )
        link = base_url.rstrip("/") + RESET_PATH.format(token=token)
        body = render_to_string(
            "security/password_reset_email.txt",
            {"user": user, "link": link, "minutes": minutes, "ip": visitor.ip},
        )
        messages.append(
            EmailMessage(
                subject="Reset your Offboard password",
                body=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[user.email],
            )
        )
    return messages


def _send(messages: list[EmailMessage]) -> None:
    for message in messages:
        try:
            message.send()
        except Exception as exc:
            # A mail server's failure must not reach the page (it would tell that the account
            # exists). The message carries the link: log the kind of failure only.
            log.warning("Password reset e-mail not sent (%s)", type(exc).__name__)


def send_in_background(messages: list[EmailMessage]) -> threading.Thread | None:
    """Send after the answer has gone (OFFBOARD_PASSWORD_RESET_SEND=thread, the default), so
    that an address with an account is answered as fast as one without; `inline` sends before
    answering."""
    if settings.OFFBOARD_PASSWORD_RESET_SEND == "inline":
        _send(messages)
        return None
    thread = threading.Thread(target=_send, args=(messages,), name="password-reset-mail")
    thread.daemon = True
    thread.start()
    return thread


def _token(token: str, *, lock: bool = False) -> PasswordResetToken:
    qs = PasswordResetToken.objects.select_related("user")
    if lock:
        qs = qs.select_for_update()
    found = qs.filter(token_hash=hash_token(token or "")).first()
    if found is None or found.used_at is not None or found.expires_at <= clock.now():
        raise InvalidResetLink()
    if not found.user.is_active:
        raise InvalidResetLink()
    return found


def check_reset_link(token: str) -> User:
    """The member a live link is for; InvalidResetLink otherwise."""
    return _token(token).user


@transaction.atomic
def reset_password(*, token: str, password: str, visitor: Visitor) -> User:
    """Set a new password through a live link: the link and any other of the member's links
    stop working, every session of the member ends, and `member.password_reset` is recorded."""
    issued = _token(token, lock=True)
    user = User.objects.select_for_update().get(pk=issued.user_id)
    try:
        validate_password(password or "", user)
    except DjangoValidationError as exc:
        raise ValidationFailed({"password": list(exc.messages)}) from None
    now = clock.now()
    user.set_password(password)
    user.save(update_fields=["password"])
    PasswordResetToken.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
    ended = end_sessions_of(user=user, reason=MemberSession.EndReason.PASSWORD_RESET)
    membership = membership_for(user)
    if membership is not None:
        record_event(
            actor=_resetter(membership, user, visitor),
            type="member.password_reset",
            data={
                "user_id": user.pk,
                "username": user.username,
                "reset_id": issued.pk,
                "sessions_ended": ended,
            },
        )
    return user


def _resetter(membership: Any, user: Any, visitor: Any) -> VisitorActor:
    """Who asks for or uses a reset link: not signed in, so a visitor acting for the member."""
    return VisitorActor(
        org=membership.org,
        purpose="password-reset",
        for_user_id=user.pk,
        username=user.username,
        ip=visitor.ip,
        user_agent=visitor.user_agent,
    )
