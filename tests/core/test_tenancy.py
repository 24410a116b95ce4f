"""Every domain row belongs to one organization; events are append-only."""

import pytest
from django.apps import apps

from offboard.core.errors import Conflict
from offboard.ledger.models import LedgerEntry

GLOBAL_MODELS = {"accounts.Organization", "accounts.User"}
OUR_APPS = {"accounts", "clients", "evidence", "playbooks", "ledger", "cases", "inbound"}


def test_every_model_of_ours_is_scoped_to_an_organization():
    unscoped = [
        model._meta.label
        for model in apps.get_models()
        if model._meta.app_label in OUR_APPS
        and model._meta.label not in GLOBAL_MODELS
        and "org" not in {f.name for f in model._meta.get_fields()}
    ]
    assert unscoped == []


def test_events_cannot_be_changed_or_deleted(case):
    event = LedgerEntry.objects.filter(case=case).first()
    event.type = "case.forged"
    with pytest.raises(Conflict):
        event.save()
    with pytest.raises(Conflict):
        event.delete()
    assert LedgerEntry.objects.get(pk=event.pk).type == "case.opened"


def test_record_event_refuses_to_run_outside_a_transaction(alice, transactional_db):
    from offboard.ledger.recorder import record_event

    with pytest.raises(RuntimeError):
        record_event(actor=alice, type="case.opened", data={})
