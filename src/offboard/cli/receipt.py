"""`offboard case receipt REF [--retry] [--out FILE]`: where a closed case's closure receipt
stands.

`--retry` makes a waiting receipt due now and works on it in this process (after fixing the
mail settings, say); the worker would otherwise retry it at its next attempt time. `--out`
writes the receipt file the client was sent (to hand it over again): the same bytes, since
it is made from the closure checkpoint and the closure event, which never change.
"""

from pathlib import Path
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
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            dir_okay=False,
            help="Write the closure receipt file (<REF>-closure-receipt.txt) the client was sent.",
        ),
    ] = None,
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
    if out is not None:
        from offboard.notifications.receipt_email import closure_receipt_file, verify_command

        out.write_text(closure_receipt_file(case, found.checkpoint), encoding="utf-8")
        say(f"Receipt written to {out}; the client checks a pack with: {verify_command(case)}")
    if found.state == ClosureReceipt.State.FAILED:
        raise typer.Exit(1)
