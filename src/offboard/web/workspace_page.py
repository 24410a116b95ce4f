"""The case workspace page: everything `/cases/<ref>/` shows, read in a number of queries
independent of the case's size. The actions posted from it are in `workspace.py`."""

import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from offboard import labels
from offboard.accounts.models import Membership
from offboard.accounts.selectors import members
from offboard.cases import selectors
from offboard.cases.gates import READINESS, Gate, unmet_gates
from offboard.cases.links import CaseLinks
from offboard.cases.models import OffboardingCase, Step
from offboard.cases.provenance import Provenance, provenance
from offboard.cases.registers import BY_PREFIX, REGISTERS, RegisterSpec
from offboard.cases.state import state_digest
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import NotFound
from offboard.core.permissions import can
from offboard.ledger.selectors import case_events
from offboard.notifications.selectors import receipt_for, receipt_status
from offboard.notifications.services import closure_recipients
from offboard.portal import selectors as portal_selectors
from offboard.portal.services import LINK_DAYS, MAX_LINK_DAYS, RESPOND_DAYS, may_manage_links
from offboard.web import fragments, page_cache
from offboard.web import workspace_forms as forms
from offboard.web.pages.common import membership_of
from offboard.web.workspace_steps import StepItems, step_items

# Regions of the page an HTMX action refreshes besides the item it acted on.
# `steps`: settling a register item can complete the steps about it (cases/links.py).
REGIONS = ("case-header", "closure", "steps", "approvals", "register-tabs", "waivers", "timeline")
TIMELINE_SHOWN = 50
State = OffboardingCase.State


def item_anchor(kind: str, pk: int) -> str:
    """The element id of a step or register item on the workspace (`#step-7`, `#access_grants-3`).
    `kind` is "step", a register key or an event prefix ("access_grant")."""
    if kind == "step":
        return f"step-{pk}"
    key = BY_PREFIX[kind].key if kind in BY_PREFIX else kind
    return f"{key}-{pk}"


def case_url(ref: str, anchor: str = "") -> str:
    url = reverse("web:case-detail", args=[ref])
    return f"{url}#{anchor}" if anchor else url


# --- what the page shows ------------------------------------------------------------------------


@dataclass
class Failure:
    """A refused action: which form, the service's message and its per-field errors."""

    form: str
    message: str
    status: int
    fields: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    in_place: bool = False  # shown next to its form; otherwise the header shows it


@dataclass
class GateView:
    gate: Gate
    links: list[tuple[str, str]]

    @property
    def headline(self) -> str:
        """The message without its list of objects, which the links show one by one."""
        if self.gate.objects and " (" in self.gate.message:
            return self.gate.message.split(" (", 1)[0] + "."
        return self.gate.message

    @property
    def more_href(self) -> str:
        """Where the objects not linked one by one are listed."""
        kind = self.gate.objects[0]["type"] if self.gate.objects else ""
        if kind == "step":
            return "#steps"
        return f"#panel-{BY_PREFIX[kind].key}" if kind in BY_PREFIX else "#approvals"


def _shown_of(obj: Any) -> tuple[Any, ...]:
    """What a row shows of a step or register item itself, for its fingerprint: its model and
    every column, its owner's names, its evidence files."""
    owner = obj.owner
    return (
        type(obj).__name__,
        tuple(getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields),
        (owner.pk, owner.username, owner.first_name, owner.last_name),
        tuple((f.pk, f.sha256, f.original_name) for f in obj.evidence.all()),
    )


