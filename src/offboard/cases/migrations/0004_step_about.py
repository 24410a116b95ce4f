"""A step knows the register items it is about (`about`, from its playbook) and, once settling
them completed it, which items and acknowledgements did (`settled_by`).

Steps of cases opened before keep `about = []`: they are about no items and are worked as
before; nothing is back-filled, and no step changes status.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0003_provenance_of_facts"),
    ]

    operations = [
        migrations.AddField(
            model_name="step",
            name="about",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="step",
            name="settled_by",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
