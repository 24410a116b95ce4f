"""Each case's events form a chain (decision 0010): an event's body carries its place in its
case (`seq`) and the leaf hash of the case's previous event (`prev`). `case_seq` keeps the
place beside the body so the next one is numbered without parsing (or after redaction).

Entries recorded before this migration keep `case_seq` empty: the append-only triggers refuse
any update, and those events carry no chain in their bodies either (event format v1).
"""

from django.db import migrations, models

from offboard.ledger import sqlfunctions


def forward(apps, schema_editor):
    sqlfunctions.install_v3(schema_editor.connection)


def backward(apps, schema_editor):
    sqlfunctions.remove_v3(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_store_nodes_from_level_4")]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="case_seq",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(forward, backward),
    ]