@dataclass
class StepRow:
    step: Step
    may_work: bool
    overdue: bool
    failure: Failure | None = None
    completed_by: str = ""
    after: list[tuple[str, str]] = field(default_factory=list)  # (title, anchor) it waits for
    items: StepItems | None = None  # the register items it is about

    @property
    def anchor(self) -> str:
        return f"step-{self.step.pk}"

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything ws_step_row.html reads, for web/fragments.py: every column of the step,
        its owner's names, its evidence files, and the row's own facts."""
        return (
            *_shown_of(self.step),
            self.may_work,
            self.overdue,
            self.completed_by,
            tuple(self.after),
            repr(self.items),
        )

    @property
    def settled(self) -> bool:
        return self.step.status in (Step.Status.DONE, Step.Status.NOT_APPLICABLE)

    def failed(self, action: str) -> Failure | None:
        f = self.failure
        return f if f and f.form == f"{self.anchor}-{action}" else None

    @property
    def failed_complete(self) -> Failure | None:
        return self.failed("complete")

    @property
    def failed_na(self) -> Failure | None:
        return self.failed("not-applicable")

    @property
    def failed_reopen(self) -> Failure | None:
        return self.failed("reopen")


@dataclass
class ItemRow:
    item: Any
    anchor: str
    edit_fields: list[forms.FieldView]
    failure: Failure | None = None
    details: list[str] = field(default_factory=list)
    dispute: Any = None  # the client's latest dispute of the item, while it stands
    provenance: Provenance | None = None  # how its settled fact is known, and when

    def failed(self, action: str) -> Failure | None:
        f = self.failure
        return f if f and f.form == f"{self.anchor}-{action}" else None

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything ws_item_row.html reads, for web/fragments.py: every column of the item,
        its owner's names, its evidence files, its forms' fields, and the row's own facts."""
        d = self.dispute
        return (
            *_shown_of(self.item),
            repr(self.edit_fields),
            tuple(self.details),
            repr(self.provenance),
            (d.pk, d.contact.name, d.at, d.comment) if d is not None else None,
            tuple(self.documents),
            self.shown,
        )

    @property
    def documents(self) -> list[tuple[str, str]]:
        """What a quick action's "vendor's document" can name."""
        return forms.document_choices(self.item)

    @property
    def shown(self) -> tuple[str, str, str]:
        """(source, document, vendor) as a quick action's form shows them."""
        return forms.shown_source(self.item)

    @property
    def failed_edit(self) -> Failure | None:
        return self.failed("edit")

    @property
    def failed_revoke(self) -> Failure | None:
        return self.failed("revoke")

    @property
    def failed_verify(self) -> Failure | None:
        return self.failed("verify")

    @property
    def failed_transfer(self) -> Failure | None:
        return self.failed("transfer")


@dataclass
class RegisterView:
    spec: RegisterSpec
    rows: list[ItemRow]
    add_fields: list[forms.FieldView]
    may_edit: bool
    failure: Failure | None = None
    blocking: int = 0

    @property
    def key(self) -> str:
        return self.spec.key


def case_or_404(membership: Membership, ref: str, *, full: bool = False) -> OffboardingCase:
    try:
        return selectors.get_case(membership.org, ref, full=full)
    except NotFound as exc:
        raise Http404(str(exc)) from None


def _gate_links(gate: Gate, names: dict[tuple[str, int], str]) -> list[tuple[str, str]]:
    """Where each object of a gate is fixed, named as the page names it (a step by its title,
    not its key)."""
    links = []
    for obj in gate.objects:
        if obj["type"] == "approval":
            continue
        label = names.get((obj["type"], obj["id"])) or re.sub(r" \[[a-z_ ]+\]", "", obj["label"])
        links.append((label, "#" + item_anchor(obj["type"], obj["id"])))
    if not links:
        if gate.code.startswith("settlement"):
            links.append(("Add the final invoice", "#settlements-add"))
        else:
            links.append(("Approvals", "#approvals"))
    return links


def _names(case: OffboardingCase) -> dict[tuple[str, int], str]:
    """(kind, id) → how the page names each step and register item."""
    names = {("step", s.pk): s.title for s in case.steps.all()}
    for spec in REGISTERS.values():
        names.update(
            {(spec.event_prefix, i.pk): labels.item_label(i) for i in getattr(case, spec.key).all()}
        )
    return names


def _may(actor: Actor, case: OffboardingCase) -> dict[str, bool]:
    is_open = case.is_open
    started = case.state in (State.ACTIVE, State.CLOSING)
    roles = set((case.approval_policy or {}).get("roles", ["manager", "admin"]))
    return {
        "work": is_open and can(actor, "cases.work"),
        "settle": is_open and can(actor, "cases.settle"),
        "edit_registers": is_open and started,
        "waive": is_open and can(actor, "cases.waive"),
        "approve": case.state == State.CLOSING
        and can(actor, "cases.approve")
        and actor.role in roles,
        "transition": is_open and can(actor, "cases.transition"),
        "addendum": not is_open and can(actor, "cases.addendum"),
        "upload": can(actor, "evidence.upload"),
        "read_files": can(actor, "evidence.read"),
        "export": can(actor, "cases.export"),
        # Links can be revoked on a closed case too; sent only while the case is under way.
        "portal": may_manage_links(actor, case),
        "send_link": started and may_manage_links(actor, case),
        "deem": started and can(actor, "portal.deem"),
    }


