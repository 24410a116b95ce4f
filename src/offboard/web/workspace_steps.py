"""What a step row shows of the register items the step is about (cases/links.py): each item
with a link to its row, how many are still open, and — once settling them completed the
step — which items did and the client's acknowledgements behind it."""

from dataclasses import dataclass, field
from typing import Any

from offboard import labels
from offboard.cases.links import CaseLinks
from offboard.cases.models import Step

DONE_LIKE = (Step.Status.DONE, Step.Status.NOT_APPLICABLE)


@dataclass(frozen=True)
class StepItem:
    label: str
    anchor: str
    status: str
    settled: bool
    acknowledged: bool  # by the client in the portal
    waived: bool


@dataclass(frozen=True)
class Acknowledgement:
    name: str
    manifest_sha256: str
    event: int | None


@dataclass
class StepItems:
    items: list[StepItem]
    done: bool
    settled_by: dict[str, Any] = field(default_factory=dict)
    waiting_for: list[str] = field(default_factory=list)  # titles of steps not done yet
    stands: bool = False  # all settled, and their records are evidence the step takes

    @property
    def open(self) -> list[StepItem]:
        return [i for i in self.items if not i.settled]

    @property
    def by_items(self) -> bool:
        """Settling its items completed the step (or stood for its evidence)."""
        return self.done and bool(self.settled_by)

    @property
    def by_client(self) -> bool:
        return self.by_items and self.settled_by.get("evidence") == "client_ack"

    @property
    def evidence_words(self) -> str:
        """What the items' records stood for, after "Completed by settling N items"."""
        return {
            "file": "their files are its evidence",
            "attestation": "their records are its attestation",
            "note": "their records are its note",
        }.get(str(self.settled_by.get("evidence")), "")

    @property
    def counted(self) -> int:
        return len(self.settled_by.get("items") or [])

    @property
    def event(self) -> Any:
        return self.settled_by.get("event")

    @property
    def acknowledgements(self) -> list[Acknowledgement]:
        """The client's acknowledgements the record names, one per contact and list."""
        found: dict[tuple[str, str], Acknowledgement] = {}
        for ref in self.settled_by.get("items") or []:
            ack = ref.get("acknowledgement") if isinstance(ref, dict) else None
            if not isinstance(ack, dict):
                continue
            contact = ack.get("contact")
            contact = contact if isinstance(contact, dict) else {}
            name = str(contact.get("name") or ack.get("typed_name") or "the client")
            digest = str(ack.get("manifest_sha256") or "")
            found.setdefault((name, digest), Acknowledgement(name, digest, ack.get("event")))
        return list(found.values())


def step_items(links: CaseLinks, step: Step, by_key: dict[str, Step]) -> StepItems | None:
    """The row's view of the step's items; None for a step about no register items."""
    if not step.about:
        return None
    linked = links.items(step)
    stands = links.evidence(step, linked) is not None
    return StepItems(
        items=[
            StepItem(
                label=labels.item_label(li.item),
                anchor=li.anchor,
                status=li.item.status,  # type: ignore[attr-defined]
                settled=li.settled,
                acknowledged=li.acknowledged,
                waived=li.waived,
            )
            for li in linked
        ],
        done=step.status == Step.Status.DONE,
        settled_by=dict(step.settled_by or {}),
        waiting_for=[
            by_key[k].title
            for k in step.depends_on
            if k in by_key and by_key[k].status not in DONE_LIKE
        ],
        stands=stands,
    )
