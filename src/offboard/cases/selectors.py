"""Read queries for cases, always scoped to one organization, in a bounded number of queries."""

import re
from typing import Any

from django.db.models import Count, Q, QuerySet

from offboard.cases.models import (
    REGISTER_MODELS,
    Addendum,
    OffboardingCase,
    RegisterItem,
    Step,
    Waiver,
)
from offboard.cases.state import with_everything
from offboard.core.errors import NotFound
from offboard.evidence.models import EvidenceFile


def cases(
    org: Any,
    *,
    state: str | None = None,
    client_id: int | None = None,
    owner_id: int | None = None,
    search: str = "",
) -> QuerySet[OffboardingCase]:
    qs = (
        OffboardingCase.objects.for_org(org)
        .select_related("client", "owner", "playbook_version__playbook")
        .annotate(
            steps_total=Count("steps", filter=Q(steps__required=True), distinct=True),
            steps_settled=Count(
                "steps",
                filter=Q(steps__required=True, steps__status__in=["done", "not_applicable"]),
                distinct=True,
            ),
        )
    )
    if state:
        qs = qs.filter(state=state)
    if client_id:
        qs = qs.filter(client_id=client_id)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if search:
        qs = qs.filter(Q(ref__icontains=search) | Q(client__name__icontains=search))
    return qs.order_by("-created_at", "-id")


def state_counts(org: Any) -> dict[str, int]:
    """Cases per state (every state present, zero included), in one grouped query."""
    counts = dict.fromkeys(OffboardingCase.State.values, 0)
    rows = OffboardingCase.objects.for_org(org).values("state").annotate(n=Count("id"))
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


def get_case(org: Any, ref: str, *, full: bool = False) -> OffboardingCase:
    qs = OffboardingCase.objects.for_org(org)
    qs = with_everything(qs) if full else qs.select_related("client", "owner")
    found = qs.filter(ref=ref).first()
    if found is None:
        raise NotFound(f"No case {ref} in this organization.")
    return found


def get_step(case: OffboardingCase, key: str) -> Step:
    step = Step.objects.filter(case=case, key=key).select_related("case").first()
    if step is None:
        raise NotFound(f"No step '{key}' in case {case.ref}.")
    return step


def register_items(case: OffboardingCase, register: str) -> QuerySet[Any]:
    """One register of a case, with owners and evidence, in three queries."""
    model = REGISTER_MODELS.get(register)
    if model is None:
        raise NotFound(f"No register '{register}'.")
    items: Any = model.objects.filter(case=case).select_related("owner", "recorded_by")
    return items.prefetch_related("evidence").order_by("id")


def get_register_item(case: OffboardingCase, register: str, item_id: int) -> RegisterItem:
    model = REGISTER_MODELS.get(register)
    if model is None:
        raise NotFound(f"No register '{register}'.")
    item = (
        model.objects.filter(case=case, pk=item_id)
        .select_related("case", "owner", "recorded_by")
        .first()
    )
    if item is None:
        raise NotFound(f"No {model.event_prefix.replace('_', ' ')} {item_id} in case {case.ref}.")
    return item


def get_waiver(case: OffboardingCase, waiver_id: int) -> Waiver:
    waiver = Waiver.objects.filter(case=case, pk=waiver_id).select_related("case").first()
    if waiver is None:
        raise NotFound(f"No waiver {waiver_id} in case {case.ref}.")
    return waiver


# Everything on a case that holds evidence files: (model, its many-to-many field).
_WITH_EVIDENCE: list[tuple[Any, str]] = [
    (OffboardingCase, "trigger_evidence"),
    (Step, "evidence"),
    *((model, "evidence") for model in REGISTER_MODELS.values()),
    (Waiver, "evidence"),
    (Addendum, "evidence"),
]


def case_file(case: OffboardingCase, sha256: str) -> EvidenceFile:
    """An evidence file attached to something on this case (its trigger, a step, a register
    item, a waiver, an addendum), in one query. Any other file — another case's, or one of the
    organization's never attached here — does not exist for this case."""
    sha256 = (sha256 or "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise NotFound(f"No such evidence file on case {case.ref}: a file is named by its SHA-256.")
    attached = Q(pk__in=[])
    for model, field in _WITH_EVIDENCE:
        through = getattr(model, field).through
        owner = "offboardingcase" if model is OffboardingCase else f"{model._meta.model_name}__case"
        attached |= Q(pk__in=through.objects.filter(**{owner: case}).values("evidencefile_id"))
    found = EvidenceFile.objects.filter(org_id=case.org_id, sha256=sha256).filter(attached).first()
    if found is None:
        raise NotFound(f"No evidence file {sha256[:12]}… on case {case.ref}.")
    return found


def open_cases_covering(org: Any, client: Any, contracts: Any) -> QuerySet[OffboardingCase]:
    """The client's cases not yet closed or cancelled that cover any of these contracts, oldest
    first, each with its contracts."""
    open_states = [
        OffboardingCase.State.DRAFT,
        OffboardingCase.State.ACTIVE,
        OffboardingCase.State.CLOSING,
    ]
    return (
        OffboardingCase.objects.for_org(org)
        .filter(client=client, state__in=open_states, contracts__in=[c.pk for c in contracts])
        .distinct()
        .prefetch_related("contracts")
        .order_by("created_at", "id")
    )
