"""Open a case: pick the client, then contracts, trigger, dates, scope, owner and playbook;
"Preview" shows the computed dates and steps, "Confirm" opens exactly that case."""

import hashlib
import json
from dataclasses import replace
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from offboard.accounts import selectors as accounts
from offboard.accounts.models import Membership
from offboard.cases.models import OffboardingCase
from offboard.cases.services import open_case
from offboard.cases.services.opening import DuplicateCase, plan_case
from offboard.clients import selectors as clients
from offboard.clients.models import Client, Contract, FeeType, ServiceType
from offboard.core import clock
from offboard.core.errors import ValidationFailed
from offboard.core.permissions import can
from offboard.playbooks import selectors as playbooks
from offboard.playbooks.models import PlaybookVersion
from offboard.web.pages.common import (
    IsoDateInput,
    StaffForm,
    actor_of,
    add_errors,
    forbidden,
    staff_page,
)

ALIASES = {"owner_id": "owner", "playbook": "playbook_version"}


def latest_versions(org: Any) -> list[PlaybookVersion]:
    found = []
    for pb in playbooks.playbooks(org):
        versions = list(pb.versions.all())
        if versions:
            found.append(versions[0])
    return found


def suggest(versions: list[PlaybookVersion], contract: Contract | None) -> PlaybookVersion | None:
    """The playbook for the contract's service type that covers its fee type (an organization's
    own before a built-in one)."""
    if contract is None:
        return None
    fitting = [
        v
        for v in versions
        if v.playbook.service_type == contract.service_type
        and contract.fee_type in v.spec.fee_types
    ]
    fitting.sort(key=lambda v: (v.playbook.builtin, v.playbook.name))
    return fitting[0] if fitting else None