def _may_work_step(actor: Actor, step: Step) -> bool:
    owns = actor.role != "auditor" and (
        actor.role == step.owner_role or step.owner_id == actor.user.pk
    )
    return owns or can(actor, "cases.work")


def _details(register: str, item: Any) -> list[str]:
    """The second line of a register row: what identifies the item beyond its label."""
    if register == "access_grants":
        parts = [item.get_direction_display(), f"plan: {item.planned_action}", item.privilege]
    elif register == "deliverables":
        due = f"due {item.due_date:%-d %b %Y}" if item.due_date else ""
        parts = [item.sow_reference, due, item.delivery_method]
    elif register == "handover_items":
        kind = labels.label(item.kind, "kind")
        parts = [
            kind[:1].upper() + kind[1:],
            f"to {item.new_owner}" if item.new_owner else "",
            item.method,
            item.reference,
        ]
    elif register == "data_dispositions":
        method = item.get_method_display() if item.method else ""
        parts = [item.action, method, item.retention_basis[:80]]
    else:
        amount = f"{item.amount} {item.currency}" if item.amount is not None else ""
        parts = [amount, item.description]
    return [p for p in parts if p]


@dataclass
class PortalView:
    """The client-portal section: links, the contacts they can go to, the responses."""

    links: list["LinkRow"]
    contacts: list[Any]
    responses: list[Any]
    default_days: int = LINK_DAYS
    default_respond_days: int = RESPOND_DAYS
    max_days: int = MAX_LINK_DAYS

    def disputes(self) -> dict[tuple[str, int], Any]:
        """(register, item id) → the latest dispute naming the item."""
        found: dict[tuple[str, int], Any] = {}
        for response in self.responses:  # newest first
            if response.kind == "disputed":
                for item in response.items:
                    found.setdefault((item.get("register"), item.get("id")), response)
        return found


@dataclass
class LinkRow:
    link: Any  # a PortalLink with `reminder_count` and `response_count`
    status: str
    deadline_passed: bool
    failure: Failure | None = None

    @property
    def revoke_failed(self) -> bool:
        return self.failure is not None and self.failure.form.endswith("-revoke")

    @property
    def unconfirmed(self) -> bool:
        """A revocation posted without its confirmation: the page shows the dialog again."""
        return self.revoke_failed and "confirm" in self.failure.fields  # type: ignore[union-attr]


def _portal(case: OffboardingCase, now: Any, failure: Failure | None) -> PortalView:
    rows = []
    for link in portal_selectors.links_with_counts(case):
        mine = failure is not None and failure.form.startswith(f"portal-{link.pk}-")
        rows.append(
            LinkRow(
                link=link,
                status=link.status_at(now),
                deadline_passed=link.respond_by < now,
                failure=failure if mine else None,
            )
        )
    return PortalView(
        links=rows,
        contacts=list(portal_selectors.link_contacts(case)),
        responses=list(portal_selectors.case_responses(case)),
    )


