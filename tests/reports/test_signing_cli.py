"""`offboard org signing-certificate show|import` and the signed `offboard case certificate`,
driven through Typer's runner with the shared cast in organization Acme."""

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from django.conf import settings
from typer.testing import CliRunner

from offboard.cli import app
from offboard.ledger.models import LedgerEntry
from tests.signed_pdf import installation_ca_pem, make_pkcs12, openssl_verify, pdfsig


@pytest.fixture(autouse=True)
def _no_ambient_identity(monkeypatch):
    for name in ("OFFBOARD_ORG", "OFFBOARD_USER"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def store_files() -> dict[str, bytes]:
    base = Path(settings.OFFBOARD_KEY_DIR) / "document-signing"
    if not base.exists():
        return {}
    return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def test_case_certificate_writes_a_signed_pdf(case, tmp_path):
    out = tmp_path / "cert.pdf"
    result = run("case", "certificate", case.ref, "--out", str(out), "--org", "acme")
    assert result.exit_code == 0, result.output
    assert f"Interim report (case not closed) of {case.ref} written to {out}" in result.stdout

    pdf = out.read_bytes()
    checked = openssl_verify(pdf, installation_ca_pem(), tmp_path / "openssl")
    assert checked.returncode == 0, checked.stderr
    assert "Signature is Valid." in pdfsig(pdf, tmp_path / "pdfsig")


def test_show_before_any_certificate_says_how_one_comes(cast):
    result = run("org", "signing-certificate", "show", "--org", "acme")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: Acme Digital has no document-signing certificate yet: Offboard issues one with "
        "the first closure certificate, or import your own with "
        "`offboard org signing-certificate import FILE.p12`."
    ]


def test_import_from_a_password_file_then_show_and_sign_with_it(case, tmp_path):
    p12, ca_pem, leaf = make_pkcs12(tmp_path / "p12", b"correct horse")
    password = tmp_path / "password.txt"
    password.write_text("correct horse\n")
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex()

    result = run(
        "org", "signing-certificate", "import", str(p12), "--password-file", str(password),
        "--org", "acme", "--as", "alice",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Acme Digital now signs its PDFs with this certificate:" in result.stdout
    assert f"SHA-256:  {fingerprint}" in result.stdout
    assert LedgerEntry.objects.filter(type="signing_certificate.imported").count() == 1

    shown = run("org", "signing-certificate", "show", "--org", "acme", "--json")
    assert shown.exit_code == 0, shown.output
    cert = json.loads(shown.stdout)["certificate"]
    assert cert["sha256"] == fingerprint and cert["source"] == "imported"
    assert cert["subject"] == leaf.subject.rfc4514_string()
    assert cert["issuer"] == "O=Acme Digital Ltd,CN=Acme Test Root"
    assert cert["not_after"].startswith(f"{leaf.not_valid_after_utc:%Y-%m-%d}")
    text = run("org", "signing-certificate", "show", "--org", "acme").stdout
    assert "Issuer:   O=Acme Digital Ltd,CN=Acme Test Root (imported)" in text
    chain = run("org", "signing-certificate", "show", "--org", "acme", "--pem").stdout
    assert chain.count("-----BEGIN CERTIFICATE-----") == 2 and "PRIVATE" not in chain

    out = tmp_path / "cert.pdf"
    assert run("case", "certificate", case.ref, "--out", str(out), "--org", "acme").exit_code == 0
    checked = openssl_verify(out.read_bytes(), ca_pem, tmp_path / "openssl")
    assert checked.returncode == 0, checked.stderr


def test_import_with_a_prompted_password(cast, tmp_path):
    p12, _, _ = make_pkcs12(tmp_path / "p12", b"typed in")
    result = run(
        "org", "signing-certificate", "import", str(p12), "--org", "acme", "--as", "alice",
        input="typed in\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "typed in" not in result.output  # not echoed


def test_a_wrong_password_is_one_line_exit_1_and_writes_nothing(cast, tmp_path):
    p12, _, _ = make_pkcs12(tmp_path / "p12", b"right")
    before, events = store_files(), LedgerEntry.objects.count()
    result = run(
        "org", "signing-certificate", "import", str(p12), "--org", "acme", "--as", "alice",
        input="wrong\n",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: Cannot import acme.p12: the password is wrong, or it is not a PKCS#12 "
        "(.p12/.pfx) file."
    ]
    assert store_files() == before and LedgerEntry.objects.count() == events


def test_a_manager_may_not_import(cast, tmp_path):
    p12, _, _ = make_pkcs12(tmp_path / "p12", b"pw")
    result = run(
        "org", "signing-certificate", "import", str(p12), "--org", "acme", "--as", "bob",
        input="pw\n",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Your role 'manager' may not do this (org.manage_members)" in result.stderr
    assert store_files() == {}
