"""Read evidence files of an organization."""

from collections.abc import Iterable
from typing import Any

from offboard.core.errors import ValidationFailed
from offboard.evidence.models import EvidenceFile


def get_file(org: Any, sha256: str) -> EvidenceFile:
    return EvidenceFile.objects.get_in_org(org, "evidence file", sha256=sha256)


def files_by_hash(org: Any, hashes: Iterable[str], field: str = "evidence") -> list[EvidenceFile]:
    """Resolve sha256 references; unknown ones are a field error, not a silent drop."""
    wanted = sorted({h.lower() for h in hashes})
    found = {f.sha256: f for f in EvidenceFile.objects.filter(org=org, sha256__in=wanted)}
    missing = [h for h in wanted if h not in found]
    if missing:
        raise ValidationFailed(
            {field: [f"no evidence file with sha256 {h}; upload it first" for h in missing]}
        )
    return [found[h] for h in wanted]
