"""Inbound endpoints are created, rotated and revoked by admins only, each in one transaction
with one event; their secrets are stored sealed, never in clear, and erased at revocation."""

import json

import pytest

from offboard.core.errors import Conflict, PermissionDenied, ValidationFailed
from offboard.inbound.models import InboundEndpoint
from offboard.inbound.selectors import valid_secrets
from offboard.inbound.services import (
    create_inbound_endpoint,
    revoke_inbound_endpoint,
    rotate_inbound_secret,
)
from offboard.ledger.models import LedgerEntry


def _last_event() -> tuple[str, dict]:
    entry = LedgerEntry.objects.order_by("-index").first()
    return entry.type, json.loads(bytes(entry.body))


def test_an_admin_creates_an_endpoint_with_one_event_and_gets_its_secret_once(alice, playbooks):
    before = LedgerEntry.objects.count()

    issued = create_inbound_endpoint(
        actor=alice,
        name="HubSpot deals",
        case_owner_id=alice.user.pk,
        playbook_slug=playbooks["consulting"].playbook.slug,
        open_as_draft=True,
    )

    assert issued.secret.startswith("whsec_")
    assert LedgerEntry.objects.count() == before + 1
    kind, body = _last_event()
    assert kind == "inbound_endpoint.created"
    assert body["data"] == {
        "endpoint_id": str(issued.endpoint.public_id),
        "name": "HubSpot deals",
        "case_owner_id": alice.user.pk,
        "playbook": playbooks["consulting"].playbook.slug,
        "open_as_draft": True,
    }
    assert body["actor"]["username"] == "alice"
    assert valid_secrets(InboundEndpoint.objects.get(), issued.endpoint.created_at) == [
        issued.secret
    ]


def test_the_secret_is_stored_sealed_and_nowhere_in_clear(alice, playbooks):
    from django.db import connection

    issued = create_inbound_endpoint(actor=alice, name="CRM", case_owner_id=alice.user.pk)
    key = issued.secret.removeprefix("whsec_")

    stored = InboundEndpoint.objects.get()
    assert stored.secret_sealed.startswith("v1:")
    assert key not in stored.secret_sealed
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                assert not any(key in str(v) or issued.secret in str(v) for v in row), table
    assert all(issued.secret not in bytes(e.body).decode() for e in LedgerEntry.objects.all())


@pytest.mark.parametrize("role", ["bob", "dave", "erin", "oscar"])
def test_only_an_admin_may_create_rotate_or_revoke(cast, playbooks, role):
    issued = create_inbound_endpoint(
        actor=cast["alice"], name="CRM", case_owner_id=cast["alice"].user.pk
    )
    before = (LedgerEntry.objects.count(), InboundEndpoint.objects.count())

    for attempt in (
        lambda: create_inbound_endpoint(
            actor=cast[role], name="Mine", case_owner_id=cast[role].user.pk
        ),
        lambda: rotate_inbound_secret(actor=cast[role], endpoint=issued.endpoint),
        lambda: revoke_inbound_endpoint(actor=cast[role], endpoint=issued.endpoint),
    ):
        with pytest.raises(PermissionDenied) as denied:
            attempt()
        assert "needs one of: admin." in denied.value.message
    assert (LedgerEntry.objects.count(), InboundEndpoint.objects.count()) == before


def test_another_organizations_admin_cannot_touch_the_endpoint(alice, mallory, playbooks):
    from offboard.core.errors import NotFound

    issued = create_inbound_endpoint(actor=alice, name="CRM", case_owner_id=alice.user.pk)

    with pytest.raises(NotFound):
        revoke_inbound_endpoint(actor=mallory, endpoint=issued.endpoint)
    with pytest.raises(NotFound):
        rotate_inbound_secret(actor=mallory, endpoint=issued.endpoint)
    assert InboundEndpoint.objects.get().enabled


