"""`offboard case receipt REF [--retry]`: where a closed case's closure receipt stands.

`--retry` makes a waiting receipt due now and works on it in this process (after fixing the
mail settings, say); the worker would otherwise retry it at its next attempt time.
"""

from typing import Annotated

import typer

from offboard.cli.common import AsOption, OrgOption, ensure_django, fail, resolve_actor, say


def receipt(
    ref: Annotated[str, typer.Argument(metavar="REF", help="Case reference, e.g. C-2026-0042.")],
    retry: Annotated[
        bool,
        typer.Option(
            "--retry", help="Issue the certificate and send the receipt now, if not done yet."
        ),
    ] = False,
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Show a closed case's closure receipt: sent when and to whom, or why not and when the
    next attempt is. Exit 1 if it has failed."""
    ensure_django()
    from offboard.cases.selectors import get_case
    from offboard.notifications import receipts, services
    from offboard.notifications.models import ClosureReceipt
    from offboard.notifications.selectors import receipt_for, receipt_status

    actor = resolve_actor(org, as_user)
    case = get_case(actor.org, ref)
    if retry:
        queued = services.retry_closure_receipt(actor=actor, case=case)
        counts = receipts.process_pending(receipt_id=queued.pk)
        if not any(counts.values()):
            say("Another worker is working on it right now; look again in a minute.")
    found = receipt_for(case)
    if found is None:
        fail(f"Case {case.ref} has no closure receipt: it is {case.state}, not closed.")
    say(f"Closure receipt of {case.ref}: {found.get_state_display().lower()}", "bold")
    say(receipt_status(found))
    if found.certificate is not None:
        say(f"Certificate: {found.certificate.original_name} (sha256 {found.certificate.sha256})")
    else:
        say("Certificate: not issued yet.")
    if found.state == ClosureReceipt.State.FAILED:
        raise typer.Exit(1)
