"""Steps completed by settling the register items they are about — by staff, and by the
client's acknowledgement in the portal — leave the evidence pack as provable as before: the
events that say `completes_steps` verify like any other, the closed state carries each step's
record, and the five answers are still PROVEN."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from offboard.cases.services import complete_step, update_register_item
from offboard.cases.state import fresh
from offboard.ledger.models import LedgerEntry
from offboard.packs.verify import parse_key, verify_pack
from tests.cases.test_linked_steps import acknowledge
from tests.factories import close_with_approvals, settle_everything, upload


def _work_steps_about_nothing(case: Any, alice: Any) -> None:
    """Complete, in order, every step about no register item whose dependencies are done."""
    proof = upload(alice, b"%PDF-1.4 step evidence\n", "step.pdf")
    while True:
        steps = list(fresh(case).steps.all())
        done = {s.key for s in steps if s.status in ("done", "not_applicable")}
        ready = [
            s
            for s in steps
            if s.key not in done and not s.about and all(d in done for d in s.depends_on)
        ]
        if not ready:
            return
        for s in ready:
            complete_step(
                actor=alice,
                step=s,
                evidence=[proof],
                note="Done, see file",
                link="https://example.org/proof",
                attestation="I confirm this",
            )


def test_steps_completed_by_their_items_keep_every_answer_proven(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    alice = cast["alice"]
    _work_steps_about_nothing(case, alice)
    creative = list(case.handover_items.filter(kind__in=["document", "licence"]).order_by("id"))
    for h in creative:
        update_register_item(
            actor=alice, item=h, values={"status": "handed_over", "method": "Shared drive"}
        )
    acknowledge(case, alice, creative)  # completes handover_creative: the client's ack
    case = close_with_approvals(settle_everything(case, cast), cast)

    completing = [
        e for e in LedgerEntry.objects.filter(case=case).order_by("index")
        if e.data.get("completes_steps")
    ]  # fmt: skip
    completed = {
        c["step"]: (e.type, c["evidence"]) for e in completing for c in e.data["completes_steps"]
    }
    assert completed["handover_creative"] == ("portal.acknowledged", "client_ack")
    assert completed["revoke_client_access"] == ("access_grant.verified", "file")
    assert completed["deliver_outstanding_work"] == ("deliverable.accepted", "file")

    from offboard.packs.export import iter_pack, start_export

    plan = start_export(actor=cast["erin"], case=case)
    path = tmp_path / "pack.zip"
    path.write_bytes(b"".join(iter_pack(plan)))
    report = verify_pack(path, key=parse_key(plan.checkpoint.key.verifier_key))

    assert report.outcome == "verified", [c.as_dict() for c in report.checks if not c.ok]
    for answer in report.answers[:4]:
        assert answer.proven, (answer.number, answer.reasons)
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("data/case.json"))
        state = json.loads(z.read(name))["state"]
        events = {
            json.loads(z.read(n))["seq"]: json.loads(z.read(n))
            for n in z.namelist()
            if "/data/events/" in n and n.endswith(".json")
        }
    steps = {s["key"]: s for s in state["steps"]}
    assert steps["handover_creative"]["settled_by"]["evidence"] == "client_ack"
    portal = [e for e in events.values() if e["type"] == "portal.acknowledged"]
    assert portal[0]["data"]["completes_steps"][0]["step"] == "handover_creative"
