"""`offboard calendar feed`: create a member's calendar feed (its URL printed once: only the
token's SHA-256 is kept), or revoke it."""

from typing import Annotated

import typer

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    fields_as_options,
    membership,
    out,
    plain,
    resolve_actor,
    say,
)

app = typer.Typer(
    no_args_is_help=True,
    help="Calendar feeds: a member's step due dates and case milestones for a calendar app.",
)


@app.command("feed")
def feed(
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="USERNAME",
            help="Whose feed (an admin may name anyone). Default: who acts (--as).",
        ),
    ] = None,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Revoke the member's feed instead of creating one.")
    ] = False,
    base_url: Annotated[
        str,
        typer.Option(
            envvar="OFFBOARD_BASE_URL",
            help="Where Offboard is served, for the URL. Default: $OFFBOARD_BASE_URL, else "
            "http://127.0.0.1:8000.",
        ),
    ] = "http://127.0.0.1:8000",
    org: OrgOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a member's calendar feed and print its URL once (a new feed replaces the old),
    or revoke it (--revoke)."""
    ensure_django()
    from offboard.calendar import services

    actor = resolve_actor(org, as_user)
    member = membership(actor.org, user or actor.user.username)
    name = member.user.username
    if revoke:
        revoked = services.revoke_calendar_feed(actor=actor, membership=member)
        if as_json:
            emit_json({"id": revoked.pk, "user": name, "revoked_at": revoked.revoked_at})
        else:
            say(f"Revoked the calendar feed of '{name}' in '{actor.org.slug}'.", "bold")
        return
    with fields_as_options({"base_url": "--base-url"}):
        issued = services.create_calendar_feed(actor=actor, membership=member, base_url=base_url)
    if as_json:
        emit_json(
            {
                "id": issued.feed.pk,
                "user": name,
                "created_at": issued.feed.created_at,
                "url": issued.url,
                "replaced_feed_ids": list(issued.replaced),
            }
        )
        return
    say(f"Calendar feed of '{name}' in '{actor.org.slug}': subscribe to it in a calendar app.")
    out.print(plain(issued.url), soft_wrap=True)
    say("This is the only time the URL is shown; only its hash is stored.")
    if issued.replaced:
        say("The previous feed's URL stopped working.")
