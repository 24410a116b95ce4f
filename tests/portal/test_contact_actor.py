"""A client contact on the ledger: `record_event` takes a `ContactActor` under the same
contract as a staff actor — inside the action's transaction, one leaf, canonical JSON."""

import json

import pytest
from django.db import transaction

from offboard.core.actor import ContactActor
from offboard.core.canonical import canonical_json
from offboard.ledger.recorder import record_event


def contact_actor(org, nina):
    return ContactActor(
        org=org, contact_id=nina.pk, name=nina.name, email=nina.email, ip="192.0.2.7",
        user_agent="Firefox",
    )  # fmt: skip


def test_a_contact_event_names_the_contact_and_no_user(org, nina, case):
    with transaction.atomic():
        entry = record_event(
            actor=contact_actor(org, nina), type="portal.test", case=case, data={"x": 1}
        )

    body = json.loads(bytes(entry.body))
    assert body["actor"] == {
        "id": None,
        "contact_id": nina.pk,
        "name": "Nina North",
        "email": "nina@northwind.example",
        "role": "client_contact",
        "auth": "portal_link",
        "ip": "192.0.2.7",
        "user_agent": "Firefox",
    }
    assert bytes(entry.body) == canonical_json(body)
    assert entry.actor_user_id is None and entry.case_id == case.pk


def test_a_contact_event_outside_a_transaction_is_refused(org, nina, case):
    with pytest.raises(RuntimeError, match="inside the action's transaction"):
        # pytest-django wraps the test in a transaction; leave it to see the guard.
        connection = transaction.get_connection()
        saved = connection.in_atomic_block
        connection.in_atomic_block = False
        try:
            record_event(actor=contact_actor(org, nina), type="portal.test", case=case)
        finally:
            connection.in_atomic_block = saved
