from django.db import migrations

from offboard.ledger import sqlfunctions


def install(apps, schema_editor):
    sqlfunctions.install_v2(schema_editor.connection)


def remove(apps, schema_editor):
    sqlfunctions.remove_v2(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_append_only_triggers")]

    operations = [migrations.RunPython(install, remove)]
