"""Steps and the register items they are about: which items, whether each is settled, and
whether together they complete the step (docs/playbooks.md, "What a step is about"; decision 0012).

An item is settled when it meets its closure gate (`cases.gates`): the one rule decides both,
so a step never completes on items the gates would still list. Settled items stand for the
kinds of evidence their own records carry: `file` when each has its files, `attestation` and
`note` as each is a recorded statement of who did what when, and `client_ack` when the client
acknowledged each one the portal shows — only ever the client's own word, never staff's
(decision 0008). A `link` they never stand for.
"""

from dataclasses import dataclass, field
from typing import Any

from offboard.cases.gates import readiness_gates
from offboard.cases.models import OffboardingCase, RegisterItem, Source, Step
from offboard.cases.registers import BY_PREFIX, REGISTERS
from offboard.core import clock
from offboard.playbooks.about import ACKNOWLEDGED_IN_PORTAL, Selector, from_stored

# The status a client's acknowledgement in the portal gives an item of each register.
ACKNOWLEDGED_STATUS = {"deliverables": "accepted", "handover_items": "acknowledged"}
assert set(ACKNOWLEDGED_STATUS) == set(ACKNOWLEDGED_IN_PORTAL)


def settles_by_status(register: str, item: Any) -> bool:
    """Whether the item's own status (not a waiver) meets its closure gate."""
    status = item.status
    if register == "deliverables":
        return bool(status in ("accepted", "deemed_accepted"))
    if register == "handover_items":
        return bool(status in ("handed_over", "acknowledged"))
    if register == "access_grants":
        verified = item.verification_level in ("observed", "vendor_confirmed", "attested")
        return bool(status == "transferred" or (status == "revoked" and verified))
    if register == "data_dispositions":
        if item.action == "retain":
            return bool(item.retention_basis.strip())
        return bool(status == "done" and not (item.action == "delete" and item.legal_hold))
    return bool(status in ("paid", "written_off"))


@dataclass(frozen=True)
class LinkedItem:
    register: str
    item: RegisterItem
    settled: bool  # meets its closure gate
    waived: bool  # meets it only under a waiver in force

    @property
    def acknowledged(self) -> bool:
        """Acknowledged by the client in the portal (their word, not staff's)."""
        return (
            ACKNOWLEDGED_STATUS.get(self.register) == self.item.status  # type: ignore[attr-defined]
            and self.item.source == Source.CLIENT_PORTAL
        )

    @property
    def anchor(self) -> str:
        return f"{self.register}-{self.item.pk}"

    def ref(self) -> dict[str, Any]:
        """What a step's record and an event say of the item."""
        ref: dict[str, Any] = {
            "register": self.register,
            "id": self.item.pk,
            "label": self.item.label(),
            "status": self.item.status,  # type: ignore[attr-defined]
            "source": self.item.source,
        }
        if self.waived:
            ref["waived"] = True
        if self.acknowledged:
            detail = dict(self.item.source_detail or {})
            ref["acknowledgement"] = {
                "contact": detail.get("contact"),
                "typed_name": detail.get("typed_name", ""),
                "manifest_sha256": detail.get("manifest_sha256", ""),
                "at": self.item.recorded_at.isoformat() if self.item.recorded_at else None,
            }
        return ref


# The kind a step's record names when its items carry several it accepts: the strongest.
EVIDENCE_ORDER = ("client_ack", "file", "attestation", "note")


@dataclass
class ItemsEvidence:
    """Every item a step is about is settled, and their records are evidence of a kind the
    step accepts: `evidence` names it (`items` for a step that asks for none)."""

    evidence: str
    items: list[LinkedItem] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The step's `settled_by` (the completing event's index is added once recorded)."""
        return {"evidence": self.evidence, "items": [i.ref() for i in self.items]}


class CaseLinks:
    """The case's steps with their items, read from a case loaded by `state.with_everything`
    (no further queries but the gates')."""

    def __init__(self, case: OffboardingCase) -> None:
        self.case = case
        self.unsettled: set[tuple[str, int]] = set()
        for gate in readiness_gates(case):
            for obj in gate.objects:
                if obj["type"] in BY_PREFIX:
                    self.unsettled.add((BY_PREFIX[obj["type"]].key, obj["id"]))
        now = clock.now()
        self.waived = {
            (BY_PREFIX[w.target_type].key, w.target_id)
            for w in case.waivers.all()
            if w.target_type in BY_PREFIX and w.is_in_force(now)
        }

    def items(self, step: Step) -> list[LinkedItem]:
        """The register items the step is about, register by register, oldest first."""
        selectors = from_stored(step.about)
        found = []
        for key in REGISTERS:
            mine = [s for s in selectors if s.register == key]
            if not mine:
                continue
            for item in getattr(self.case, key).all():
                if any(_matches(s, item) for s in mine):
                    found.append(
                        LinkedItem(
                            register=key,
                            item=item,
                            settled=(key, item.pk) not in self.unsettled,
                            waived=(key, item.pk) in self.waived
                            and not settles_by_status(key, item),
                        )
                    )
        return found

    def evidence(self, step: Step, items: list[LinkedItem] | None = None) -> ItemsEvidence | None:
        """What the step's settled items prove, or None while they do not complete it."""
        items = self.items(step) if items is None else items
        return items_evidence(step, items)


def carried(items: list[LinkedItem]) -> set[str]:
    """The kinds of evidence the records of settled items carry (waived items aside)."""
    done = [i for i in items if not i.waived]
    kinds = {"attestation", "note"}
    if all(i.item.evidence.all() for i in done):  # type: ignore[attr-defined]
        kinds.add("file")
    shown = [i for i in done if i.register in ACKNOWLEDGED_IN_PORTAL]
    if shown and all(i.acknowledged for i in shown):
        kinds.add("client_ack")
    return kinds


def items_evidence(step: Step, items: list[LinkedItem]) -> ItemsEvidence | None:
    """None unless every item is settled, at least one by its own status (items all under
    waivers prove no work done), and their records carry a kind of evidence the step takes."""
    if not items or not all(i.settled for i in items) or all(i.waived for i in items):
        return None
    wanted = list(step.evidence_required or [])
    if not wanted:
        return ItemsEvidence("items", items)
    have = carried(items)
    kind = next((k for k in EVIDENCE_ORDER if k in wanted and k in have), None)
    return ItemsEvidence(kind, items) if kind else None


def _matches(selector: Selector, item: RegisterItem) -> bool:
    return selector.matches(lambda name: getattr(item, name, None))


def open_items(items: list[LinkedItem]) -> list[LinkedItem]:
    """The items that keep a step from completing by them."""
    return [i for i in items if not i.settled]
