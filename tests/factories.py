"""Small builders for test data that go through the services, so events are recorded."""

import io
from typing import Any

from offboard.core.actor import Actor


def upload(
    actor: Actor, content: bytes = b"%PDF-1.4 evidence\n", name: str = "evidence.pdf"
) -> Any:
    from offboard.evidence.services import store_file

    return store_file(actor=actor, stream=io.BytesIO(content), name=name)


def settle_everything(case: Any, cast: dict[str, Actor]) -> Any:
    """Drive every register and step of an open case to a state that meets the readiness gates,
    through the services, the way a team would. Returns the fresh case (still active)."""
    from offboard.cases.models import AccessGrant, DataDisposition
    from offboard.cases.services import (
        add_register_item,
        complete_step,
        mark_step_not_applicable,
        update_register_item,
    )
    from offboard.cases.state import fresh

    alice, dave = cast["alice"], cast["dave"]
    proof = upload(alice, b"%PDF-1.4 signed acceptance and certificates\n", "proof.pdf")
    case = fresh(case)
    for d in case.deliverables.all():
        update_register_item(
            actor=alice,
            item=d,
            values={"status": "accepted", "acceptance_note": "Accepted by email"},
            evidence=[proof],
        )
    for h in case.handover_items.all():
        update_register_item(
            actor=alice,
            item=h,
            values={
                "status": "handed_over",
                "method": h.method or "Transferred ownership",
                "new_owner": "Client IT",
            },
        )
    grants = sorted(case.access_grants.all(), key=lambda g: g.planned_action != "transfer")
    for g in grants:
        if g.planned_action == AccessGrant.PlannedAction.TRANSFER:
            update_register_item(actor=alice, item=g, values={"status": "transferred"})
        elif g.planned_action == AccessGrant.PlannedAction.REVOKE:
            update_register_item(actor=alice, item=g, values={"status": "revoked"})
            update_register_item(
                actor=alice, item=g, values={"verification_level": "attested"}, evidence=[proof]
            )
        else:
            import datetime as dt

            from django.utils import timezone

            from offboard.cases.services import grant_waiver

            grant_waiver(
                actor=cast["bob"],
                case=case,
                target_type="access_grant",
                target_id=g.pk,
                justification="Client asked us to keep read access for 90 days",
                expires_at=timezone.now() + dt.timedelta(days=90),
            )
    for d in case.data_dispositions.all():
        if d.action == DataDisposition.Action.RETAIN:
            if not d.retention_basis:
                update_register_item(actor=alice, item=d, values={"retention_basis": "Statutory"})
            continue
        values: dict[str, Any] = {"status": "done", "legal_hold": False}
        if not d.method:
            values["method"] = "export" if d.action == "return" else "nist_purge"
        update_register_item(actor=alice, item=d, values=values, evidence=[proof])
    if not case.settlements.exists():
        add_register_item(
            actor=dave,
            case=case,
            register="settlements",
            values={"kind": "final_invoice", "description": "Final invoice"},
        )
        case = fresh(case)
    for s in case.settlements.all():
        update_register_item(
            actor=dave,
            item=s,
            values={"status": "paid", "amount": "1200.00", "currency": "EUR", "reference": "INV-1"},
            evidence=[proof],
        )
    case = fresh(case)
    pending = [s for s in case.steps.all() if s.status not in ("done", "not_applicable")]
    done: set[str] = {s.key for s in case.steps.all() if s.status in ("done", "not_applicable")}
    while pending:
        progressed = False
        for s in list(pending):
            if all(dep in done for dep in s.depends_on):
                if s.evidence_required:
                    complete_step(
                        actor=alice,
                        step=s,
                        evidence=[proof],
                        note="Done, see file",
                        link="https://example.org/proof",
                        attestation="I confirm this",
                    )
                elif s.required:
                    complete_step(actor=alice, step=s, note="Done")
                else:
                    mark_step_not_applicable(actor=alice, step=s, reason="Covered elsewhere")
                done.add(s.key)
                pending.remove(s)
                progressed = True
        assert progressed, f"dependency cycle in steps: {[s.key for s in pending]}"
    return fresh(case)


def close_with_approvals(case: Any, cast: dict[str, Actor]) -> Any:
    """From a settled case: enter closing, bob and carol approve, alice closes."""
    from offboard.cases.services import approve_case, close_case, enter_closing
    from offboard.cases.state import fresh, state_digest

    enter_closing(actor=cast["alice"], case=case)
    digest = state_digest(fresh(case))
    approve_case(actor=cast["bob"], case=case, decision="approved", state_digest_seen=digest)
    approve_case(actor=cast["carol"], case=case, decision="approved", state_digest_seen=digest)
    close_case(actor=cast["alice"], case=case)
    return fresh(case)


def connector_objects(case: Any, alice: Any, *, requires_approval: bool = False) -> dict[str, Any]:
    """A connection (pointing at a closed loopback port: nothing it is asked reaches anyone)
    and a run on `case` requested by `alice`, for the tables of every URL that names an object;
    with `requires_approval`, the run waits for another manager's approval."""
    from offboard.cases.models import AccessGrant
    from offboard.connectors.runs import request_run
    from offboard.connectors.services import create_connection

    connection = create_connection(
        actor=alice,
        name="Directory",
        kind="scim",
        config={"url": "http://127.0.0.1:9/v2", "attempts": 1, "timeout": 1},
        secret="not-a-real-token",
        requires_approval=requires_approval,
    )
    grant = AccessGrant.objects.filter(case=case, planned_action="revoke").first()
    assert grant is not None
    run = request_run(actor=alice, case=case, connection=connection, grants=[grant])
    return {
        "connection": connection.pk,
        "connection_id": str(connection.public_id),
        "run": str(run.public_id),
    }
