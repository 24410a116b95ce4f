"""A case's connector pages, reached from the Access tab: *Discover access* (fill the access
register from a connection) and *Revoke with connector* (choose grants, see the exact plan,
confirm; the run goes to a worker and its page shows live progress and each outcome).

Reads (discover, the plan) talk to the system within the request — they change nothing and
record nothing. The run itself is `connectors.runs.request_run`: one transaction, one event,
its job enqueued with it."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.cases import selectors as cases
from offboard.cases.models import AccessGrant, OffboardingCase
from offboard.connectors import selectors as connections
from offboard.connectors.base import Account, ConnectorError, Match
from offboard.connectors.models import Connection, ConnectorRun
from offboard.connectors.runs import approve_run, decline_run, request_run
from offboard.connectors.services import add_discovered_grants, discover_accounts, plan_grants
from offboard.core.errors import CaseClosed, Conflict, NotFound, ValidationFailed
from offboard.core.permissions import can, require
from offboard.web.pages.common import actor_of, staff_page
from offboard.web.pages.connections import KIND_LABELS


def _case(membership: Membership, ref: str) -> OffboardingCase:
    return cases.get_case(membership.org, ref)


def _active(membership: Membership) -> list[Connection]:
    return list(connections.connections(membership.org).filter(state=Connection.State.ACTIVE))


def _connection(membership: Membership, raw: str) -> Connection | None:
    try:
        pk = int(raw)
    except (TypeError, ValueError):
        return None
    return connections.connections(membership.org).filter(pk=pk).first()


def _revocable(case: OffboardingCase) -> list[AccessGrant]:
    """Grants a connector may act on: to be revoked, and not yet observed absent."""
    return list(
        AccessGrant.objects.filter(org=case.org_id, case=case, planned_action="revoke")
        .exclude(verification_level=AccessGrant.Verification.OBSERVED)
        .order_by("id")
    )


def _access_tab(case: OffboardingCase) -> str:
    return reverse("web:case-detail", args=[case.ref]) + "#panel-access_grants"


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(request, template, context, status=status)


def _email_domains(case: OffboardingCase) -> str:
    found = {
        c.email.rsplit("@", 1)[1].lower()
        for c in case.client.contacts.all()
        if c.email and "@" in c.email
    }
    return " ".join(sorted(found))


def _split(raw: str) -> tuple[str, ...]:
    return tuple(p for p in raw.replace(",", " ").split() if p)


@staff_page
def discover(request: HttpRequest, membership: Membership, ref: str) -> HttpResponse:
    """GET: the form; POST `find`: the accounts found; POST `add`: put the chosen ones on the
    access register (found again, so nothing the browser sent is trusted as an account)."""
    case = _case(membership, ref)
    actor = actor_of(request, membership)
    require(actor, "cases.work")
    post = request.POST
    values = {
        "connection": post.get("connection", ""),
        "domains": post.get("domains", _email_domains(case)) if post else _email_domains(case),
        "groups": post.get("groups", ""),
        "prefixes": post.get("prefixes", ""),
        "ids": post.get("ids", ""),
        "direction": post.get("direction", AccessGrant.Direction.CLIENT_IN_PROVIDER),
    }
    context: dict[str, Any] = {
        "membership": membership,
        "case": case,
        "connections": _active(membership),
        "values": values,
        "directions": AccessGrant.Direction.choices,
        "kind_labels": KIND_LABELS,
    }
    if request.method != "POST":
        return _page(request, "web/connectors/discover.html", context)
    connection = _connection(membership, values["connection"])
    if connection is None:
        context["problem"] = "Choose a connection."
        return _page(request, "web/connectors/discover.html", context, status=422)
    match = Match(
        email_domains=_split(values["domains"]),
        groups=_split(values["groups"]),
        role_prefixes=_split(values["prefixes"]),
        ids=_split(values["ids"]),
    )
    if match.is_empty():
        context["problem"] = "Give at least one e-mail domain, group, prefix or id to look for."
        return _page(request, "web/connectors/discover.html", context, status=422)
    try:
        found = discover_accounts(actor=actor, connection=connection, match=match)
    except (ConnectorError, ValidationFailed) as exc:
        context["problem"] = f"{connection.name}: {exc.message}"
        return _page(request, "web/connectors/discover.html", context, status=502)
    known = set(
        AccessGrant.objects.filter(
            org=case.org_id, case=case, linked_accounts__connection=connection
        ).values_list("linked_accounts__external_id", flat=True)
    )
    if post.get("do") == "add":
        chosen = set(post.getlist("account"))
        accounts: list[Account] = [a for a in found if a.external_id in chosen]
        try:
            add_discovered_grants(
                actor=actor,
                case=case,
                connection=connection,
                accounts=[a for a in accounts if a.external_id not in known],
                direction=values["direction"],
            )
        except (ValidationFailed, CaseClosed, Conflict) as exc:
            context["problem"] = exc.message
        else:
            return redirect(_access_tab(case))
    context.update(
        {
            "connection": connection,
            "found": [{"a": a, "known": a.external_id in known} for a in found],
            "searched": True,
        }
    )
    return _page(request, "web/connectors/discover.html", context)


@staff_page
def revoke(request: HttpRequest, membership: Membership, ref: str) -> HttpResponse:
    """GET: choose a connection and grants; POST `plan`: the exact operations, in order, to
    confirm; POST `run`: the run is requested and its page shown."""
    case = _case(membership, ref)
    actor = actor_of(request, membership)
    require(actor, "cases.work")
    post = request.POST
    grants = _revocable(case)
    chosen = {int(g) for g in post.getlist("grant") if g.isdigit()} if post else set()
    context: dict[str, Any] = {
        "membership": membership,
        "case": case,
        "connections": _active(membership),
        "grants": grants,
        "chosen": chosen,
        "selected_connection": post.get("connection", ""),
        "kind_labels": KIND_LABELS,
    }
    if request.method != "POST":
        return _page(request, "web/connectors/revoke.html", context)
    connection = _connection(membership, post.get("connection", ""))
    picked = [g for g in grants if g.pk in chosen]
    if connection is None or not picked:
        context["problem"] = "Choose a connection and at least one access grant."
        return _page(request, "web/connectors/revoke.html", context, status=422)
    if post.get("do") == "run":
        try:
            run = request_run(
                actor=actor,
                case=case,
                connection=connection,
                grants=picked,
                plan_sha256=post.get("plan_sha256", ""),
            )
        except (ValidationFailed, CaseClosed, Conflict) as exc:
            context["problem"] = exc.message
            return _page(request, "web/connectors/revoke.html", context, status=409)
        return redirect(reverse("web:connector-run", args=[case.ref, run.public_id]))
    try:
        dry = plan_grants(actor=actor, case=case, grants=picked, connection=connection)
    except (ConnectorError, ValidationFailed, CaseClosed, Conflict) as exc:
        context["problem"] = f"{connection.name}: {exc.message}"
        return _page(request, "web/connectors/revoke.html", context, status=422)
    by_account = {a.external_id: g for g, a in ((g, dry.accounts.get(g.pk)) for g in picked) if a}
    context.update(
        {
            "connection": connection,
            "plan": dry.plan,
            "plan_sha256": dry.plan.sha256(),
            "steps": [
                {"op": op, "grant": by_account.get(op.account_id)} for op in dry.plan.operations
            ],
            "unresolved": [(g, dry.unresolved[g.pk]) for g in picked if g.pk in dry.unresolved],
            "planned": True,
        }
    )
    return _page(request, "web/connectors/revoke.html", context)


def _run(membership: Membership, case: OffboardingCase, run_id: str) -> ConnectorRun:
    key = _uuid(run_id)
    if key is None:
        raise NotFound("No such connector run on this case.")
    run = (
        ConnectorRun.objects.filter(org=membership.org, case=case, public_id=key)
        .select_related("connection", "requested_by__user", "decided_by__user")
        .first()
    )
    if run is None:
        raise NotFound("No such connector run on this case.")
    return run


@require_POST
@staff_page
def decide(
    request: HttpRequest, membership: Membership, ref: str, run_id: str, decision: str
) -> HttpResponse:
    """Approve or decline a run its connection holds for a manager's approval."""
    case = _case(membership, ref)
    run = _run(membership, case, run_id)
    actor = actor_of(request, membership)
    try:
        if decision == "approve":
            approve_run(actor=actor, run=run)
        elif decision == "decline":
            decline_run(actor=actor, run=run, reason=request.POST.get("reason", ""))
        else:
            raise NotFound(f"No decision '{decision[:20]}'.")
    except (ValidationFailed, Conflict) as exc:
        return _status_page(request, membership, case, run, problem=exc.message, status=422)
    return redirect(reverse("web:connector-run", args=[case.ref, run.public_id]))


