"""Sign-ins, sign-outs and failed sign-ins recorded in the member's organization's log; the
member's sessions and their ending (decision 0028).

A session is known by the SHA-256 of its key; the key itself is kept only sealed
(offboard.core.sealing), and opened to delete the session from Django's session store when
someone signs it out from elsewhere. Password reset is in `offboard.security.reset`.
"""

import hashlib
import logging
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import transaction

from offboard.accounts.models import User
from offboard.accounts.selectors import membership_for
from offboard.core import clock, sealing
from offboard.core.actor import Actor, VisitorActor
from offboard.core.errors import NotFound
from offboard.core.permissions import can
from offboard.ledger.recorder import record_event
from offboard.security import counters
from offboard.security.devices import device_label
from offboard.security.models import MemberSession

log = logging.getLogger(__name__)

# At most this many `member.sign_in_failed` events per member per hour; the next failure is
# recorded once as `member.sign_in_failures_capped`, and later ones only counted, so that an
# attacker cannot flood an organization's log by guessing passwords.
FAILED_SIGN_IN_EVENTS_PER_HOUR = 20

Reason = MemberSession.EndReason


def hash_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def _seal_context(key_hash: str) -> str:
    return f"member_session:{key_hash}"


def _session_store() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def _delete_from_store(session: MemberSession) -> None:
    """Delete the session from Django's session store: that browser is signed out at its next
    request. If the sealed key cannot be opened (its key file lost), the middleware's
    once-a-minute check still ends it (offboard.security.middleware)."""
    try:
        key = sealing.unseal(session.sealed_key, context=_seal_context(session.key_hash)).decode()
    except sealing.SealedValueUnavailable as exc:
        log.warning("Session %s: cannot open its sealed key (%s)", session.pk, exc)
        return
    _session_store()().delete(key)


def _end(sessions: Iterable[MemberSession], *, reason: str, by: User | None) -> list[MemberSession]:
    now = clock.now()
    ended = []
    for session in sessions:
        _delete_from_store(session)
        session.ended_at = now
        session.end_reason = reason
        session.ended_by = by
        session.save(update_fields=["ended_at", "end_reason", "ended_by"])
        ended.append(session)
    return ended


def _summary(session: MemberSession) -> dict[str, Any]:
    return {"id": session.pk, "device": session.device, "ip": session.ip}


def _live(user: User) -> Any:
    return MemberSession.objects.select_for_update().filter(user=user, ended_at__isnull=True)


def end_sessions_of(
    *, user: User, reason: str, by: User | None = None, keep_session_key: str | None = None
) -> list[dict[str, Any]]:
    """End every live session of `user` (but the one of `keep_session_key`), inside the
    caller's transaction; the caller's event says so (a deactivation, a password change). The
    sessions ended, as events name them."""
    sessions = _live(user).order_by("pk")
    if keep_session_key:
        sessions = sessions.exclude(key_hash=hash_key(keep_session_key))
    return [_summary(s) for s in _end(sessions, reason=reason, by=by)]


@transaction.atomic
def end_sessions(
    *, actor: Actor, sessions: list[MemberSession], current_session_key: str | None = None
) -> list[MemberSession]:
    """Sign sessions out: a member's own (any role) or, for an admin, any member's of the
    organization. One `member.session_ended` event per member and action; another
    organization's session is not found."""
    if not sessions:
        return []
    user_ids = {s.user_id for s in sessions}
    for session in sessions:
        if session.org_id != actor.org.pk:
            raise NotFound("No such session.")
        if session.user_id != actor.user.pk and not can(actor, "org.manage_members"):
            raise NotFound("No such session.")
    if len(user_ids) != 1:
        raise ValueError("end_sessions ends the sessions of one member at a time")
    own = user_ids == {actor.user.pk}
    keep = hash_key(current_session_key) if current_session_key else None
    locked = _live(sessions[0].user).filter(pk__in=[s.pk for s in sessions]).order_by("pk")
    targets = [s for s in locked if s.key_hash != keep]
    if not targets:
        return []
    ended = _end(
        targets, reason=Reason.ENDED_BY_MEMBER if own else Reason.ENDED_BY_ADMIN, by=actor.user
    )
    member = ended[0].user
    record_event(
        actor=actor,
        type="member.session_ended",
        data={
            "user_id": member.pk,
            "username": member.username,
            "end_reason": ended[0].end_reason,
            "sessions": [_summary(s) for s in ended],
        },
    )
    return ended


# -- recording sign-ins (called by the auth signal listeners in offboard.security.signals) --


def _agent(user_agent: str | None) -> str:
    return (user_agent or "")[:300]


