"""Migrations 0003–0004: tokens made before scopes and expiry keep working as they did — every
scope, created by their owner — and expire at their creation plus the default 90 days."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from offboard.accounts.models import ApiToken
from offboard.core.scopes import ALL_SCOPES
from tests.api.conftest import token_for


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_tokens_from_before_scopes_get_every_scope_and_the_default_expiry(cast):
    token_for(cast["bob"], "old script")
    created = dt.datetime(2026, 10, 1, 9, 30, tzinfo=dt.UTC)
    _migrate([("accounts", "0002_api_token_scopes_expiry")])
    with connection.cursor() as cursor:  # as the rows stood before: no scopes, no expiry
        cursor.execute(
            "UPDATE accounts_apitoken SET scopes = %s, expires_at = NULL, created_by_id = NULL, "
            "created_at = %s",
            ["[]", created],
        )

    _migrate(None)

    token = ApiToken.objects.get(name="old script")
    assert token.scopes == list(ALL_SCOPES)
    assert token.expires_at == created + dt.timedelta(days=90)
    assert token.created_by == cast["bob"].user
    assert token.revoked_at is None
