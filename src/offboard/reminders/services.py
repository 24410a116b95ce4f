"""What a member receives: change it on Settings, or stop one kind of email from the link in
it. One function per action, one transaction, one ledger event of the organization
(`reminder_preferences.updated`, with the old and new values)."""

from typing import Any

from django.db import transaction

from offboard.accounts.models import Membership
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import NotFound, ValidationFailed
from offboard.ledger.recorder import record_event
from offboard.reminders.models import CHANNELS, Preference


def _values(pref: Preference) -> dict[str, bool]:
    return {c: bool(getattr(pref, c)) for c in CHANNELS}


def _save(actor: Actor, membership: Membership, changes: dict[str, bool], how: str) -> Preference:
    if membership.org_id != actor.org.pk or membership.user_id != actor.user.pk:
        raise NotFound("No such member.")  # a member sets their own preferences only
    unknown = sorted(set(changes) - set(CHANNELS))
    if unknown:
        raise ValidationFailed({k: ["not a kind of reminder"] for k in unknown})
    # Two changes at once for one member queue on their membership row.
    Membership.objects.select_for_update(no_key=True).filter(pk=membership.pk).first()
    pref = Preference.objects.filter(org=actor.org, user_id=membership.user_id).first()
    if pref is None:
        pref = Preference(org=actor.org, user_id=membership.user_id, updated_at=clock.now())
    old = _values(pref)
    for channel, value in changes.items():
        setattr(pref, channel, bool(value))
    new = _values(pref)
    if new == old and pref.pk is not None:
        return pref  # nothing changed: nothing to record
    pref.updated_at = clock.now()
    pref.save()
    record_event(
        actor=actor,
        type="reminder_preferences.updated",
        data={
            "user_id": membership.user_id,
            "username": actor.user.username,
            "how": how,
            "receives": new,
            "old": {c: old[c] for c in CHANNELS if old[c] != new[c]},
        },
    )
    return pref


@transaction.atomic
def update_preferences(
    *, actor: Actor, membership: Membership, values: dict[str, Any]
) -> Preference:
    """Set which reminder emails the member receives (every channel given, on or off)."""
    return _save(actor, membership, {c: bool(values.get(c)) for c in CHANNELS}, "settings")


@transaction.atomic
def unsubscribe(*, actor: Actor, membership: Membership, channel: str) -> Preference:
    """Stop one kind of email, from the signed link in it (no login: `actor` is the member,
    auth method `unsubscribe_link`)."""
    if channel not in CHANNELS:
        raise ValidationFailed({"channel": [f"{channel!r} is not a kind of reminder"]})
    return _save(actor, membership, {channel: False}, "unsubscribe_link")
