"""The closure receipt as the API shows it on a case."""

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ninja import Field, Schema

from offboard.core.schemas import EvidenceRef
from offboard.notifications.models import ClosureReceipt
from offboard.notifications.selectors import receipt_status

if TYPE_CHECKING:
    ReceiptState: TypeAlias = str
else:
    ReceiptState = Literal[tuple(ClosureReceipt.State.values)]


class RecipientOut(Schema):
    name: str
    email: str
    role: str = Field(description="The contact's role at the client (primary, legal, …).")


class ClosureReceiptOut(Schema):
    state: ReceiptState = Field(
        description="`pending`, `sent`, `failed` (retried with backoff) or `no_recipients`."
    )
    summary: str = Field(description="Where it stands, in one sentence.")
    recipients: list[RecipientOut] = Field(description="The client's contacts at closure.")
    certificate: EvidenceRef | None = Field(
        description="The closure certificate (PDF) stored as an evidence file; null until issued."
    )
    checkpoint_size: int = Field(description="Tree size of the signed closure checkpoint sent.")
    attempts: int
    last_error: str = Field(description="Why the last attempt failed; empty once sent.")
    next_attempt_at: dt.datetime | None = Field(description="Null when nothing is left to do.")
    sent_at: dt.datetime | None
    message_id: str

    @staticmethod
    def resolve_summary(obj: Any) -> str:
        return receipt_status(obj)

    @staticmethod
    def resolve_checkpoint_size(obj: Any) -> int:
        return int(obj.checkpoint.size)
