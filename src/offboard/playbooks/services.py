"""Importing playbooks: validate everything first, write a new immutable version or nothing."""

import hashlib

from django.db import transaction

from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.permissions import require
from offboard.ledger.recorder import record_event
from offboard.playbooks.models import Playbook, PlaybookVersion
from offboard.playbooks.spec import builtin_playbook_paths, parse_playbook


@transaction.atomic
def import_playbook(*, actor: Actor, source: str | bytes, builtin: bool = False) -> PlaybookVersion:
    """Import a playbook text. The same text as the latest version is a no-op returning it."""
    require(actor, "playbooks.import")
    spec = parse_playbook(source)  # raises PlaybookInvalid with every error and its line
    text = source.decode("utf-8") if isinstance(source, bytes) else source
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    playbook, created = Playbook.objects.select_for_update().get_or_create(
        org=actor.org,
        slug=spec.slug,
        defaults={"name": spec.name, "service_type": spec.service_type, "builtin": builtin},
    )
    latest = playbook.versions.order_by("-version").first()
    if latest is not None and latest.sha256 == sha:
        return latest
    if not created and (playbook.name != spec.name or playbook.service_type != spec.service_type):
        Playbook.objects.filter(pk=playbook.pk).update(
            name=spec.name, service_type=spec.service_type
        )
    version = PlaybookVersion.objects.create(
        org=actor.org,
        playbook=playbook,
        version=(latest.version + 1) if latest else 1,
        source=text,
        sha256=sha,
        created_at=clock.now(),
        created_by=actor.user,
    )
    record_event(
        actor=actor,
        type="playbook.imported",
        data={
            "slug": spec.slug,
            "name": spec.name,
            "version": version.version,
            "sha256": sha,
            "steps": len(spec.steps),
            "builtin": builtin,
        },
    )
    return version


def install_builtin_playbooks(*, actor: Actor) -> list[PlaybookVersion]:
    """Import every built-in playbook (each in its own transaction)."""
    return [
        import_playbook(actor=actor, source=path.read_text("utf-8"), builtin=True)
        for path in builtin_playbook_paths()
    ]
