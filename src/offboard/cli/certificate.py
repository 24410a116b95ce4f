"""`offboard case certificate REF --out FILE.pdf`: the closure certificate as a signed PDF.

An open case gets an interim report, marked so on every page. Signed like the certificate
issued at closure (docs/certificate.md). Reading only: no event.
"""

from pathlib import Path
from typing import Annotated

import typer

from offboard.cli.common import AsOption, OrgOption, ensure_django, resolve_actor, say


def certificate(
    ref: Annotated[str, typer.Argument(metavar="REF", help="Case reference, e.g. C-2026-0042.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", dir_okay=False, writable=True, help="Where to write the PDF, e.g. cert.pdf."
        ),
    ],
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Write the case's closure certificate (PDF): the five questions answered from the records.
    An open case gets an interim report."""
    ensure_django()
    from offboard.cases.selectors import get_case
    from offboard.reports.certificate import render_certificate
    from offboard.reports.signing import sign_certificate

    actor = resolve_actor(org, as_user)
    case = get_case(actor.org, ref)
    kind = "Certificate" if case.state == "closed" else "Interim report (case not closed)"
    pdf = sign_certificate(
        render_certificate(case), org=actor.org, reason=f"{kind} of case {case.ref}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    say(f"{kind} of {case.ref} written to {out} ({len(pdf):,} bytes).", "bold")
