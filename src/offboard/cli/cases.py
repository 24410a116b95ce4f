"""`offboard case …`: list, show, open and move cases through their lifecycle."""

from pathlib import Path
from typing import Annotated, Any

import typer

from offboard.cli.case_view import case_detail, case_summary, print_case_detail, print_case_table
from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    fail,
    fields_as_options,
    membership,
    parse_date,
    resolve_actor,
    resolve_org,
    say,
)
from offboard.core.errors import ValidationFailed

app = typer.Typer(
    no_args_is_help=True,
    help="Offboarding cases: list and show them, open one from a trigger, take it to closed.",
)

TRIGGERS = (
    "contract_expiry",
    "termination_by_client",
    "termination_by_provider",
    "non_renewal",
    "scope_reduction",
    "breach",
    "other",
)
RefArgument = Annotated[
    str, typer.Argument(metavar="REF", help="Case reference, e.g. C-2026-0042.")
]


def _load(org: Any, ref: str) -> tuple[Any, dict[str, Any]]:
    """The case with everything, and its full detail (gates, digest, events)."""
    from offboard.cases.gates import unmet_gates
    from offboard.cases.selectors import get_case
    from offboard.cases.state import state_digest
    from offboard.core import clock
    from offboard.ledger.selectors import case_events

    case = get_case(org, ref, full=True)
    digest = state_digest(case)
    detail = case_detail(
        case,
        gates=unmet_gates(case, digest),
        digest=digest,
        events=list(case_events(case)),
        addenda=list(case.addenda.select_related("author").prefetch_related("evidence")),
        today=clock.today(),
    )
    return case, detail


def _status(org: Any, ref: str) -> dict[str, Any]:
    """What a script wants after a transition: the header, the gates and the digest."""
    _, detail = _load(org, ref)
    keys = (
        "ref",
        "state",
        "client",
        "owner",
        "effective_end_date",
        "closing_at",
        "closed_at",
        "cancel_reason",
        "approvals",
        "unmet_gates",
        "state_digest",
    )
    return {k: detail[k] for k in keys}


# --- reading ---------------------------------------------------------------------------------


