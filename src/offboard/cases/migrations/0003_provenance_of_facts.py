"""Every register item says how the fact its status asserts is known and when it was recorded
(decision 0008): `source`, `source_detail`, `recorded_at`, `recorded_by`.

Existing items are filled in from the case's own events: the latest event that set the
item's status tells who recorded it and when. An acknowledgement or dispute the client made
through the portal (`portal.acknowledged`, `portal.disputed`) is `client_portal` with the
contact, their typed name and the digest of the list they saw; a deemed acceptance is staff
citing its reminders; anything else settled is `staff`. Items whose status settles nothing
keep an empty source. Without a readable event (erased), the source is `staff` with no name
and `recorded_at` is the item's `updated_at`.
"""

import json

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# model → (register key, event prefix, initial status)
REGISTERS = {
    "deliverable": ("deliverables", "deliverable", "pending"),
    "handoveritem": ("handover_items", "handover_item", "planned"),
    "accessgrant": ("access_grants", "access_grant", "active"),
    "datadisposition": ("data_dispositions", "data_disposition", "planned"),
    "settlement": ("settlements", "settlement", "outstanding"),
}
PORTAL_EVENTS = ("portal.acknowledged", "portal.disputed", "portal.deemed_accepted")
NOT_STATUS_VERBS = ("added", "updated", "verified")
SOURCES = [
    ("observed", "Observed by a system read"),
    ("client_portal", "Signed by the client in the portal"),
    ("vendor_document", "Confirmed by a vendor's document"),
    ("staff", "Recorded by staff"),
]


def _status_events(entry_model, case_id, prefixes):
    """(register key, item id) → (entry, event body, the item's entry in a portal event) of
    the latest event of the case that set the item's status."""
    found = {}
    entries = (
        entry_model.objects.filter(case_id=case_id, redacted=False)
        .only("index", "type", "at", "actor_user_id", "body")
        .order_by("index")
    )
    for entry in entries.iterator():
        if entry.type not in PORTAL_EVENTS and entry.type.split(".", 1)[0] not in prefixes:
            continue
        body = json.loads(bytes(entry.body))
        data = body.get("data") or {}
        if entry.type in PORTAL_EVENTS:
            for ref in data.get("items") or []:
                found[(ref.get("register"), ref.get("id"))] = (entry, body, ref)
            continue
        prefix, verb = entry.type.split(".", 1)
        item = data.get("item")
        if not isinstance(item, dict) or "id" not in item:
            continue
        key, initial = prefixes[prefix]
        if verb in NOT_STATUS_VERBS and not (verb == "added" and item.get("status") != initial):
            continue
        found[(key, item["id"])] = (entry, body, None)
    return found


def _provenance(item, fact):
    """(source, detail, recorded_at, recorded_by_id) of a settled item."""
    if fact is None:
        return "staff", {"name": "", "migrated": True}, item.updated_at, None
    entry, body, ref = fact
    data = body.get("data") or {}
    name = str((body.get("actor") or {}).get("name") or "")
    if entry.type in ("portal.acknowledged", "portal.disputed"):
        detail = {
            "contact": data.get("contact") or {},
            "typed_name": data.get("typed_name") or "",
            "manifest_sha256": data.get("manifest_sha256") or "",
        }
        return "client_portal", detail, entry.at, None
    if entry.type == "portal.deemed_accepted":
        reminders = (ref or {}).get("reminder_events") or data.get("reminder_events") or []
        detail = {"name": name, "deemed": True, "reminder_events": reminders}
        return "staff", detail, entry.at, entry.actor_user_id
    return "staff", {"name": name}, entry.at, entry.actor_user_id


def forward(apps, schema_editor):
    entry_model = apps.get_model("ledger", "LedgerEntry")
    prefixes = {prefix: (key, initial) for key, prefix, initial in REGISTERS.values()}
    settled = {
        name: list(apps.get_model("cases", name).objects.exclude(status=initial).order_by("id"))
        for name, (_key, _prefix, initial) in REGISTERS.items()
    }
    case_ids = sorted({item.case_id for items in settled.values() for item in items})
    facts = {}
    for case_id in case_ids:
        facts.update(_status_events(entry_model, case_id, prefixes))
    for name, items in settled.items():
        key = REGISTERS[name][0]
        model = apps.get_model("cases", name)
        for item in items:
            source, detail, at, by = _provenance(item, facts.get((key, item.pk)))
            model.objects.filter(pk=item.pk).update(
                source=source, source_detail=detail, recorded_at=at, recorded_by_id=by
            )


def backward(apps, schema_editor):
    """The columns go away with the fields; nothing to undo in the rows."""


def _fields(model_name):
    return [
        migrations.AddField(
            model_name=model_name,
            name="source",
            field=models.CharField(blank=True, choices=SOURCES, max_length=20),
        ),
        migrations.AddField(
            model_name=model_name,
            name="source_detail",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name=model_name,
            name="recorded_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="recorded_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0002_closed_state"),
        ("ledger", "0005_store_nodes_from_level_4"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        *[op for name in REGISTERS for op in _fields(name)],
        migrations.RunPython(forward, backward),
    ]