@staff_page
def run_status(request: HttpRequest, membership: Membership, ref: str, run_id: str) -> HttpResponse:
    """The run's progress and each grant's outcome; refreshes itself while it runs."""
    case = _case(membership, ref)
    return _status_page(request, membership, case, _run(membership, case, run_id))


def _status_page(
    request: HttpRequest,
    membership: Membership,
    case: OffboardingCase,
    run: ConnectorRun,
    *,
    problem: str = "",
    status: int = 200,
) -> HttpResponse:
    percent = int(100 * run.done / run.total) if run.total else 100
    rows = {r["grant"]: r for r in run.results}
    labels = {g.pk: g.label() for g in AccessGrant.objects.filter(pk__in=run.grant_ids)}
    return _page(
        request,
        "web/connectors/run.html",
        {
            "membership": membership,
            "case": case,
            "run": run,
            "percent": percent,
            "rows": [
                {"label": labels.get(pk, f"grant {pk}"), "r": rows.get(pk)} for pk in run.grant_ids
            ],
            "still_open": sum(
                1 for pk in run.grant_ids if (rows.get(pk) or {}).get("observation") != "absent"
            ),
            "kind_labels": KIND_LABELS,
            "may_decide": run.state == ConnectorRun.State.AWAITING_APPROVAL
            and can(actor_of(request, membership), "connectors.approve")
            and run.requested_by_id != membership.pk,
            "problem": problem,
        },
        status=status,
    )


def _uuid(raw: str) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None
