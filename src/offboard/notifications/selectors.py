"""Reading closure receipts, and saying where one stands in a sentence (page, API, CLI)."""

import datetime as dt
from typing import Any

from django.db.models import Q

from offboard.notifications.models import ClosureReceipt


def receipt_for(case: Any) -> ClosureReceipt | None:
    """A case's closure receipt with its certificate and checkpoint; None before closure."""
    return (
        ClosureReceipt.objects.filter(org_id=case.org_id, case=case)
        .select_related("certificate", "checkpoint")
        .first()
    )


def failed_receipts(org: Any, user: Any, *, limit: int = 50) -> list[ClosureReceipt]:
    """Closure receipts whose last attempt to send failed, on cases `user` owns or closed;
    with `user` None, on every case of the organization (the escalations: offboard.reminders)."""
    qs = ClosureReceipt.objects.filter(org=org, state=ClosureReceipt.State.FAILED)
    if user is not None:
        qs = qs.filter(Q(case__owner=user) | Q(closed_by=user))
    return list(
        qs.select_related("case", "case__client", "case__owner").order_by("case__closed_at", "id")[
            :limit
        ]
    )


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _to(receipt: ClosureReceipt) -> str:
    return ", ".join(f"{r['name']} <{r['email']}>" for r in receipt.recipients)


def receipt_status(receipt: ClosureReceipt) -> str:
    """One sentence: sent when and to whom, or why not and when the next attempt is."""
    State = ClosureReceipt.State
    if receipt.state == State.SENT:
        return f"Sent {_when(receipt.sent_at)} to {_to(receipt)}."
    if receipt.state == State.NO_RECIPIENTS:
        text = "Not sent: the client had no contact with an email address at closure."
        if receipt.certificate_id is None and receipt.last_error:
            text += (
                f" The certificate failed: {receipt.last_error}; "
                f"next attempt at {_when(receipt.next_attempt_at)}."
            )
        return text
    if receipt.state == State.FAILED:
        return (
            f"Failed: {receipt.last_error} (attempt {receipt.attempts}); "
            f"next attempt at {_when(receipt.next_attempt_at)}. To: {_to(receipt)}."
        )
    return f"Queued for {_to(receipt)}: the certificate is rendered and sent in the background."
