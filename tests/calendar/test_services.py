"""Creating and revoking a calendar feed: one transaction and one event each, the token kept
only as its SHA-256, one live feed per member, who may act on whose feed."""

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from offboard.calendar.models import CalendarFeed
from offboard.calendar.selectors import feed_for_token, token_hash
from offboard.calendar.services import create_calendar_feed, revoke_calendar_feed
from offboard.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry
from tests.calendar.conftest import BASE, create_feed, member, token_of


def test_creating_a_feed_records_one_event_and_returns_the_url_once(alice):
    before = LedgerEntry.objects.count()
    issued = create_feed(alice)

    assert issued.url.startswith(f"{BASE}/calendar/") and issued.url.endswith(".ics")
    assert LedgerEntry.objects.count() == before + 1
    event = LedgerEntry.objects.get(type="calendar_feed.created")
    assert event.case is None and event.org == alice.org
    assert event.data == {
        "feed_id": issued.feed.pk,
        "user_id": alice.user.pk,
        "username": "alice",
        "replaced_feed_ids": [],
    }
    assert event.actor_user == alice.user


def test_the_token_is_stored_only_as_its_hash(alice):
    issued = create_feed(alice)
    token = token_of(issued.url)

    feed = CalendarFeed.objects.get()
    assert feed.token_hash == token_hash(token) and len(token) == 43
    for model in apps.get_models():
        for row in model.objects.all().values():
            assert not any(token in str(value) for value in row.values()), model.__name__


def test_a_new_feed_revokes_the_previous_one_in_the_same_event(alice):
    first = create_feed(alice)
    second = create_feed(alice)

    old = CalendarFeed.objects.get(pk=first.feed.pk)
    assert old.revoked_at is not None and old.revoked_by == alice.user
    assert feed_for_token(token_of(first.url)) is None
    assert feed_for_token(token_of(second.url)) == second.feed
    assert second.replaced == (first.feed.pk,)
    events = list(LedgerEntry.objects.filter(type__startswith="calendar_feed.").order_by("index"))
    assert [e.type for e in events] == ["calendar_feed.created", "calendar_feed.created"]
    assert events[1].data["replaced_feed_ids"] == [first.feed.pk]


def test_revoking_records_one_event_and_the_feed_stops_working(alice):
    issued = create_feed(alice)
    before = LedgerEntry.objects.count()

    revoked = revoke_calendar_feed(actor=alice, membership=member(alice))

    assert revoked.pk == issued.feed.pk and revoked.revoked_at is not None
    assert feed_for_token(token_of(issued.url)) is None
    assert LedgerEntry.objects.count() == before + 1
    event = LedgerEntry.objects.get(type="calendar_feed.revoked")
    assert event.data == {"feed_id": issued.feed.pk, "user_id": alice.user.pk, "username": "alice"}


def test_revoking_without_a_feed_is_refused_and_writes_nothing(alice):
    before = LedgerEntry.objects.count()
    with pytest.raises(Conflict, match="alice has no calendar feed to revoke"):
        revoke_calendar_feed(actor=alice, membership=member(alice))
    assert LedgerEntry.objects.count() == before


def test_a_member_manages_only_their_own_feed_and_an_admin_anyones(cast):
    with pytest.raises(PermissionDenied):
        create_feed(cast["bob"], of=cast["carol"])
    create_feed(cast["bob"])
    with pytest.raises(PermissionDenied):
        revoke_calendar_feed(actor=cast["carol"], membership=member(cast["bob"]))

    issued = create_feed(cast["alice"], of=cast["oscar"])  # an admin, for a colleague
    assert issued.feed.user == cast["oscar"].user and issued.feed.created_by == cast["alice"].user
    revoke_calendar_feed(actor=cast["alice"], membership=member(cast["bob"]))
    assert not CalendarFeed.objects.filter(user=cast["bob"].user, revoked_at=None).exists()
    event = LedgerEntry.objects.filter(type="calendar_feed.revoked").get()
    assert event.actor_user == cast["alice"].user and event.data["username"] == "bob"


def test_another_organizations_member_is_not_found(alice, mallory):
    before = LedgerEntry.objects.count()
    with pytest.raises(NotFound):
        create_feed(alice, of=mallory)
    with pytest.raises(NotFound):
        revoke_calendar_feed(actor=alice, membership=member(mallory))
    assert LedgerEntry.objects.count() == before and not CalendarFeed.objects.exists()


def test_a_url_that_is_not_http_is_refused(alice):
    with pytest.raises(ValidationFailed, match="base_url"):
        create_calendar_feed(actor=alice, membership=member(alice), base_url="javascript:x")
    assert not CalendarFeed.objects.exists()


def test_a_deactivated_member_gets_no_feed(cast):
    from offboard.accounts.services import deactivate_member

    deactivate_member(actor=cast["alice"], membership=member(cast["bob"]))
    with pytest.raises(Conflict, match="bob is deactivated"):
        create_feed(cast["alice"], of=cast["bob"])
    assert not CalendarFeed.objects.exists()


def test_deactivating_a_member_revokes_their_feed_for_good(cast):
    from offboard.accounts.services import deactivate_member, reactivate_member

    issued = create_feed(cast["bob"])
    token = token_of(issued.url)
    assert feed_for_token(token) is not None

    deactivate_member(actor=cast["alice"], membership=member(cast["bob"]))
    assert feed_for_token(token) is None
    event = LedgerEntry.objects.get(type="member.deactivated")
    assert event.data["calendar_feeds_revoked"] == [issued.feed.pk]

    reactivate_member(actor=cast["alice"], membership=member(cast["bob"]))
    assert feed_for_token(token) is None  # like API tokens: a new feed is needed


def test_the_database_keeps_one_live_feed_per_member(alice):
    issued = create_feed(alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        CalendarFeed.objects.create(
            org=alice.org,
            user=alice.user,
            token_hash="0" * 64,
            created_by=alice.user,
            created_at=issued.feed.created_at,
        )