class OpenCaseForm(StaffForm):
    contracts = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        help_text="The first one chosen sets the fee type and the dates.",
    )
    trigger = forms.ChoiceField(choices=OffboardingCase.Trigger.choices)
    trigger_date = forms.DateField(widget=IsoDateInput)
    effective_end_date = forms.DateField(
        required=False,
        widget=IsoDateInput,
        help_text="Leave empty to compute it from the contract: its end date for expiry and "
        "non-renewal, else the notice date plus the notice period.",
    )
    scope = forms.ChoiceField(
        choices=[("full", "Full exit"), ("partial", "Partial exit (scope reduction)")],
        widget=forms.RadioSelect,
        initial="full",
    )
    scope_notes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required for a partial exit: what is in scope.",
    )
    trigger_notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    owner = forms.TypedChoiceField(coerce=int)
    playbook_version = forms.TypedChoiceField(coerce=int, label="Playbook")
    # Shown with the preview when the client has an open case for one of the contracts.
    allow_duplicate = forms.BooleanField(required=False, label="Open another case anyway")

    def __init__(
        self,
        *args: Any,
        contracts: list[Contract],
        owners: list[Membership],
        versions: list[PlaybookVersion],
        suggested: PlaybookVersion | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._choices("contracts").choices = [
            (
                str(c.pk),
                f"{c.reference} · {c.get_service_type_display()}, {c.get_fee_type_display()}"
                + (f", ends {c.end_date:%d %b %Y}" if c.end_date else ""),
            )
            for c in contracts
        ]
        self._choices("owner").choices = [
            (m.user_id, f"{m.user.get_full_name() or m.user.username} ({m.role})") for m in owners
        ]
        self._choices("playbook_version").choices = [
            (
                v.pk,
                f"{v.playbook.name} v{v.version}" + (" — suggested" if v == suggested else ""),
            )
            for v in versions
        ]

    def _choices(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field

    def fingerprint(self) -> str:
        """A digest of what the preview was computed from, so Confirm opens what was shown
        (ticking "Open another case anyway" after the preview changes nothing shown)."""
        data = {k: str(v) for k, v in sorted(self.cleaned_data.items()) if k != "allow_duplicate"}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _pick_client(request: HttpRequest, membership: Membership) -> HttpResponse:
    return render(
        request,
        "web/open_case.html",
        {"membership": membership, "clients": list(clients.clients(membership.org))},
    )


@staff_page
def open_case_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    actor = actor_of(request, membership)
    if not can(actor, "cases.open"):
        return forbidden(
            request,
            f"Your role '{membership.role}' may not open cases; an admin or a manager can.",
            membership,
        )
    client_id = request.POST.get("client") or request.GET.get("client")
    if not client_id:
        return _pick_client(request, membership)
    client: Client = clients.get_client(membership.org, client_id)  # type: ignore[arg-type]
    contracts = list(clients.contracts(membership.org, client))
    owners = [m for m in accounts.members(membership.org) if m.can_own_work]
    versions = latest_versions(membership.org)
    first = contracts[0] if contracts else None
    if request.method == "POST" and request.POST.getlist("contracts"):
        chosen = [c for c in contracts if str(c.pk) == request.POST.getlist("contracts")[0]]
        first = chosen[0] if chosen else first
    suggested = suggest(versions, first)
    kwargs: dict[str, Any] = {
        "contracts": contracts,
        "owners": owners,
        "versions": versions,
        "suggested": suggested,
    }
    context: dict[str, Any] = {
        "membership": membership,
        "client": client,
        "has_contracts": bool(contracts),
        "suggested": suggested,
        "service_label": ServiceType(first.service_type).label if first else "",
        "fee_label": FeeType(first.fee_type).label if first else "",
    }
    if request.method != "POST":
        initial: dict[str, Any] = {
            "contracts": [str(first.pk)] if first else [],
            "trigger_date": clock.now().date(),
            "owner": membership.user_id if membership.role != "auditor" else None,
            "playbook_version": suggested.pk if suggested else None,
            "scope": "full",
        }
        context["form"] = OpenCaseForm(initial=initial, **kwargs)
        return render(request, "web/open_case.html", context)

    form = OpenCaseForm(request.POST, **kwargs)
    context["form"] = form
    if not form.is_valid():
        return render(request, "web/open_case.html", context, status=422)
    data = form.cleaned_data
    by_pk = {str(c.pk): c for c in contracts}
    chosen_contracts = [by_pk[pk] for pk in data["contracts"]]
    version = next(v for v in versions if v.pk == data["playbook_version"])
    opening = {
        "actor": actor,
        "client": client,
        "contracts": chosen_contracts,
        "trigger": data["trigger"],
        "trigger_date": data["trigger_date"],
        "owner_id": data["owner"],
        "playbook_version": version,
        "scope": data["scope"],
        "scope_notes": data["scope_notes"],
        "effective_end_date": data["effective_end_date"],
    }
    fingerprint = form.fingerprint()
    confirming = request.POST.get("action") == "confirm"
    if confirming and request.POST.get("fingerprint") != fingerprint:
        context["changed"] = True
        confirming = False
    status = 200
    try:
        plan = plan_case(**opening)
        if confirming:
            case = open_case(
                **opening,
                trigger_notes=data["trigger_notes"],
                allow_duplicate=data["allow_duplicate"],
            )
            return redirect(reverse("web:case-detail", args=[case.ref]))
    except ValidationFailed as exc:
        add_errors(form, exc, ALIASES)
        return render(request, "web/open_case.html", context, status=422)
    except DuplicateCase as exc:
        # Not acknowledged, or opened since the preview: the preview again, naming the case.
        plan = replace(plan, open_cases=exc.open_cases)
        form.add_error(
            "allow_duplicate",
            f"{exc.headline} Tick this box if another case is intended, then confirm again.",
        )
        status = 422
    phases: dict[str, list[dict[str, Any]]] = {}
    for step in plan.steps:
        phases.setdefault(step["phase"], []).append(step)
    context.update(
        {
            "plan": plan,
            "phases": phases,
            "version": version,
            "fingerprint": fingerprint,
            "today": clock.now().date(),
            "seed_counts": {k.replace("_", " "): len(v) for k, v in plan.seeds.items() if v},
            "steps_required": sum(1 for step in plan.steps if step["required"]),
            "steps_in_playbook": len(version.spec.steps),
            "steps_for_other_fees": len(version.spec.steps) - len(plan.steps),
        }
    )
    return render(request, "web/open_case.html", context, status=status)