@transaction.atomic
def record_sign_in(
    *,
    user: User,
    session_key: str,
    ip: str | None,
    user_agent: str | None,
    how: dict[str, Any],
    replaced_session_key: str | None = None,
) -> MemberSession | None:
    """A member signed in: their session is kept (hashed, sealed) and `member.signed_in` is
    recorded in their organization's log. `how`: the method, second factor and details
    `complete_sign_in` gave (a plain `login()` is a password sign-in)."""
    membership = membership_for(user)
    if membership is None:
        log.warning("User %s signed in without a membership: nothing recorded", user.pk)
        return None
    method = str(how.get("method") or "password")
    factor = how.get("second_factor")
    replaced: list[dict[str, Any]] = []
    if replaced_session_key and replaced_session_key != session_key:
        old = _live(user).filter(key_hash=hash_key(replaced_session_key))
        replaced = [_summary(s) for s in _end(old, reason=Reason.REPLACED, by=user)]
    key_hash = hash_key(session_key)
    now = clock.now()
    session = MemberSession.objects.create(
        org=membership.org,
        user=user,
        key_hash=key_hash,
        sealed_key=sealing.seal(session_key.encode(), context=_seal_context(key_hash)),
        ip=ip or "",
        user_agent=_agent(user_agent),
        device=device_label(user_agent),
        method=method[:30],
        created_at=now,
        last_seen_at=now,
    )
    details = {k: v for k, v in how.items() if k not in ("method", "second_factor")}
    actor = Actor.from_membership(
        membership,
        auth_method=method,
        ip=ip,
        user_agent=_agent(user_agent) or None,
        second_factor=factor,
    )
    record_event(
        actor=actor,
        type="member.signed_in",
        data={
            "user_id": user.pk,
            "username": user.username,
            "method": method,
            "second_factor": factor,
            "session": _summary(session),
            **({"replaced_sessions": replaced} if replaced else {}),
            **({"details": details} if details else {}),
        },
    )
    return session


@transaction.atomic
def record_sign_out(
    *, user: User, session_key: str | None, ip: str | None, user_agent: str | None
) -> None:
    """A member signed out: their session ends and `member.signed_out` is recorded."""
    membership = membership_for(user)
    if membership is None:
        return
    ended: list[MemberSession] = []
    if session_key:
        ended = _end(
            _live(user).filter(key_hash=hash_key(session_key)), reason=Reason.SIGNED_OUT, by=user
        )
    actor = Actor.from_membership(
        membership, auth_method="session", ip=ip, user_agent=_agent(user_agent) or None
    )
    record_event(
        actor=actor,
        type="member.signed_out",
        data={
            "user_id": user.pk,
            "username": user.username,
            "session": _summary(ended[0]) if ended else None,
        },
    )


def _username_digest(username: str) -> str:
    return hashlib.sha256(username.encode()).hexdigest()[:12]


@transaction.atomic
def record_failed_sign_in(*, username: str, ip: str | None, user_agent: str | None) -> None:
    """A sign-in failed. For an existing member, `member.sign_in_failed` goes to their
    organization's log (at most FAILED_SIGN_IN_EVENTS_PER_HOUR an hour, then one
    `member.sign_in_failures_capped`). For an unknown username nothing is recorded in any log:
    a warning line names the address and a digest of what was typed (people type their
    password into the username field), never the text itself."""
    username = (username or "")[:150]
    user = User.objects.filter(username=username).first() if username else None
    membership = membership_for(user) if user is not None else None
    if user is None or membership is None:
        log.warning(
            "Failed sign-in for an unknown username (sha256 %s…) from %s",
            _username_digest(username),
            ip or "an unknown address",
        )
        return
    count = counters.hit(f"sign-in-failed:{user.pk}")
    if count > FAILED_SIGN_IN_EVENTS_PER_HOUR + 1:
        return
    actor = VisitorActor(
        org=membership.org,
        purpose="sign-in",
        for_user_id=user.pk,
        username=username,
        ip=ip,
        user_agent=_agent(user_agent) or None,
    )
    if count == FAILED_SIGN_IN_EVENTS_PER_HOUR + 1:
        record_event(
            actor=actor,
            type="member.sign_in_failures_capped",
            data={
                "user_id": user.pk,
                "username": username,
                "limit_per_hour": FAILED_SIGN_IN_EVENTS_PER_HOUR,
                "note": "Further failed sign-ins for this member this hour are counted, "
                "not recorded one by one.",
            },
        )
        return
    record_event(
        actor=actor,
        type="member.sign_in_failed",
        data={"user_id": user.pk, "username": username, "failures_this_hour": count},
    )


# -- the middleware's bookkeeping --


def touch(session_key: str) -> bool:
    """Note that the session was used now (one UPDATE). False if it was ended meanwhile: the
    caller signs that browser out."""
    key_hash = hash_key(session_key)
    updated = MemberSession.objects.filter(key_hash=key_hash, ended_at__isnull=True).update(
        last_seen_at=clock.now()
    )
    if updated:
        return True
    return not MemberSession.objects.filter(key_hash=key_hash).exists()


def rekey(old_session_key: str, new_session_key: str) -> None:
    """Django gave the session a new key (`update_session_auth_hash` after a password change
    cycles it): follow it, so the session stays listed as the same one."""
    new_hash = hash_key(new_session_key)
    MemberSession.objects.filter(key_hash=hash_key(old_session_key), ended_at__isnull=True).update(
        key_hash=new_hash,
        sealed_key=sealing.seal(new_session_key.encode(), context=_seal_context(new_hash)),
    )