@app.command("list")
def list_cases(
    org: OrgOption = None,
    state: Annotated[
        str | None,
        typer.Option(help="Only cases in this state: draft, active, closing, closed or cancelled."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the organization's cases, newest first."""
    ensure_django()
    from offboard.cases.models import OffboardingCase
    from offboard.cases.selectors import cases

    organization = resolve_org(org)
    if state and state not in OffboardingCase.State.values:
        raise ValidationFailed(
            {"--state": [f"'{state}' is not one of: {', '.join(OffboardingCase.State.values)}"]}
        )
    summaries = [case_summary(c) for c in cases(organization, state=state)]
    if as_json:
        emit_json(summaries)
    else:
        print_case_table(summaries)


@app.command()
def show(
    ref: RefArgument,
    org: OrgOption = None,
    events: Annotated[int, typer.Option(help="How many of the latest events to show.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show a case: steps by phase, each register, waivers, approvals, unmet gates, events."""
    ensure_django()
    _, detail = _load(resolve_org(org), ref)
    if as_json:
        emit_json(detail)
    else:
        print_case_detail(detail, events=events)


# --- opening ---------------------------------------------------------------------------------


def _find_client(org: Any, value: str) -> Any:
    from offboard.clients.selectors import clients

    qs = clients(org)
    found = qs.filter(pk=int(value)).first() if value.isdigit() else None
    found = found or qs.filter(name=value).first() or qs.filter(name__iexact=value).first()
    if found is None:
        raise ValidationFailed({"--client": [f"no client '{value}' in organization '{org.slug}'"]})
    return found


def _find_contracts(org: Any, references: list[str]) -> list[Any]:
    from offboard.clients.selectors import contracts

    found, missing = [], []
    for reference in references:
        contract = contracts(org).filter(reference=reference).first()
        if contract is None:
            missing.append(reference)
        else:
            found.append(contract)
    if missing:
        raise ValidationFailed(
            {"--contract": [f"no contract '{r}' in organization '{org.slug}'" for r in missing]}
        )
    return found


def _find_member(org: Any, username: str) -> Any:
    from offboard.core.errors import NotFound

    try:
        return membership(org, username).user
    except NotFound:
        raise ValidationFailed(
            {"--owner": [f"no user '{username}' in organization '{org.slug}'"]}
        ) from None


def _find_playbook(org: Any, value: str | None, service_type: str) -> Any:
    from offboard.playbooks.selectors import get_version, suggest_playbook

    if not value:
        version = suggest_playbook(org, service_type)
        if version is None:
            raise ValidationFailed(
                {
                    "--playbook": [
                        f"no playbook for service type {service_type}; import one or name it"
                    ]
                }
            )
        return version
    slug, _, number = value.partition(":")
    if number and not number.isdigit():
        raise ValidationFailed({"--playbook": [f"'{value}' is not SLUG or SLUG:VERSION"]})
    return get_version(org, slug, int(number) if number else None)


OPEN_FIELDS = {
    "trigger": "--trigger",
    "trigger_date": "--trigger-date",
    "contracts": "--contract",
    "owner_id": "--owner",
    "scope": "--scope",
    "scope_notes": "--scope-notes",
    "effective_end_date": "--end-date",
    "playbook": "--playbook",
}


@app.command("open")
def open_(
    client: Annotated[str, typer.Option(metavar="NAME_OR_ID", help="The client leaving.")],
    contract: Annotated[
        list[str],
        typer.Option(metavar="REF", help="Contract reference covered; repeat for several."),
    ],
    trigger: Annotated[
        str,
        typer.Option(
            metavar="TRIGGER", help="What ended the relationship: " + ", ".join(TRIGGERS) + "."
        ),
    ],
    trigger_date: Annotated[
        str, typer.Option(metavar="YYYY-MM-DD", help="When the trigger happened.")
    ],
    owner: Annotated[
        str, typer.Option(metavar="USERNAME", help="The case owner (not an auditor).")
    ],
    playbook: Annotated[
        str | None,
        typer.Option(
            metavar="SLUG[:VERSION]",
            help="Playbook to follow. Default: the latest one for the contract's service type.",
        ),
    ] = None,
    scope: Annotated[
        str, typer.Option(help="full or partial (a partial exit needs --scope-notes).")
    ] = "full",
    scope_notes: Annotated[str, typer.Option(help="What is in scope of a partial exit.")] = "",
    trigger_notes: Annotated[
        str, typer.Option(help="Notes on the trigger, e.g. the notice letter.")
    ] = "",
    end_date: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="Effective end date. Default: from the contract (its end date for expiry and "
            "non-renewal, else notice date + notice period).",
        ),
    ] = None,
    draft: Annotated[
        bool, typer.Option("--draft", help="Open as a draft, to activate later.")
    ] = False,
    allow_duplicate: Annotated[
        bool,
        typer.Option(
            "--allow-duplicate",
            help="Open it even though the client has an open case for one of the contracts.",
        ),
    ] = False,
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open a case for a client exit: pin the playbook, create its steps and registers.

    Refused while the client has an open case for one of the contracts, unless
    --allow-duplicate says another one is intended."""
    ensure_django()
    from offboard.cases.services import open_case
    from offboard.cases.services.opening import DuplicateCase

    actor = resolve_actor(org, as_user)
    with fields_as_options(OPEN_FIELDS):
        the_client = _find_client(actor.org, client)
        the_contracts = _find_contracts(actor.org, contract)
        owner_user = _find_member(actor.org, owner)
        the_trigger_date = parse_date(trigger_date, "--trigger-date")
        the_end_date = parse_date(end_date, "--end-date") if end_date else None
        version = _find_playbook(actor.org, playbook, the_contracts[0].service_type)
        try:
            case = open_case(
                actor=actor,
                client=the_client,
                contracts=the_contracts,
                trigger=trigger,
                trigger_date=the_trigger_date,
                owner_id=owner_user.pk,
                playbook_version=version,
                scope=scope,
                scope_notes=scope_notes,
                trigger_notes=trigger_notes,
                effective_end_date=the_end_date,
                draft=draft,
                allow_duplicate=allow_duplicate,
            )
        except DuplicateCase as exc:
            fail(f"{exc.headline} Pass --allow-duplicate to open another case anyway.")
    if as_json:
        emit_json(_load(actor.org, case.ref)[1])
        return
    say(
        f"Opened {case.ref} ({case.state}) for {the_client.name}: {case.steps.count()} steps from "
        f"{version.playbook.slug} v{version.version}; effective end {case.effective_end_date}, "
        f"data return by {case.data_return_deadline}.",
        "bold",
    )
    say(f"Next: offboard case show {case.ref}")


# --- lifecycle -------------------------------------------------------------------------------


def _case_for(actor: Any, ref: str) -> Any:
    from offboard.cases.selectors import get_case

    return get_case(actor.org, ref)


@app.command()
def activate(
    ref: RefArgument, org: OrgOption = None, as_user: AsOption = None, as_json: JsonOption = False
) -> None:
    """Activate a draft case, so work on it can start."""
    ensure_django()
    from offboard.cases.services import activate_case

    actor = resolve_actor(org, as_user)
    case = activate_case(actor=actor, case=_case_for(actor, ref))
    if as_json:
        emit_json(_status(actor.org, ref))
    else:
        say(f"{case.ref} is active.", "bold")


@app.command()
def closing(
    ref: RefArgument, org: OrgOption = None, as_user: AsOption = None, as_json: JsonOption = False
) -> None:
    """Enter closing: every readiness gate must be met; approvals are collected next."""
    ensure_django()
    from offboard.cases.services import enter_closing

    actor = resolve_actor(org, as_user)
    case = enter_closing(actor=actor, case=_case_for(actor, ref))
    status = _status(actor.org, ref)
    if as_json:
        emit_json(status)
        return
    policy = case.approval_policy or {}
    say(f"{case.ref} is closing at state digest {status['state_digest']}.", "bold")
    say(
        f"It needs {policy.get('min_approvers', 1)} approval(s) from "
        f"{' or '.join(policy.get('roles', []))}: offboard case approve {case.ref} "
        "--decision approved --as USERNAME"
    )


@app.command()
def approve(
    ref: RefArgument,
    decision: Annotated[str, typer.Option(help="approved or rejected.")],
    comment: Annotated[str, typer.Option(help="Why; required when rejecting.")] = "",
    digest: Annotated[
        str | None,
        typer.Option(
            metavar="SHA256",
            help="The state digest you reviewed (from `case show`). Default: the current one, "
            "shown before approving. A mismatch is refused.",
        ),
    ] = None,
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve or reject closure of exactly the state you reviewed."""
    ensure_django()
    from offboard.cases.services import approve_case

    actor = resolve_actor(org, as_user)
    case, detail = _load(actor.org, ref)
    current = detail["state_digest"]
    if not as_json:
        say(f"{case.ref} ({case.client.name}) is {case.state}; current state digest {current}.")
    with fields_as_options({"decision": "--decision", "comment": "--comment"}):
        approval = approve_case(
            actor=actor,
            case=case,
            decision=decision,
            state_digest_seen=(digest or current).strip().lower(),
            comment=comment,
        )
    status = _status(actor.org, ref)
    if as_json:
        emit_json(status)
        return
    say(
        f"{actor.display_name} {approval.decision} {case.ref} at state {approval.state_digest[:12]}….",
        "bold",
    )
    remaining = [g for g in status["unmet_gates"] if g["kind"] == "approval"]
    if remaining:
        for gate in remaining:
            say(f"Still needed — {gate['code']}: {gate['message']}")
    else:
        say(f"Approvals are complete: offboard case close {case.ref}")


@app.command()
def close(
    ref: RefArgument, org: OrgOption = None, as_user: AsOption = None, as_json: JsonOption = False
) -> None:
    """Close the case for good. Refused, listing every unmet gate, unless all are met."""
    ensure_django()
    from offboard.cases.services import close_case

    actor = resolve_actor(org, as_user)
    case = close_case(actor=actor, case=_case_for(actor, ref))
    status = _status(actor.org, ref)
    if as_json:
        emit_json(status)
        return
    approvers = ", ".join(
        f"{a['approver']} ({a['role']})" for a in status["approvals"] if a["current"]
    )
    say(f"{case.ref} is closed at state digest {status['state_digest']}.", "bold")
    say(
        f"Approved by: {approvers or 'nobody'}. Later facts go in addenda: offboard case addendum {case.ref}"
    )


@app.command()
def cancel(
    ref: RefArgument,
    reason: Annotated[str, typer.Option(help="Why the exit is not going ahead.")],
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a draft or active case, with a reason."""
    ensure_django()
    from offboard.cases.services import cancel_case

    actor = resolve_actor(org, as_user)
    with fields_as_options({"reason": "--reason"}):
        case = cancel_case(actor=actor, case=_case_for(actor, ref), reason=reason)
    if as_json:
        emit_json(_status(actor.org, ref))
    else:
        say(f"{case.ref} is cancelled.", "bold")


@app.command()
def addendum(
    ref: RefArgument,
    text: Annotated[str, typer.Option(help="The later fact, in full sentences.")],
    file: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, readable=True, help="Evidence file; repeatable."),
    ] = None,
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Append a later fact to a closed or cancelled case (the one write they accept)."""
    ensure_django()
    from offboard.cases.services import add_addendum
    from offboard.evidence.services import atomic_with_files, store_file

    actor = resolve_actor(org, as_user)
    case = _case_for(actor, ref)
    # One transaction, files written at its end: a refused addendum leaves no evidence rows
    # and no stored files behind.
    with atomic_with_files(), fields_as_options({"text": "--text"}):
        evidence = []
        for path in file or []:
            with path.open("rb") as stream:
                evidence.append(store_file(actor=actor, stream=stream, name=path.name))
        add_addendum(actor=actor, case=case, text=text, evidence=evidence)
    say(f"Addendum appended to {case.ref}.", "bold")
