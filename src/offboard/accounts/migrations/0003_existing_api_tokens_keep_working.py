"""Tokens made before scopes and expiry keep working as they did: every scope, and an
expiry of their creation plus the default lifetime (90 days), created by their owner
(decision 0029). A token older than that is expired from this migration on: its owner
creates a new one, with the scopes it needs."""

import datetime as dt

from django.db import migrations

# The scopes as they were when this migration was written (core/scopes.py may grow).
ALL_SCOPES = [
    "read",
    "cases:write",
    "clients:write",
    "playbooks:write",
    "ledger:write",
    "exports",
    "tokens",
    "admin",
]
DEFAULT_DAYS = 90


def fill_in(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    for token in ApiToken.objects.filter(expires_at__isnull=True).iterator():
        token.scopes = list(ALL_SCOPES)
        token.expires_at = token.created_at + dt.timedelta(days=DEFAULT_DAYS)
        token.created_by_id = token.user_id
        token.save(update_fields=["scopes", "expires_at", "created_by"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_api_token_scopes_expiry"),
    ]

    operations = [
        migrations.RunPython(fill_in, migrations.RunPython.noop),
    ]
