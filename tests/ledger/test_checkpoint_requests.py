"""Signing a checkpoint on request: admins only, and at most one per interval per
organization while the log has not grown (each checkpoint queues requests to the TSAs).
The limit is read from the database, so it holds across web processes."""

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from django.db.models import F
from typer.testing import CliRunner

from offboard.cli import app
from offboard.core.errors import PermissionDenied, RateLimited
from offboard.ledger import services
from offboard.ledger.models import Checkpoint, Timestamp
from tests.api.conftest import Api, token_for

NOT_ADMINS = ["bob", "dave", "erin", "oscar"]  # manager, finance, auditor, operator


def _issue(actor: Any) -> Any:
    with transaction.atomic():
        return services.issue_checkpoint(actor=actor)


def _age_checkpoints(org: Any, seconds: float) -> None:
    Checkpoint.objects.filter(org=org).update(
        created_at=F("created_at") - dt.timedelta(seconds=seconds)
    )


def _grow(actor: Any, name: str = "Contoso") -> None:
    from offboard.clients.services import create_client

    create_client(actor=actor, name=name)


@pytest.mark.parametrize("name", NOT_ADMINS)
def test_only_an_admin_may_request_a_checkpoint(cast, name):
    with pytest.raises(PermissionDenied) as refused:
        _issue(cast[name])

    assert "ledger.checkpoint" in refused.value.message
    assert not Checkpoint.objects.exists()
    assert _issue(cast["alice"]).reason == "requested"


@pytest.mark.parametrize("name", NOT_ADMINS)
def test_the_api_refuses_other_roles_with_403(cast, name):
    response = Api(token_for(cast[name])).post("/ledger/checkpoints")

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "forbidden"
    assert not Checkpoint.objects.exists()


def test_the_cli_refuses_other_roles(cast):
    result = CliRunner().invoke(app, ["ledger", "checkpoint", "--org", "acme", "--as", "erin"])

    assert result.exit_code == 1
    assert "ledger.checkpoint" in result.output
    assert not Checkpoint.objects.exists()


def test_a_second_request_before_the_log_grows_is_refused_with_when_to_retry(cast, settings):
    settings.OFFBOARD_CHECKPOINT_REQUEST_INTERVAL = 60
    settings.OFFBOARD_TSA_URLS = ["http://127.0.0.1:9/tsa"]  # queued, never asked in this test
    alice = cast["alice"]
    first = _issue(alice)

    with pytest.raises(RateLimited) as limited:
        _issue(alice)

    assert 1 <= limited.value.retry_after <= 60
    assert f"size {first.size}" in limited.value.message
    assert Checkpoint.objects.count() == 1
    assert Timestamp.objects.count() == 1  # the refused request queued nothing


def test_the_api_answers_429_with_retry_after(cast, settings):
    settings.OFFBOARD_CHECKPOINT_REQUEST_INTERVAL = 60
    admin = Api(token_for(cast["alice"]))
    assert admin.post("/ledger/checkpoints").status_code == 201

    again = admin.post("/ledger/checkpoints")

    assert again.status_code == 429, again.content
    error = again.json()["error"]
    assert error["code"] == "rate_limited"
    retry = int(again["Retry-After"])
    assert 1 <= retry <= 60 and error["details"]["retry_after"] == retry


def test_once_the_log_grows_a_new_checkpoint_may_be_requested_at_once(cast):
    alice = cast["alice"]
    first = _issue(alice)
    _grow(alice)

    second = _issue(alice)

    assert second.size == first.size + 1


def test_after_the_interval_the_same_size_may_be_signed_again(cast, settings):
    settings.OFFBOARD_CHECKPOINT_REQUEST_INTERVAL = 60
    alice = cast["alice"]
    _issue(alice)
    _age_checkpoints(alice.org, 61)

    assert _issue(alice).reason == "requested"
    assert Checkpoint.objects.count() == 2


def test_the_limit_is_per_organization(cast, mallory):
    _issue(cast["alice"])

    assert _issue(mallory).org == mallory.org


def test_a_closure_checkpoint_counts_too(cast, settings):
    """Whatever signed the log last (a closure, an export, the worker), the log as it stands
    is already signed: a request adds nothing until it grows or the interval passes."""
    from offboard.ledger.checkpoints import issue_checkpoint

    settings.OFFBOARD_CHECKPOINT_REQUEST_INTERVAL = 60
    with transaction.atomic():
        issue_checkpoint(org=cast["alice"].org, reason="case_closed")

    with pytest.raises(RateLimited):
        _issue(cast["alice"])
