"""The case as it stands, and its state digest.

The digest is SHA-256 over the RFC 8785 canonical JSON of the case and its registers. It
binds approvals to exactly what was approved, and the certificate quotes it. Approvals,
events and timestamps of bookkeeping are deliberately outside it: approving must not
change what is approved.
"""

from typing import Any

from django.db.models import Prefetch

from offboard.cases.models import Addendum, OffboardingCase, Step, Waiver
from offboard.cases.registers import REGISTERS, item_state
from offboard.core.canonical import digest

# 2: register items carry occurred_at, recorded_at, recorded_by_id, source, source_detail
DIGEST_VERSION = 2


def with_everything(qs: Any) -> Any:
    """Prefetch all a case needs for its state, gates and detail in a fixed number of queries."""
    lookups: list[Any] = [
        "contracts",
        "trigger_evidence",
        Prefetch(
            "steps", queryset=Step.objects.select_related("owner").prefetch_related("evidence")
        ),
        Prefetch(
            "waivers",
            queryset=Waiver.objects.select_related("approver").prefetch_related("evidence"),
        ),
        Prefetch(
            "addenda",
            queryset=Addendum.objects.select_related("author").prefetch_related("evidence"),
        ),
        "approvals__approver",
    ]
    for spec in REGISTERS.values():
        items: Any = spec.model.objects.select_related("owner", "recorded_by")
        lookups.append(Prefetch(spec.key, queryset=items.prefetch_related("evidence")))
    return qs.select_related("client", "owner", "playbook_version__playbook").prefetch_related(
        *lookups
    )


def _hashes(item: Any) -> list[str]:
    return sorted(f.sha256 for f in item.evidence.all())


def case_state(case: OffboardingCase) -> dict[str, Any]:
    steps = [
        {
            "key": s.key,
            "title": s.title,
            "owner_id": s.owner_id,
            "due_date": s.due_date.isoformat(),
            "required": s.required,
            "status": s.status,
            "not_applicable_reason": s.not_applicable_reason,
            "note": s.note,
            "link": s.link,
            "attestation": s.attestation,
            "evidence": _hashes(s),
            # Only where settling its items completed the step, so the digest of every other
            # step (and of cases closed before steps had items) is what it always was.
            **({"settled_by": s.settled_by} if s.settled_by else {}),
        }
        for s in sorted(case.steps.all(), key=lambda s: s.position)
    ]
    registers = {
        key: [
            {**item_state(spec, item), "evidence": _hashes(item)}
            for item in sorted(getattr(case, key).all(), key=lambda i: i.pk)
        ]
        for key, spec in REGISTERS.items()
    }
    waivers = [
        {
            "id": w.pk,
            "target_type": w.target_type,
            "target_id": w.target_id,
            "justification": w.justification,
            "approver_id": w.approver_id,
            "expires_at": w.expires_at.isoformat(),
            "revoked": w.revoked_at is not None,
        }
        for w in sorted(case.waivers.all(), key=lambda w: w.pk)
    ]
    return {
        "digest_version": DIGEST_VERSION,
        "case": {
            "ref": case.ref,
            "org": case.org_id,
            "client": {"id": case.client_id, "name": case.client.name},
            "contracts": sorted(c.reference for c in case.contracts.all()),
            "trigger": case.trigger,
            "trigger_date": case.trigger_date.isoformat(),
            "trigger_notes": case.trigger_notes,
            "trigger_evidence": sorted(f.sha256 for f in case.trigger_evidence.all()),
            "scope": case.scope,
            "scope_notes": case.scope_notes,
            "fee_type": case.fee_type,
            "notice_date": case.notice_date.isoformat(),
            "effective_end_date": case.effective_end_date.isoformat(),
            "data_return_deadline": case.data_return_deadline.isoformat(),
            "owner_id": case.owner_id,
            "playbook_sha256": case.playbook_sha256,
        },
        "steps": steps,
        "registers": registers,
        "waivers": waivers,
    }


def state_digest(case: OffboardingCase) -> str:
    return digest(case_state(case))


def fresh(case: OffboardingCase) -> OffboardingCase:
    """Reload a case with everything prefetched (after a change, prefetch caches are stale)."""
    loaded: OffboardingCase = with_everything(OffboardingCase.objects.filter(pk=case.pk)).get()
    return loaded
