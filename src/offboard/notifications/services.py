"""Closure receipts: queued inside the closing transaction; a failed one can be retried now."""

from typing import Any

from django.db import transaction

from offboard.cases.models import OffboardingCase
from offboard.clients.models import Client, Contact
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.errors import Conflict, NotFound
from offboard.core.permissions import require
from offboard.jobs.engine import enqueue
from offboard.notifications import receipts
from offboard.notifications.models import ClosureReceipt
from offboard.notifications.selectors import receipt_status

# Who receives the receipt: the client's primary and legal contacts, the people who speak
# for the client and would raise a dispute. A client with neither gets it at every contact.
RECEIPT_ROLES: tuple[str, ...] = (Contact.Role.PRIMARY, Contact.Role.LEGAL)


def closure_recipients(org: Any, client: Client) -> list[dict[str, str]]:
    """[{name, email, role}] of the client's contacts that receive the receipt, one per address."""
    contacts = list(Contact.objects.for_org(org).filter(client=client).order_by("name", "id"))
    chosen = [c for c in contacts if c.role in RECEIPT_ROLES] or contacts
    chosen.sort(key=lambda c: RECEIPT_ROLES.index(c.role) if c.role in RECEIPT_ROLES else 99)
    seen: set[str] = set()
    recipients = []
    for contact in chosen:
        email = contact.email.strip()
        if not email or email.lower() in seen:
            continue
        seen.add(email.lower())
        recipients.append({"name": contact.name, "email": email, "role": contact.role})
    return recipients


def queue_closure_receipt(
    *, actor: Actor, case: OffboardingCase, checkpoint: Any
) -> ClosureReceipt:
    """In the closing transaction: the outbox row. Rendering and sending start after commit,
    so a slow or broken mail server can never hold up or undo a closure."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("queue_closure_receipt must run inside the closing transaction")
    recipients = closure_recipients(actor.org, case.client)
    now = clock.now()
    receipt = ClosureReceipt.objects.create(
        org=actor.org,
        case=case,
        checkpoint=checkpoint,
        closed_by=actor.user,
        closed_by_role=actor.role,
        recipients=recipients,
        state=ClosureReceipt.State.PENDING if recipients else ClosureReceipt.State.NO_RECIPIENTS,
        next_attempt_at=now,
        created_at=now,
    )
    enqueue("offboard.jobs.tasks.send_closure_receipt", receipt.pk)  # in this transaction
    transaction.on_commit(lambda: receipts.request_soon(receipt.pk))  # sooner, in this process
    return receipt


@transaction.atomic
def retry_closure_receipt(*, actor: Actor, case: OffboardingCase) -> ClosureReceipt:
    """Make a waiting receipt due now (after fixing the mail settings, say). Bookkeeping of
    the outbox, not a change to the case: no event; the send itself is recorded."""
    require(actor, "cases.transition")
    receipt = ClosureReceipt.objects.select_for_update().filter(org=actor.org, case=case).first()
    if receipt is None:
        raise NotFound(f"Case {case.ref} has no closure receipt: it is {case.state}, not closed.")
    if receipt.next_attempt_at is None:
        raise Conflict(
            f"The closure receipt of {case.ref} has nothing left to do: {receipt_status(receipt)}",
            code="receipt_done",
        )
    receipt.next_attempt_at = clock.now()
    receipt.save(update_fields=["next_attempt_at"])
    enqueue("offboard.jobs.tasks.send_closure_receipt", receipt.pk)
    return receipt
