"""`offboard case portal-link`: issue (the URL printed once), revoke, list."""

import json

import pytest
from typer.testing import CliRunner

from offboard.cli import app
from offboard.portal.models import PortalLink
from offboard.portal.selectors import link_for_token
from tests.portal.conftest import token_of


@pytest.fixture(autouse=True)
def _no_ambient_identity(monkeypatch):
    for name in ("OFFBOARD_ORG", "OFFBOARD_USER", "OFFBOARD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_issuing_prints_the_url_once_and_emails_it(portal_case, cast):
    from django.core import mail

    mail.outbox.clear()
    result = run(
        "case", "portal-link", portal_case.ref, "--contact", "nina@northwind.example",
        "--days", "21", "--base-url", "https://offboard.acme.example", "--as", "bob",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    url = next(w for w in result.output.split() if w.startswith("https://"))
    assert url.startswith("https://offboard.acme.example/portal/")
    assert link_for_token(token_of(url)) == PortalLink.objects.get()
    assert "only time the URL is shown" in result.output
    assert "Emailed to nina@northwind.example" in result.output
    assert url in mail.outbox[0].body


def test_issuing_as_json(portal_case, cast):
    result = run(
        "case", "portal-link", portal_case.ref, "--contact", "nina@northwind.example",
        "--no-email", "--json", "--as", "alice",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["url"].startswith("http://127.0.0.1:8000/portal/")
    assert body["emailed"] is False and body["status"] == "active"


def test_an_unknown_contact_or_a_refused_role_is_one_line_and_exit_1(portal_case, cast):
    unknown = run(
        "case", "portal-link", portal_case.ref, "--contact", "nobody@northwind.example",
        "--as", "alice",
    )  # fmt: skip
    assert unknown.exit_code == 1
    assert "--contact: nobody@northwind.example is not a contact of Northwind Traders" in (
        unknown.output
    )
    refused = run(
        "case", "portal-link", portal_case.ref, "--contact", "nina@northwind.example",
        "--as", "oscar",
    )  # fmt: skip
    assert refused.exit_code == 1 and "portal.links" in refused.output
    too_long = run(
        "case", "portal-link", portal_case.ref, "--contact", "nina@northwind.example",
        "--days", "200", "--as", "alice",
    )  # fmt: skip
    assert too_long.exit_code == 1 and "--days: must be between 1 and 90" in too_long.output
    assert not PortalLink.objects.exists()


def test_revoking_and_listing(issued, token, portal_case, cast):
    listed = run("case", "portal-link", portal_case.ref, "--as", "erin")
    assert listed.exit_code == 0, listed.output
    assert "Nina North" in listed.output and "active" in listed.output
    assert token not in listed.output

    result = run(
        "case", "portal-link", portal_case.ref, "--revoke", str(issued.link.pk),
        "--reason", "Sent to the wrong address", "--as", "alice",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert f"Revoked portal link {issued.link.pk}" in result.output
    assert link_for_token(token) is None
    again = run(
        "case", "portal-link", portal_case.ref, "--revoke", str(issued.link.pk), "--as", "alice"
    )
    assert again.exit_code == 1 and "already revoked" in again.output


def test_a_link_of_another_case_is_not_found(issued, other_case, cast):
    result = run(
        "case", "portal-link", other_case.ref, "--revoke", str(issued.link.pk), "--as", "alice"
    )
    assert result.exit_code == 1
    assert f"No portal link {issued.link.pk} on case {other_case.ref}" in result.output
    assert PortalLink.objects.get().revoked_at is None


def test_contact_and_revoke_together_is_a_usage_error(portal_case, cast):
    result = run(
        "case", "portal-link", portal_case.ref, "--contact", "nina@northwind.example",
        "--revoke", "1",
    )  # fmt: skip
    assert result.exit_code == 2
