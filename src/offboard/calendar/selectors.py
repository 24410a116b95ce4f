"""Reading calendar feeds: the live feed a token opens, a member's live feed, and what a feed
shows — in a fixed number of queries whatever the number of cases."""

import hashlib
import re

from django.db.models import F, QuerySet

from offboard.accounts.models import Organization, User
from offboard.calendar.models import CalendarFeed
from offboard.cases.models import OffboardingCase, Step

OPEN_STATES = (
    OffboardingCase.State.DRAFT,
    OffboardingCase.State.ACTIVE,
    OffboardingCase.State.CLOSING,
)
OUTSTANDING = (Step.Status.PENDING, Step.Status.IN_PROGRESS)
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_for_token(token: str) -> CalendarFeed | None:
    """The live feed a token opens, with its member and organization; None for a token that
    is malformed, unknown or revoked, or whose member is deactivated or no longer in the
    feed's organization. One query: an indexed equality on the token's SHA-256."""
    if not _TOKEN.match(token or ""):
        return None
    return (
        CalendarFeed.objects.select_related("org", "user")
        .filter(
            token_hash=token_hash(token),
            revoked_at__isnull=True,
            user__is_active=True,
            user__memberships__org=F("org"),
        )
        .first()
    )


def live_feed(org: Organization, user: User) -> CalendarFeed | None:
    """The member's feed in force, if any (at most one: a database constraint)."""
    return CalendarFeed.objects.filter(org=org, user=user, revoked_at__isnull=True).first()


def steps_due(feed: CalendarFeed) -> QuerySet[Step]:
    """Outstanding steps the feed's member owns, on open cases of the feed's organization."""
    return (
        Step.objects.filter(
            org=feed.org_id,
            owner=feed.user_id,
            case__org=feed.org_id,
            case__state__in=OPEN_STATES,
            status__in=OUTSTANDING,
        )
        .select_related("case", "case__client")
        .order_by("due_date", "case__ref", "position", "id")
    )


def cases_owned(feed: CalendarFeed) -> QuerySet[OffboardingCase]:
    """Open cases of the feed's organization that its member owns."""
    return (
        OffboardingCase.objects.filter(org=feed.org_id, owner=feed.user_id, state__in=OPEN_STATES)
        .select_related("client")
        .order_by("effective_end_date", "ref", "id")
    )
