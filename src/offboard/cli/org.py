"""`offboard org …`: the organization's own settings. For now its document-signing certificate,
which signs the closure certificates (PDF): show the one in use, or import the
organization's own from a PKCS#12 file."""

from pathlib import Path
from typing import Annotated, Any

import typer

from offboard.cli.common import (
    AsOption,
    JsonOption,
    OrgOption,
    emit_json,
    ensure_django,
    fail,
    resolve_actor,
    say,
)

app = typer.Typer(no_args_is_help=True, help="The organization's settings.")
signing_app = typer.Typer(
    no_args_is_help=True,
    help="The certificate that signs the organization's closure certificates (PDF).",
)
app.add_typer(signing_app, name="signing-certificate")


def _describe(cert: Any) -> dict[str, Any]:
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "not_before": cert.not_before,
        "not_after": cert.not_after,
        "sha256": cert.fingerprint,
        "source": cert.source,
    }


def _print(cert: Any) -> None:
    origin = "imported" if cert.source == "imported" else "issued by Offboard's document-signing CA"
    say(f"Subject:  {cert.subject}")
    say(f"Issuer:   {cert.issuer} ({origin})")
    say(f"Valid:    {cert.not_before:%Y-%m-%d %H:%M} to {cert.not_after:%Y-%m-%d %H:%M} UTC")
    say(f"SHA-256:  {cert.fingerprint}")


@signing_app.command("show")
def show(
    org: OrgOption = None,
    as_user: AsOption = None,
    pem: Annotated[
        bool,
        typer.Option("--pem", help="Print the certificate chain (PEM) instead, to give a reader."),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """The certificate in use: subject, issuer, validity and SHA-256 fingerprint."""
    ensure_django()
    from offboard.reports.signing import current_certificate

    actor = resolve_actor(org, as_user)
    cert = current_certificate(actor.org)
    if cert is None:
        if json_out:
            emit_json({"certificate": None})
            return
        fail(
            f"{actor.org.name} has no document-signing certificate yet: Offboard issues one with "
            "the first closure certificate, or import your own with "
            "`offboard org signing-certificate import FILE.p12`."
        )
    if pem:
        typer.echo(cert.chain_pem(), nl=False)
    elif json_out:
        emit_json({"certificate": _describe(cert)})
    else:
        _print(cert)


@signing_app.command("import")
def import_certificate(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.p12",
            exists=True,
            dir_okay=False,
            readable=True,
            help="PKCS#12 file (.p12/.pfx) with the private key and its certificate chain.",
        ),
    ],
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            exists=True,
            dir_okay=False,
            readable=True,
            help="Read the password from this file (its first line) instead of prompting.",
        ),
    ] = None,
    org: OrgOption = None,
    as_user: AsOption = None,
) -> None:
    """Sign the organization's PDFs with its own certificate from now on (admins only). The
    password opens the file once and is never stored."""
    ensure_django()
    from offboard.reports.signing.services import import_signing_certificate

    actor = resolve_actor(org, as_user)
    if password_file is not None:
        lines = password_file.read_bytes().splitlines()
        password = lines[0] if lines else b""
    else:
        password = typer.prompt(
            f"Password of {file.name}", hide_input=True, default="", show_default=False
        ).encode()
    cert = import_signing_certificate(
        actor=actor, pkcs12_file=file.read_bytes(), password=password, filename=file.name
    )
    say(f"{actor.org.name} now signs its PDFs with this certificate:", "bold")
    _print(cert)