def test_creation_names_every_problem_at_once_and_writes_nothing(cast, mallory, playbooks):
    before = (LedgerEntry.objects.count(), InboundEndpoint.objects.count())

    with pytest.raises(ValidationFailed) as refused:
        create_inbound_endpoint(
            actor=cast["alice"],
            name="  ",
            case_owner_id=mallory.user.pk,
            playbook_slug="no-such-playbook",
        )

    assert refused.value.errors == {
        "name": ["is required"],
        "case_owner_id": [f"user {mallory.user.pk} is not a member of this organization"],
        "playbook": ["no playbook 'no-such-playbook' in this organization"],
    }
    assert (LedgerEntry.objects.count(), InboundEndpoint.objects.count()) == before


def test_an_auditor_cannot_own_the_cases_and_names_must_differ(cast, playbooks):
    alice = cast["alice"]
    create_inbound_endpoint(actor=alice, name="CRM", case_owner_id=alice.user.pk)

    with pytest.raises(ValidationFailed) as refused:
        create_inbound_endpoint(actor=alice, name="CRM", case_owner_id=cast["erin"].user.pk)

    assert refused.value.errors == {
        "case_owner_id": ["erin is an auditor and cannot own work"],
        "name": ["an endpoint named 'CRM' is receiving events already"],
    }


def test_rotation_gives_a_new_secret_and_keeps_the_old_one_for_a_day(alice, playbooks):
    import datetime as dt

    issued = create_inbound_endpoint(actor=alice, name="CRM", case_owner_id=alice.user.pk)

    rotated = rotate_inbound_secret(actor=alice, endpoint=issued.endpoint)

    endpoint = InboundEndpoint.objects.get()
    now = endpoint.secret_rotated_at
    assert valid_secrets(endpoint, now) == [rotated.secret, issued.secret]
    assert valid_secrets(endpoint, now + dt.timedelta(hours=24)) == [rotated.secret]
    kind, body = _last_event()
    assert kind == "inbound_endpoint.secret_rotated"
    assert body["data"]["endpoint_id"] == str(endpoint.public_id)
    assert rotated.secret not in json.dumps(body)


def test_revocation_erases_the_secrets_and_is_final(alice, playbooks):
    issued = create_inbound_endpoint(actor=alice, name="CRM", case_owner_id=alice.user.pk)
    rotate_inbound_secret(actor=alice, endpoint=issued.endpoint)

    revoke_inbound_endpoint(actor=alice, endpoint=issued.endpoint)

    endpoint = InboundEndpoint.objects.get()
    assert not endpoint.enabled
    assert (endpoint.secret_sealed, endpoint.previous_secret_sealed) == ("", "")
    assert endpoint.revoked_by == alice.user
    kind, body = _last_event()
    assert (kind, body["data"]["deliveries"]) == ("inbound_endpoint.revoked", 0)
    events = LedgerEntry.objects.count()
    for again in (revoke_inbound_endpoint, rotate_inbound_secret):
        with pytest.raises(Conflict, match="was revoked on"):
            again(actor=alice, endpoint=endpoint)
    assert LedgerEntry.objects.count() == events


def test_an_endpoints_playbook_and_draft_setting_shape_the_case_it_opens(
    alice, playbooks, client_contract
):
    from offboard.cases.models import OffboardingCase
    from tests.inbound.conftest import Sender, event_body, url_of

    consulting = playbooks["consulting"].playbook
    issued = create_inbound_endpoint(
        actor=alice,
        name="PSA",
        case_owner_id=alice.user.pk,
        playbook_slug=consulting.slug,
        open_as_draft=True,
    )
    client_contract[1].fee_type = "fixed"  # the consulting playbook's fee types
    client_contract[1].save()

    response = Sender(url_of(issued.endpoint), issued.secret).post(event_body())

    assert response.status_code == 200, response.content
    case = OffboardingCase.objects.get(ref=response.json()["case"]["ref"])
    assert case.playbook_version.playbook == consulting
    assert case.state == "draft"
