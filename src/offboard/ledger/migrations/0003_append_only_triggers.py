from django.db import migrations

from offboard.ledger import triggers


def install(apps, schema_editor):
    triggers.install(schema_editor.connection)


def remove(apps, schema_editor):
    triggers.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_merkle_log")]

    operations = [migrations.RunPython(install, remove)]
