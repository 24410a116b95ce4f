"""A signing key's private half may live on a PKCS#11 token (decision 0033): `backend` says
which, `location` holds its pkcs11: URI; keys made before stay files."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0006_case_chain"),
    ]

    operations = [
        migrations.AddField(
            model_name="signingkey",
            name="backend",
            field=models.CharField(
                choices=[("file", "File"), ("pkcs11", "Pkcs11")], default="file", max_length=16
            ),
        ),
        migrations.AddField(
            model_name="signingkey",
            name="location",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AlterField(
            model_name="signingkey",
            name="private_key_path",
            field=models.CharField(blank=True, max_length=500),
        ),
    ]
