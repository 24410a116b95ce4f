# The after-closure re-check (connectors/recheck.py): when a linked account was last read
# again, what was read, and since when the access is back.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0002_connector_run"),
    ]

    operations = [
        migrations.AddField(
            model_name="linkedaccount",
            name="rechecked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="linkedaccount",
            name="recheck_status",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="linkedaccount",
            name="present_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
