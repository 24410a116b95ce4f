"""`offboard case portal-link REF`: issue a client contact's portal link, revoke one, or list
the case's links. The URL of a new link is printed once: only its token's SHA-256 is kept."""

from typing import Annotated, Any

import typer

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    fields_as_options,
    out,
    plain,
    resolve_actor,
    say,
)

FIELDS = {
    "contact": "--contact",
    "contact_email": "--contact",
    "days": "--days",
    "respond_days": "--respond-days",
    "base_url": "--base-url",
    "reason": "--reason",
}


def _row(link: Any, now: Any) -> dict[str, Any]:
    return {
        "id": link.pk,
        "contact": {"name": link.contact.name, "email": link.contact.email},
        "status": link.status_at(now),
        "created_at": link.created_at,
        "created_by": link.created_by.username,
        "expires_at": link.expires_at,
        "respond_by": link.respond_by,
        "revoked_at": link.revoked_at,
        "last_used_at": link.last_used_at,
        "emailed_at": link.emailed_at,
        "email_error": link.email_error,
    }


def _day(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def portal_link(
    ref: Annotated[str, typer.Argument(metavar="REF", help="Case reference, e.g. C-2026-0042.")],
    contact: Annotated[
        str | None,
        typer.Option("--contact", metavar="EMAIL", help="Issue a link to this client contact."),
    ] = None,
    days: Annotated[int, typer.Option(help="Days the new link works (1-90).")] = 30,
    respond_days: Annotated[
        int | None,
        typer.Option(help="Days the contact is given to respond (default 14, at most --days)."),
    ] = None,
    no_email: Annotated[
        bool, typer.Option("--no-email", help="Do not email the link; just print it.")
    ] = False,
    base_url: Annotated[
        str,
        typer.Option(
            envvar="OFFBOARD_BASE_URL",
            help="Where Offboard is served, for the link. Default: $OFFBOARD_BASE_URL, else "
            "http://127.0.0.1:8000.",
        ),
    ] = "http://127.0.0.1:8000",
    revoke: Annotated[
        int | None, typer.Option("--revoke", metavar="ID", help="Revoke the link with this id.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why the link is revoked (with --revoke).")] = "",
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a portal link to a client contact (--contact), revoke one (--revoke), or, with
    neither, list the case's links."""
    if contact is not None and revoke is not None:
        raise typer.BadParameter("give --contact or --revoke, not both", param_hint="--revoke")
    ensure_django()
    from offboard.cases.selectors import get_case
    from offboard.core import clock
    from offboard.core.errors import NotFound
    from offboard.portal import selectors, services

    actor = resolve_actor(org, as_user)
    case = get_case(actor.org, ref)
    if contact is not None:
        with fields_as_options(FIELDS):
            issued = services.issue_portal_link(
                actor=actor,
                case=case,
                contact=selectors.case_contact(case, email=contact),
                base_url=base_url,
                days=days,
                respond_days=respond_days,
                send_email=not no_email,
            )
        link = issued.link
        if as_json:
            emit_json({**_row(link, clock.now()), "url": issued.url, "emailed": issued.emailed})
            return
        say(f"Portal link {link.pk} for {link.contact.name} <{link.contact.email}> on {case.ref}:")
        out.print(plain(issued.url), soft_wrap=True)
        say(
            f"Works until {_day(link.expires_at)}; respond by {_day(link.respond_by)}. "
            "This is the only time the URL is shown."
        )
        if no_email:
            say("Not emailed (--no-email): send the URL to the contact yourself.")
        elif issued.emailed:
            say(f"Emailed to {link.contact.email}.")
        else:
            say(f"Emailing it failed: {issued.email_error}", "red")
        return
    if revoke is not None:
        link = selectors.get_link(actor.org, revoke)
        if link.case_id != case.pk:
            raise NotFound(f"No portal link {revoke} on case {case.ref}.")
        with fields_as_options(FIELDS):
            revoked = services.revoke_portal_link(actor=actor, link=link, reason=reason)
        if as_json:
            emit_json(_row(revoked, clock.now()))
        else:
            say(f"Revoked portal link {revoked.pk} for {revoked.contact.name} on {case.ref}.")
        return
    now = clock.now()
    rows = [_row(link, now) for link in selectors.links(case)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        say(f"No portal links on {case.ref}. Issue one with --contact EMAIL.")
        return
    from rich.table import Table

    table = Table(title=f"Portal links of {case.ref}", title_justify="left")
    for column in ("id", "contact", "status", "created", "expires", "respond by", "last used"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["id"]),
            plain(f"{r['contact']['name']} <{r['contact']['email']}>"),
            r["status"],
            plain(_day(r["created_at"])),
            plain(_day(r["expires_at"])),
            plain(_day(r["respond_by"])),
            plain(_day(r["last_used_at"])),
        )
    out.print(table)
