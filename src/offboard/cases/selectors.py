"""Read queries for cases, always scoped to one organization, in a bounded number of queries."""

from typing import Any

from django.db.models import Count, Q, QuerySet

from offboard.cases.models import REGISTER_MODELS, OffboardingCase, RegisterItem, Step, Waiver
from offboard.cases.state import with_everything
from offboard.core.errors import NotFound


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
