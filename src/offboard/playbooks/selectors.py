"""Read playbooks of an organization."""

from django.db.models import Prefetch, QuerySet

from offboard.core.errors import NotFound
from offboard.playbooks.models import Playbook, PlaybookVersion


def playbooks(org: object) -> QuerySet[Playbook]:
    return (
        Playbook.objects.for_org(org)
        .prefetch_related(
            Prefetch("versions", queryset=PlaybookVersion.objects.order_by("-version"))
        )
        .order_by("name")
    )


def get_playbook(org: object, slug: str) -> Playbook:
    return Playbook.objects.get_in_org(org, "playbook", slug=slug)


def get_version(org: object, slug: str, version: int | None = None) -> PlaybookVersion:
    qs = PlaybookVersion.objects.for_org(org).select_related("playbook").filter(playbook__slug=slug)
    found = (
        qs.filter(version=version).first()
        if version is not None
        else qs.order_by("-version").first()
    )
    if found is None:
        what = (
            f"version {version} of playbook '{slug}'"
            if version is not None
            else f"playbook '{slug}'"
        )
        raise NotFound(f"No {what} in this organization.")
    return found


def suggest_playbook(org: object, service_type: str) -> PlaybookVersion | None:
    """The latest version of the first playbook for this service type, built-ins last."""
    pb = (
        Playbook.objects.for_org(org)
        .filter(service_type=service_type)
        .order_by("builtin", "name")
        .first()
    )
    if pb is None:
        return None
    return pb.versions.order_by("-version").first()
