"""What a step is about: the register items whose settling completes it (docs/playbooks.md).

A step names them in `about` — registers, each narrowed by the fields that say what kind of
item it is — or, without `about`, takes them from its category. Django-free, like the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The fields an `about` entry may narrow each register by: the ones that say what kind of
# item it is (never free text, which the team edits on the case).
ABOUT_FILTERS: dict[str, tuple[str, ...]] = {
    "deliverables": (),
    "handover_items": ("kind",),
    "access_grants": ("direction", "planned_action"),
    "data_dispositions": ("action",),
    "settlements": ("kind",),
}
# The registers whose items the client acknowledges in the portal: a `client_ack` step must be
# about one of them, or nothing could ever give it.
ACKNOWLEDGED_IN_PORTAL = ("deliverables", "handover_items")
MAX_ABOUT = 5


@dataclass(frozen=True)
class Selector:
    """Items of one register, narrowed by field values (any listed value matches)."""

    register: str
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selector:
        where = tuple(
            (name, tuple(str(v) for v in data[name]))
            for name in ABOUT_FILTERS.get(str(data["register"]), ())
            if data.get(name)
        )
        return cls(register=str(data["register"]), where=where)

    def as_dict(self) -> dict[str, Any]:
        return {"register": self.register, **{name: list(values) for name, values in self.where}}

    def matches(self, value_of: Callable[[str], Any]) -> bool:
        """Whether an item of this register matches; `value_of(field)` reads the item."""
        return all(str(value_of(name)) in values for name, values in self.where)

    def describe(self) -> str:
        """`access grants (direction: client_in_provider)`."""
        noun = self.register.replace("_", " ")
        narrowed = "; ".join(f"{name}: {', '.join(values)}" for name, values in self.where)
        return f"{noun} ({narrowed})" if narrowed else noun


# Without `about`, a step is about the items its category names.
CATEGORY_ABOUT: dict[str, tuple[Selector, ...]] = {
    "deliverable": (Selector("deliverables"),),
    "handover": (Selector("handover_items"),),
    "access": (Selector("access_grants"),),
    "data_return": (Selector("data_dispositions", (("action", ("return",)),)),),
    "data_deletion": (Selector("data_dispositions", (("action", ("delete",)),)),),
    "payment": (Selector("settlements"),),
}


def step_about(step: Mapping[str, Any]) -> tuple[Selector, ...]:
    """The selectors of a (validated) step's YAML: its `about`, else its category's."""
    if "about" in step:
        return tuple(Selector.from_dict(entry) for entry in step["about"] or ())
    return CATEGORY_ABOUT.get(str(step.get("category", "general")), ())


def from_stored(about: Any) -> tuple[Selector, ...]:
    """The selectors a case's step keeps (a list of `as_dict()` values)."""
    if not isinstance(about, list):
        return ()
    return tuple(
        Selector.from_dict(entry)
        for entry in about
        if isinstance(entry, dict) and entry.get("register") in ABOUT_FILTERS
    )
