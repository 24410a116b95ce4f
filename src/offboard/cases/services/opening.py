"""Opening a case from a trigger: dates from the contract, steps and registers from the playbook.

One check (`validate_opening`) serves the previews and the opening itself, so a preview never
accepts what opening would refuse; a second open case for the same client and contract is
opened only when the caller says it is intended (`allow_duplicate`).
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from offboard.accounts.models import Membership, Organization
from offboard.cases.models import OffboardingCase, Step
from offboard.cases.registers import REGISTERS
from offboard.cases.selectors import open_cases_covering
from offboard.cases.services.common import member_user
from offboard.clients.models import Client, Contract
from offboard.core import clock
from offboard.core.actor import Actor, EndpointActor
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.permissions import require
from offboard.core.validation import Errors
from offboard.evidence.models import EvidenceFile
from offboard.ledger import store
from offboard.ledger.recorder import record_event
from offboard.playbooks.models import PlaybookVersion
from offboard.playbooks.spec import PlaybookSpec
from offboard.reminders.queue import queue_assignments

END_DATE_TRIGGERS = {OffboardingCase.Trigger.CONTRACT_EXPIRY, OffboardingCase.Trigger.NON_RENEWAL}


@dataclass(frozen=True)
class CaseDates:
    trigger: dt.date
    notice: dt.date
    end: dt.date
    data_return_deadline: dt.date

    def anchor(self, name: str) -> dt.date:
        return {"trigger": self.trigger, "notice": self.notice, "end": self.end}[name]


def compute_dates(
    *,
    contract: Contract,
    trigger: str,
    trigger_date: dt.date,
    effective_end_date: dt.date | None = None,
) -> CaseDates:
    """The notice date is when the notice was received (else the trigger date); the effective
    end is the contract's end for expiry and non-renewal, else notice + notice period."""
    notice = contract.notice_received_at.date() if contract.notice_received_at else trigger_date
    if effective_end_date is None:
        if trigger in END_DATE_TRIGGERS and contract.end_date:
            effective_end_date = contract.end_date
        else:
            effective_end_date = notice + dt.timedelta(days=contract.notice_period_days)
    return CaseDates(
        trigger=trigger_date,
        notice=notice,
        end=effective_end_date,
        data_return_deadline=effective_end_date
        + dt.timedelta(days=contract.data_return_window_days),
    )


def _next_ref(org: Organization, year: int) -> str:
    # FOR NO KEY UPDATE: queues the openings, but not every other action's foreign-key
    # check on the organization at commit (FOR UPDATE deadlocked with those: fleet test).
    locked = Organization.objects.select_for_update(no_key=True).get(pk=org.pk)
    number = locked.next_case_number
    Organization.objects.filter(pk=org.pk).update(next_case_number=number + 1)
    return f"C-{year}-{number:04d}"


def _resolve_owner(
    org: Organization,
    role: str,
    case_owner: Any,
    assignments: dict[str, Any],
    by_role: dict[str, Any],
) -> Any:
    if role == "case_owner":
        return case_owner
    if role in assignments:
        return assignments[role]
    return by_role.get(role, case_owner)


def plan_steps(spec: PlaybookSpec, fee_type: str, dates: CaseDates) -> list[dict[str, Any]]:
    """The steps a case would get, with due dates, for preview and for opening."""
    return [
        {
            "key": s.key,
            "position": i,
            "phase": s.phase,
            "title": s.title,
            "guidance": s.guidance,
            "category": s.category,
            "owner_role": s.owner_role,
            "due_anchor": s.due_anchor,
            "due_offset_days": s.due_offset_days,
            "due_date": dates.anchor(s.due_anchor) + dt.timedelta(days=s.due_offset_days),
            "required": s.required,
            "evidence_required": list(s.evidence),
            "depends_on": list(s.depends_on),
            "about": [selector.as_dict() for selector in s.about],
            "escalate_owner_days": s.escalate_owner_days,
            "escalate_managers_days": s.escalate_managers_days,
        }
        for i, s in enumerate(spec.steps_for(fee_type))
    ]


class DuplicateCase(Conflict):
    """The client already has an open case for a contract of the new one. `headline` names
    them; each interface adds how to open another anyway (a flag, an option, a checkbox)."""

    code = "duplicate_case"

    def __init__(
        self, client: Client, contracts: Sequence[Contract], open_cases: Sequence[OffboardingCase]
    ) -> None:
        wanted = {c.pk for c in contracts}
        shared = sorted(
            {c.reference for case in open_cases for c in case.contracts.all() if c.pk in wanted}
        )
        self.open_cases = list(open_cases)
        listed = ", ".join(f"{c.ref} ({c.state})" for c in self.open_cases)
        self.headline = (
            f"{client.name} already has an open case for contract{'s' if len(shared) > 1 else ''} "
            f"{', '.join(shared)}: {listed}."
        )
        super().__init__(
            f"{self.headline} Work on {'it' if len(self.open_cases) == 1 else 'one of them'}, "
            "or confirm that another case is intended.",
            details={
                "open_cases": [
                    {
                        "ref": case.ref,
                        "state": case.state,
                        "contracts": sorted(
                            c.reference for c in case.contracts.all() if c.pk in wanted
                        ),
                    }
                    for case in self.open_cases
                ]
            },
        )