def _registers(
    case: OffboardingCase,
    actor: Actor,
    may: dict[str, bool],
    member_choices: list[tuple[str, str]],
    failure: Failure | None,
    disputes: dict[tuple[str, int], Any],
) -> list[RegisterView]:
    views = []
    owner = str(case.owner_id)
    for key, spec in REGISTERS.items():
        capability = "cases.settle" if key == "settlements" else "cases.work"
        allowed = case.is_open and can(actor, capability)
        rows = []
        for item in getattr(case, key).all():
            anchor = item_anchor(key, item.pk)
            mine = failure if failure and failure.form.startswith(anchor + "-") else None
            edit_failed = mine if mine and mine.form == f"{anchor}-edit" else None
            rows.append(
                ItemRow(
                    item=item,
                    anchor=anchor,
                    edit_fields=forms.register_fields(
                        spec,
                        prefix=f"{anchor}-edit",
                        item=item,
                        members=member_choices,
                        default_owner=owner,
                        submitted=edit_failed.values if edit_failed else None,
                        errors=edit_failed.fields if edit_failed else None,
                    )
                    if allowed
                    else [],
                    failure=mine,
                    details=_details(key, item),
                    provenance=provenance(item),
                    dispute=disputes.get((key, item.pk))
                    if item.status in portal_selectors.DISPUTED.get(key, ())
                    else None,
                )
            )
        add_failed = failure if failure and failure.form == f"{key}-add" else None
        views.append(
            RegisterView(
                spec=spec,
                rows=rows,
                add_fields=forms.register_fields(
                    spec,
                    prefix=f"{key}-add",
                    members=member_choices,
                    default_owner=owner,
                    submitted=add_failed.values if add_failed else None,
                    errors=add_failed.fields if add_failed else None,
                )
                if allowed
                else [],
                may_edit=allowed and may["edit_registers"],
                failure=add_failed,
            )
        )
    return views


def _waiver_targets(case: OffboardingCase, registers: list[RegisterView]) -> list[tuple[str, str]]:
    targets = [
        (f"step:{s.pk}", f"Step · {s.title}")
        for s in case.steps.all()
        if s.status not in (Step.Status.DONE, Step.Status.NOT_APPLICABLE)
    ]
    for view in registers:
        noun = labels.label(view.spec.event_prefix, "item")
        targets += [
            (f"{view.spec.event_prefix}:{r.item.pk}", f"{noun} · {labels.item_label(r.item)}")
            for r in view.rows
        ]
    return targets


def _shown_in_place(
    failure: Failure,
    phases: dict[str, list[StepRow]],
    registers: list[RegisterView],
    may: dict[str, bool],
) -> bool:
    """Whether the form that failed is on the page to show its message (a closed case shows
    no step forms, a role without the right sees none): if not, the header shows it."""
    form = failure.form
    if form == "lifecycle-cancel":
        return may["cancel"]  # the dialog with the reason shows it
    if form == "lifecycle-close" and "confirm" in failure.fields:
        return may["close"]  # the confirmation dialog shows it
    if form.startswith("step-"):
        return any(
            r.may_work and form.startswith(r.anchor + "-") for rs in phases.values() for r in rs
        )
    for view in registers:
        if form == f"{view.key}-add":
            return bool(view.add_fields)
        if form.startswith(f"{view.key}-"):
            return view.may_edit
    if form == "waiver-add":
        return may["waive"]
    if form == "addendum":
        return may["addendum"]
    if form == "case-edit":
        return may["transition"]
    if form == "portal-send":
        return may["send_link"]
    if form.startswith("portal-"):
        return may["portal"] or may["deem"]
    return form == "approve" or form.startswith("waiver-")


