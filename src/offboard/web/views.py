"""Staff pages (read-only for now): the case list and a case's detail."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from offboard.accounts.models import Membership
from offboard.accounts.selectors import membership_for
from offboard.cases import selectors
from offboard.cases.gates import unmet_gates
from offboard.cases.models import OffboardingCase, Step
from offboard.cases.registers import REGISTERS
from offboard.cases.state import state_digest
from offboard.core.errors import NotFound
from offboard.ledger.selectors import case_events


def _membership(request: HttpRequest) -> Membership:
    membership = membership_for(request.user)  # type: ignore[arg-type]
    if membership is None:
        raise Http404("You are not a member of any organization.")
    return membership


@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    membership = _membership(request)
    state = request.GET.get("state") or None
    if state not in (None, *OffboardingCase.State.values):
        state = None
    qs = selectors.cases(membership.org, state=state, search=request.GET.get("q", "").strip())
    counts = selectors.state_counts(membership.org)
    return render(
        request,
        "web/case_list.html",
        {
            "membership": membership,
            "cases": qs[:200],
            "state": state,
            "counts": counts,
            "q": request.GET.get("q", ""),
        },
    )


@login_required
def case_detail(request: HttpRequest, ref: str) -> HttpResponse:
    membership = _membership(request)
    try:
        case = selectors.get_case(membership.org, ref, full=True)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    registers = [(spec, list(getattr(case, key).all())) for key, spec in REGISTERS.items()]
    steps = list(case.steps.all())
    phases: dict[str, list[Step]] = {}
    for step in steps:
        phases.setdefault(step.phase, []).append(step)
    return render(
        request,
        "web/case_detail.html",
        {
            "membership": membership,
            "case": case,
            "phases": phases,
            "registers": registers,
            "gates": unmet_gates(case) if case.is_open else [],
            "digest": state_digest(case),
            "events": case_events(case).select_related("actor_user"),
            "approvals": list(case.approvals.all()),
            "waivers": list(case.waivers.all()),
            "addenda": list(case.addenda.all()),
        },
    )