@dataclass(frozen=True)
class CasePlan:
    """What opening a case would create, computed without writing anything: the dates, each
    step with its due date and owner, the register items seeded from the playbook, and the
    client's cases already open for the same contracts."""

    owner: Any
    fee_type: str
    dates: CaseDates
    steps: list[dict[str, Any]]  # plan_steps() rows, each with its resolved "owner" user
    seeds: dict[str, tuple[dict[str, Any], ...]]
    by_role: dict[str, Any]
    open_cases: list[OffboardingCase]


def _member_or_error(errors: Errors, org: Organization, user_id: Any, field: str) -> Any:
    try:
        return member_user(org, user_id, field)
    except ValidationFailed as exc:
        for name, problems in exc.errors.items():
            for problem in problems:
                errors.add(name, problem)
        return None


def validate_opening(
    *,
    org: Organization,
    client: Client,
    contracts: Sequence[Contract],
    trigger: str,
    trigger_date: dt.date,
    owner_id: int,
    playbook_version: PlaybookVersion,
    scope: str = OffboardingCase.Scope.FULL,
    scope_notes: str = "",
    effective_end_date: dt.date | None = None,
    assignments: dict[str, int] | None = None,
    trigger_evidence: Sequence[EvidenceFile] = (),
) -> CasePlan:
    """The one check of an opening, for the previews (web, API) and `open_case` alike: every
    problem of the request as a field error at once, then the plan. Writes nothing."""
    errors = Errors()
    errors.choice("trigger", trigger, OffboardingCase.Trigger.values)
    errors.choice("scope", scope, OffboardingCase.Scope.values)
    if client.org_id != org.pk:
        errors.add("client", f"client {client.pk} is not a client of this organization")
    if not contracts:
        errors.add("contracts", "at least one contract of the client is required")
    for c in contracts:
        if c.client_id != client.pk:
            errors.add("contracts", f"contract {c.reference} belongs to another client")
    if not isinstance(trigger_date, dt.date):
        errors.add("trigger_date", "is required")
    if scope == OffboardingCase.Scope.PARTIAL and not (scope_notes or "").strip():
        errors.add("scope_notes", "a partial exit must say what is in scope")
    if playbook_version.org_id != org.pk:
        errors.add("playbook", "is not a playbook of this organization")
    for f in trigger_evidence:
        if f.org_id != org.pk:
            errors.add(
                "trigger_evidence", f"no evidence file with sha256 {f.sha256}; upload it first"
            )
    owner = _member_or_error(errors, org, owner_id, "owner_id")
    assigned = {
        role: _member_or_error(errors, org, uid, f"assignments.{role}")
        for role, uid in (assignments or {}).items()
    }
    spec = playbook_version.spec
    fee_type = contracts[0].fee_type if contracts else ""
    if contracts and fee_type not in spec.fee_types:
        errors.add("playbook", f"playbook '{spec.slug}' does not cover fee type {fee_type}")
    errors.raise_if_any()

    dates = compute_dates(
        contract=contracts[0],
        trigger=trigger,
        trigger_date=trigger_date,
        effective_end_date=effective_end_date,
    )
    if dates.end < dates.trigger:
        raise ValidationFailed(
            {"effective_end_date": [f"{dates.end} is before the trigger date {dates.trigger}"]}
        )
    by_role: dict[str, Any] = {}
    for m in Membership.objects.select_related("user").filter(org=org).order_by("user__username"):
        by_role.setdefault(m.role, m.user)
    steps = [
        {**p, "owner": _resolve_owner(org, p["owner_role"], owner, assigned, by_role)}
        for p in plan_steps(spec, fee_type, dates)
    ]
    return CasePlan(
        owner=owner,
        fee_type=fee_type,
        dates=dates,
        steps=steps,
        seeds=spec.seeds_for(fee_type),
        by_role=by_role,
        open_cases=list(open_cases_covering(org, client, contracts)),
    )


def plan_case(
    *,
    actor: Actor,
    client: Client,
    contracts: Sequence[Contract],
    trigger: str,
    trigger_date: dt.date,
    owner_id: int,
    playbook_version: PlaybookVersion,
    scope: str = OffboardingCase.Scope.FULL,
    scope_notes: str = "",
    effective_end_date: dt.date | None = None,
    assignments: dict[str, int] | None = None,
    trigger_evidence: Sequence[EvidenceFile] = (),
) -> CasePlan:
    """Validate an opening and compute its plan; `open_case` creates exactly this plan, so a
    preview shown before confirming is what the case gets. Only who may open a case may plan
    one (the web page's preview names each step's owner); the API's preview, open to every
    role like any read, calls `validate_opening` itself."""
    require(actor, "cases.open")
    return validate_opening(
        org=actor.org,
        client=client,
        contracts=contracts,
        trigger=trigger,
        trigger_date=trigger_date,
        owner_id=owner_id,
        playbook_version=playbook_version,
        scope=scope,
        scope_notes=scope_notes,
        effective_end_date=effective_end_date,
        assignments=assignments,
        trigger_evidence=trigger_evidence,
    )


