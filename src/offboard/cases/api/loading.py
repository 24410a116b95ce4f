"""Reading what the case endpoints answer with, in a fixed number of queries."""

from dataclasses import dataclass, field
from typing import Any

from offboard.cases import selectors
from offboard.cases.gates import unmet_gates
from offboard.cases.models import OffboardingCase
from offboard.cases.state import state_digest
from offboard.core.actor import Actor
from offboard.evidence.selectors import files_by_hash
from offboard.notifications.selectors import receipt_for


@dataclass
class CaseView:
    """A case loaded with everything, plus what is computed from it: its digest and gates."""

    case: OffboardingCase
    state_digest: str
    unmet_gates: list[dict[str, Any]] = field(default_factory=list)
    closure_receipt: Any = None

    def __getattr__(self, name: str) -> Any:
        if name == "case":  # not set yet (copying, unpickling): do not recurse
            raise AttributeError(name)
        return getattr(self.case, name)


def load_case(actor: Actor, ref: str) -> OffboardingCase:
    """The actor's case by reference (another organization's is not found), without relations."""
    return selectors.get_case(actor.org, ref)


def case_view(actor: Actor, ref: str) -> CaseView:
    case = selectors.get_case(actor.org, ref, full=True)
    digest = state_digest(case)
    return CaseView(
        case=case,
        state_digest=digest,
        unmet_gates=[g.as_dict() for g in unmet_gates(case, digest)],
        closure_receipt=receipt_for(case) if case.state == OffboardingCase.State.CLOSED else None,
    )


def evidence(actor: Actor, hashes: list[str], field_name: str = "evidence") -> list[Any]:
    """Evidence files named by SHA-256 in a request; an unknown one is a 422 on that field."""
    return files_by_hash(actor.org, hashes, field_name) if hashes else []
