"""Calendar feeds: create (replacing the member's previous one) and revoke. One function per
action, one transaction, one ledger event of the organization. The feed's URL carries its
token: it is returned once and only the token's SHA-256 is stored."""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from offboard.accounts.models import Membership
from offboard.calendar.models import CalendarFeed
from offboard.calendar.selectors import token_hash
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, NotFound, ValidationFailed
from offboard.core.permissions import require
from offboard.ledger.recorder import record_event

FEED_PATH = "/calendar/{token}.ics"


@dataclass(frozen=True)
class IssuedFeed:
    feed: CalendarFeed
    url: str  # carries the token: shown once, never stored
    replaced: tuple[int, ...] = ()  # the member's previous feed, revoked by this one


def base_url_for(request_base: str) -> str:
    """Where feed URLs point: `OFFBOARD_BASE_URL` when set (behind a proxy the address a
    request came to can be an internal one), else that address."""
    return str(settings.OFFBOARD_BASE_URL or request_base)


def feed_url(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + FEED_PATH.format(token=token)


def _member(actor: Actor, membership: Membership) -> Membership:
    """The member whose feed it is, locked: themselves, or anyone of the organization for an
    admin. Another organization's member is not found."""
    if membership.org_id != actor.org.pk:
        raise NotFound("No such member.")
    if membership.user_id != actor.user.pk:
        require(actor, "org.manage_members")
    # Concurrent creations for one member queue here rather than trip the one-live constraint.
    # The membership's row only (not its user's), and without blocking inserts that refer to it.
    return (
        Membership.objects.select_for_update(of=("self",), no_key=True)
        .select_related("user")
        .get(pk=membership.pk)
    )


def _who(membership: Membership) -> dict[str, object]:
    return {"user_id": membership.user_id, "username": membership.user.username}


@transaction.atomic
def create_calendar_feed(*, actor: Actor, membership: Membership, base_url: str) -> IssuedFeed:
    """A new secret feed URL for the member; their previous feed, if any, stops working."""
    if not base_url.startswith(("https://", "http://")):
        raise ValidationFailed({"base_url": [f"'{base_url}' is not an http(s) URL"]})
    member = _member(actor, membership)
    if not member.user.is_active:
        raise Conflict(
            f"{member.user.username} is deactivated: a calendar feed would not work. "
            "Reactivate them first.",
            code="member_inactive",
        )
    now = clock.now()
    previous = CalendarFeed.objects.select_for_update().filter(
        org=actor.org, user_id=member.user_id, revoked_at__isnull=True
    )
    replaced = list(previous.values_list("pk", flat=True))
    previous.update(revoked_at=now, revoked_by=actor.user)
    token = secrets.token_urlsafe(32)
    feed = CalendarFeed.objects.create(
        org=actor.org,
        user_id=member.user_id,
        token_hash=token_hash(token),
        created_by=actor.user,
        created_at=now,
    )
    record_event(
        actor=actor,
        type="calendar_feed.created",
        data={"feed_id": feed.pk, **_who(member), "replaced_feed_ids": replaced},
    )
    return IssuedFeed(feed=feed, url=feed_url(base_url, token), replaced=tuple(replaced))


@transaction.atomic
def revoke_calendar_feed(*, actor: Actor, membership: Membership) -> CalendarFeed:
    """The member's feed stops working at once (a calendar app keeps what it last read)."""
    member = _member(actor, membership)
    feed = (
        CalendarFeed.objects.select_for_update()
        .filter(org=actor.org, user_id=member.user_id, revoked_at__isnull=True)
        .first()
    )
    if feed is None:
        raise Conflict(
            f"{member.user.username} has no calendar feed to revoke: none is in use.",
            code="no_calendar_feed",
        )
    feed.revoked_at = clock.now()
    feed.revoked_by = actor.user
    feed.save(update_fields=["revoked_at", "revoked_by"])
    record_event(
        actor=actor,
        type="calendar_feed.revoked",
        data={"feed_id": feed.pk, **_who(member)},
    )
    return feed


def note_use(feed: CalendarFeed) -> None:
    """Bookkeeping, not an event: when a calendar app last read the feed (once a minute)."""
    now = clock.now()
    if feed.last_used_at is None or (now - feed.last_used_at).total_seconds() > 60:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_used_at=now)
        feed.last_used_at = now