@transaction.atomic
def open_case(
    *,
    actor: Actor | EndpointActor,
    client: Client,
    contracts: Sequence[Contract],
    trigger: str,
    trigger_date: dt.date,
    owner_id: int,
    playbook_version: PlaybookVersion,
    scope: str = OffboardingCase.Scope.FULL,
    scope_notes: str = "",
    trigger_notes: str = "",
    effective_end_date: dt.date | None = None,
    trigger_evidence: Sequence[EvidenceFile] = (),
    assignments: dict[str, int] | None = None,
    draft: bool = False,
    allow_duplicate: bool = False,
) -> OffboardingCase:
    """Open a case for a client exit: pin the playbook, instantiate steps and registers.

    While the client has an open case for one of these contracts, refused (`DuplicateCase`)
    unless `allow_duplicate` says another case is intended; the event records that it was.
    `actor` is a member, or an inbound webhook endpoint (`offboard.inbound`), whose event
    names the endpoint and the delivery."""
    require(actor, "cases.open")
    # The log head first, as every action holds it from its event to its commit: an opening
    # that locked the organization and then waited for the head deadlocked with an action that
    # held the head and checked its foreign key to the organization at commit (fleet test).
    store.lock_head(actor.org)
    # Openings in one organization queue here, so two cannot both find no open case.
    Organization.objects.select_for_update(no_key=True).get(pk=actor.org.pk)
    plan = validate_opening(
        org=actor.org,
        client=client,
        contracts=contracts,
        trigger=trigger,
        trigger_date=trigger_date,
        owner_id=owner_id,
        playbook_version=playbook_version,
        scope=scope,
        scope_notes=scope_notes,
        effective_end_date=effective_end_date,
        assignments=assignments,
        trigger_evidence=trigger_evidence,
    )
    if plan.open_cases and not allow_duplicate:
        raise DuplicateCase(client, contracts, plan.open_cases)
    owner, fee_type, dates, by_role = plan.owner, plan.fee_type, plan.dates, plan.by_role
    spec = playbook_version.spec

    now = clock.now()
    case = OffboardingCase.objects.create(
        org=actor.org,
        ref=_next_ref(actor.org, trigger_date.year),
        client=client,
        trigger=trigger,
        trigger_date=trigger_date,
        trigger_notes=trigger_notes or "",
        scope=scope,
        scope_notes=scope_notes or "",
        fee_type=fee_type,
        notice_date=dates.notice,
        effective_end_date=dates.end,
        data_return_deadline=dates.data_return_deadline,
        owner=owner,
        playbook_version=playbook_version,
        playbook_sha256=playbook_version.sha256,
        approval_policy={
            "min_approvers": spec.approval_policy.min_approvers,
            "roles": list(spec.approval_policy.roles),
        },
        state=OffboardingCase.State.DRAFT if draft else OffboardingCase.State.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    case.contracts.set(contracts)
    case.trigger_evidence.set(trigger_evidence)
    planned = plan.steps
    Step.objects.bulk_create([Step(org=actor.org, case=case, **p) for p in planned])
    seeded: dict[str, int] = {}
    for key, items in plan.seeds.items():
        model = REGISTERS[key].model
        seed_owner = by_role.get("finance", owner) if key == "settlements" else owner
        extra = {"due_date": dates.end} if key == "deliverables" else {}
        model.objects.bulk_create(
            [
                model(
                    org=actor.org,
                    case=case,
                    owner=seed_owner,
                    created_at=now,
                    updated_at=now,
                    **extra,
                    **item,
                )
                for item in items
            ]
        )
        seeded[key] = len(items)
    # Opened beside an open case of the same contract: which, and that the opener said so.
    duplicate = (
        {"duplicate": {"open_cases": [c.ref for c in plan.open_cases], "acknowledged": True}}
        if plan.open_cases
        else {}
    )
    record_event(
        actor=actor,
        type="case.opened",
        case=case,
        data={
            "ref": case.ref,
            "client": {"id": client.pk, "name": client.name},
            "contracts": [c.reference for c in contracts],
            "trigger": trigger,
            "trigger_date": trigger_date,
            "trigger_notes": case.trigger_notes,
            "scope": scope,
            "scope_notes": case.scope_notes,
            "owner_id": owner.pk,
            "state": case.state,
            "playbook": {
                "slug": spec.slug,
                "version": playbook_version.version,
                "sha256": playbook_version.sha256,
            },
            "dates": {
                "notice": dates.notice,
                "effective_end": dates.end,
                "data_return_deadline": dates.data_return_deadline,
            },
            "steps": len(planned),
            "seeded": seeded,
            **duplicate,
        },
        files=trigger_evidence,
    )
    if case.state == OffboardingCase.State.ACTIVE:  # a draft's steps are assigned when it starts
        queue_assignments(case=case, assigned_by_user_id=actor.user.pk if actor.user else None)
    return case