def workspace_context(
    request: HttpRequest,
    membership: Membership,
    ref: str,
    *,
    failure: Failure | None = None,
    target: str = "",
) -> dict[str, Any]:
    """Everything the workspace shows, in a number of queries independent of the case's size."""
    case = case_or_404(membership, ref, full=True)
    actor = Actor.from_membership(membership)
    may = _may(actor, case)
    digest = state_digest(case)
    gates = unmet_gates(case, digest) if case.is_open else []
    # The final actions, each behind a dialog that says what it will do.
    may["close"] = may["transition"] and case.state == State.CLOSING and not gates
    may["cancel"] = may["transition"] and case.state in (State.DRAFT, State.ACTIVE)
    today = timezone.localdate()
    people = list(members(membership.org))
    names = {m.user_id: m.user.get_full_name() or m.user.username for m in people}
    member_choices = [(str(m.user_id), names[m.user_id]) for m in people if m.can_own_work]
    started = case.state in (State.ACTIVE, State.CLOSING)
    phases: dict[str, list[StepRow]] = {}
    by_key = {s.key: s for s in case.steps.all()}
    links = CaseLinks(case)
    for step in case.steps.all():
        row = StepRow(
            step=step,
            may_work=started and _may_work_step(actor, step),
            overdue=step.due_date < today
            and step.status not in (Step.Status.DONE, Step.Status.NOT_APPLICABLE),
            failure=failure if failure and failure.form.startswith(f"step-{step.pk}-") else None,
            completed_by=names.get(step.completed_by_id or 0, ""),
            after=[
                (by_key[k].title, f"step-{by_key[k].pk}") for k in step.depends_on if k in by_key
            ],
            items=step_items(links, step, by_key),
        )
        phases.setdefault(step.phase, []).append(row)
    now = clock.now()
    portal = _portal(case, now, failure)
    registers = _registers(case, actor, may, member_choices, failure, portal.disputes())
    blocking: dict[str, int] = {}
    for gate in gates:
        for obj in gate.objects:
            if obj["type"] in BY_PREFIX:
                key = BY_PREFIX[obj["type"]].key
                blocking[key] = blocking.get(key, 0) + 1
    for view in registers:
        view.blocking = blocking.get(view.key, 0)
    events = case_events(case).select_related("actor_user")
    total_events = events.count()
    show_all = request.GET.get("events") == "all"
    if show_all or total_events <= TIMELINE_SHOWN:
        shown_events = list(events)
    else:
        shown_events = list(events.order_by("-index")[:TIMELINE_SHOWN])[::-1]
    if failure is not None:
        failure.in_place = _shown_in_place(failure, phases, registers, may)
    approvals = list(case.approvals.all())
    receipt = receipt_for(case) if case.state == State.CLOSED else None
    readiness = [g for g in gates if g.kind == READINESS]
    item_names = _names(case) if gates else {}
    steps_total = sum(1 for s in case.steps.all() if s.required)
    steps_settled = sum(
        1
        for s in case.steps.all()
        if s.required and s.status in (Step.Status.DONE, Step.Status.NOT_APPLICABLE)
    )
    return {
        "membership": membership,
        "case": case,
        "may": may,
        "gates": [GateView(g, _gate_links(g, item_names)) for g in gates],
        "readiness_unmet": len(readiness),
        "digest": digest,
        "days_left": (case.effective_end_date - today).days,
        "days_over": (today - case.effective_end_date).days,
        "phases": phases,
        "steps_total": steps_total,
        "steps_in_case": len(case.steps.all()),
        "steps_settled": steps_settled,
        "registers": registers,
        "waivers": list(case.waivers.all()),
        "waiver_targets": _waiver_targets(case, registers) if may["waive"] else [],
        "approvals": approvals,
        "my_current_approval": next(
            (
                a
                for a in approvals
                if a.approver_id == actor.user.pk
                and a.state_digest == digest
                and a.invalidated_at is None
            ),
            None,
        ),
        "addenda": list(case.addenda.all()),
        "events": shown_events,
        "total_events": total_events,
        "events_capped": not show_all and total_events > TIMELINE_SHOWN,
        "receipt": receipt,
        # Whom closing would email the receipt to, named in the dialog before anyone confirms.
        "closure_recipients": closure_recipients(membership.org, case.client)
        if may["close"]
        else [],
        "receipt_status": receipt_status(receipt) if receipt else "",
        "can_export": may["export"],
        "failure": failure,
        "target": target,
        "target_step": next(
            (r for rows in phases.values() for r in rows if r.anchor == target), None
        ),
        "target_register": next((v for v in registers if f"panel-{v.key}" == target), None),
        "portal": portal,
        "member_choices": member_choices,
        "regions": REGIONS,
        "now": now,
    }


BODY = "web/partials/ws_body.html"


def page(
    request: HttpRequest, membership: Membership, title: str, body: str, *, status: int = 200
) -> HttpResponse:
    """The workspace page: the frame (menu, messages) around `body`, whose CSRF placeholders
    get the request's token."""
    context = {
        "membership": membership,
        "title": title,
        "body": fragments.with_token(request, body),
    }
    return render(request, "web/case_detail.html", context, status=status)


def page_of(
    request: HttpRequest, membership: Membership, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """The workspace page built from `context`, kept nowhere (an answer to an action)."""
    return page(request, membership, *page_cache.built(request, context, BODY), status=status)


@login_required
def case_detail(request: HttpRequest, ref: str) -> HttpResponse:
    membership = membership_of(request)
    title, body = page_cache.workspace_body(
        request, membership, ref, lambda: workspace_context(request, membership, ref), BODY
    )
    return page(request, membership, title, body)
