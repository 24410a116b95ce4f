"""The signed closure certificate (PAdES): checked by OpenSSL and Poppler's pdfsig, never only by
the library that signed it; a one-byte edit breaks it; a TSA adds a timestamp when it answers
and blocks nothing when it does not; an organization may sign with its own PKCS#12."""

import datetime as dt
import io
import logging
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.conf import settings
from django.test import Client

from offboard.core.errors import Conflict, PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry
from offboard.reports.certificate import render_certificate
from offboard.reports.signing import SigningUnavailable, current_certificate, sign_certificate
from offboard.reports.signing.services import import_signing_certificate
from tests.signed_pdf import (
    installation_ca_pem,
    make_pkcs12,
    openssl_verify,
    openssl_verify_timestamp,
    pdfsig,
    signature_of,
    signer_info,
    timestamp_token,
)
from tests.tsa import LocalTSA, second_tsa, tsa

__all__ = ["second_tsa", "tsa"]

REASON = "Closure certificate of case C-TEST"


@pytest.fixture(autouse=True)
def _tsas_back_up(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("tsa", "second_tsa"):
        if name in request.fixturenames:
            request.getfixturevalue(name).up()


@pytest.fixture(scope="session")
def small_pdf() -> bytes:
    import weasyprint

    return weasyprint.HTML(string="<h1>Closure certificate</h1><p>C-TEST</p>").write_pdf()


def edited(pdf: bytes, at: int) -> bytes:
    changed = b"X" if pdf[at : at + 1] != b"X" else b"Y"
    return pdf[:at] + changed + pdf[at + 1 :]


def key_dir_files() -> dict[str, bytes]:
    """Every file of the document-signing store (the ledger's checkpoint keys are beside it)."""
    base = Path(settings.OFFBOARD_KEY_DIR) / "document-signing"
    if not base.exists():
        return {}
    return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}


# --- signed by Offboard's certificate for the organization --------------------------------------


def test_the_certificate_is_signed_and_openssl_and_pdfsig_say_the_signature_is_valid(
    case, tmp_path
):
    pdf = render_certificate(case)
    signed = sign_certificate(pdf, org=case.org, reason=REASON)

    assert signed.startswith(pdf)  # the rendered PDF, byte for byte, then the signature
    sig = signature_of(signed)
    assert sig.sub_filter == "/ETSI.CAdES.detached"  # PAdES
    assert sig.reason == REASON
    a, b, c, d = sig.byte_range
    # Everything but the gap of the signature's own /Contents.
    assert a == 0 and b < c and c + d == len(signed)
    assert timestamp_token(sig) is None  # no TSA configured

    checked = openssl_verify(signed, installation_ca_pem(), tmp_path / "openssl")
    assert checked.returncode == 0, checked.stderr
    assert "Verification successful" in checked.stderr

    report = pdfsig(signed, tmp_path / "pdfsig")
    assert "Signature is Valid." in report, report
    assert "Total document signed" in report
    assert "Signer Certificate Common Name: Acme Digital" in report


def test_each_organization_gets_its_own_certificate_from_one_installation_ca(
    org, other_org, small_pdf
):
    sign_certificate(small_pdf, org=org, reason=REASON)
    sign_certificate(small_pdf, org=other_org, reason=REASON)
    acme, globex = current_certificate(org), current_certificate(other_org)
    assert acme is not None and globex is not None
    assert acme.fingerprint != globex.fingerprint
    assert acme.issuer == globex.issuer and "CN=Offboard document-signing CA" in acme.issuer
    assert "CN=Acme Digital" in acme.subject and "CN=Globex Partners" in globex.subject
    assert f"{settings.SITE_HOST}/offboard/acme" in acme.subject  # the ledger's origin

    leaf = acme.certificate
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36") in eku  # documentSigning
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert isinstance(acme.key, ec.EllipticCurvePrivateKey) and acme.key.curve.name == "secp256r1"

    # Kept, not made anew: the next PDF is signed by the same certificate.
    sign_certificate(small_pdf, org=org, reason=REASON)
    assert current_certificate(org).fingerprint == acme.fingerprint

    # Private keys are files only the server's user can read.
    keys = list(Path(settings.OFFBOARD_KEY_DIR, "document-signing").rglob("key.pem"))
    assert len(keys) == 3  # the CA, Acme, Globex
    assert all(stat.S_IMODE(os.stat(k).st_mode) == 0o600 for k in keys)


def test_processes_signing_at_once_for_the_first_time_agree_on_one_certificate(org):
    from offboard.reports.signing.certificates import certificate_in_use

    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: certificate_in_use(org).fingerprint, range(8)))
    assert len(set(found)) == 1 and current_certificate(org).fingerprint == found[0]
    cas = list(Path(settings.OFFBOARD_KEY_DIR, "document-signing", "ca").glob("issued-*"))
    in_use = (Path(settings.OFFBOARD_KEY_DIR, "document-signing", "ca", "current")).read_text()
    assert in_use.strip() in {c.name for c in cas}


def test_an_issued_certificate_is_renewed_before_it_ends(org, small_pdf, monkeypatch):
    from offboard.reports.signing import certificates

    sign_certificate(small_pdf, org=org, reason=REASON)
    first = current_certificate(org)
    soon = first.not_after - dt.timedelta(days=29)
    monkeypatch.setattr(certificates, "now", lambda: soon)
    sign_certificate(small_pdf, org=org, reason=REASON)
    renewed = current_certificate(org)
    assert renewed.fingerprint != first.fingerprint and renewed.not_after > first.not_after
    assert (first.path / "key.pem").exists()  # kept: it signed the earlier PDFs


def test_unreadable_key_files_are_a_clear_error(org, small_pdf):
    sign_certificate(small_pdf, org=org, reason=REASON)
    key = current_certificate(org).path / "key.pem"
    key.unlink()
    with pytest.raises(SigningUnavailable) as failed:
        sign_certificate(small_pdf, org=org, reason=REASON)
    assert str(failed.value).startswith(
        f"Cannot read the document-signing certificate at {key.parent}: No such file or directory."
    )


@pytest.mark.parametrize(
    "where",
    ["in the rendered PDF", "in the signature field", "in the signature's reason", "at the end"],
)
def test_a_one_byte_edit_in_the_signed_range_is_caught_by_openssl_and_pdfsig(
    org, small_pdf, tmp_path, where
):
    signed = sign_certificate(small_pdf, org=org, reason=REASON)
    a, b, c, d = signature_of(signed).byte_range
    at = {
        "in the rendered PDF": len(small_pdf) // 2,
        "in the signature field": signed.index(b"/T (OffboardSignature)", len(small_pdf)) + 5,
        "in the signature's reason": signed.index(b"/Reason (", c) + 10,
        "at the end": len(signed) - 3,  # in "%%EOF"
    }[where]
    assert a <= at < a + b or c <= at < c + d
    tampered = edited(signed, at)

    checked = openssl_verify(tampered, installation_ca_pem(), tmp_path / "openssl")
    assert checked.returncode != 0
    assert "Verification successful" not in checked.stderr
    report = pdfsig(tampered, tmp_path / "pdfsig")
    assert "Signature Validation: Digest Mismatch." in report, report
    # The untouched file still verifies: the edit, not the set-up, broke it.
    assert openssl_verify(signed, installation_ca_pem(), tmp_path / "again").returncode == 0


# --- the signature timestamp -----------------------------------------------------------------


def test_with_a_tsa_the_signature_carries_a_timestamp_that_openssl_verifies(
    org, small_pdf, tmp_path, settings, tsa: LocalTSA
):
    settings.OFFBOARD_TSA_URLS = [tsa.url]
    settings.OFFBOARD_TSA_ROOTS = tsa.ca_pem_path
    signed = sign_certificate(small_pdf, org=org, reason=REASON)

    sig = signature_of(signed)
    assert timestamp_token(sig) is not None
    stamped = openssl_verify_timestamp(sig, tsa.ca_crt, tmp_path / "ts")
    assert stamped.returncode == 0 and "Verification: OK" in stamped.stdout, stamped.stderr
    checked = openssl_verify(signed, installation_ca_pem(), tmp_path / "openssl")
    assert checked.returncode == 0, checked.stderr
    report = pdfsig(signed, tmp_path / "pdfsig")
    assert "Signature is Valid." in report, report

    # pyHanko's own validator agrees, and finds the timestamp (a third opinion, not the only).
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(signed))
    # The validator runs its own event loop (asyncio.run): in a thread of its own, since a
    # browser test before this one on the same worker may have left Playwright's loop running.
    with ThreadPoolExecutor(max_workers=1) as pool:
        status = pool.submit(
            validate_pdf_signature,
            reader.embedded_signatures[0],
            signer_validation_context=ValidationContext(
                trust_roots=[load_cert_from_pemder(str(installation_ca_pem()))]
            ),
            ts_validation_context=ValidationContext(
                trust_roots=[load_cert_from_pemder(tsa.ca_pem_path)]
            ),
        ).result()
    assert status.intact and status.valid and status.trusted
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted


def test_the_first_tsa_that_answers_stamps_the_signature(
    org, small_pdf, tmp_path, settings, tsa: LocalTSA, second_tsa: LocalTSA
):
    tsa.down("503")
    settings.OFFBOARD_TSA_URLS = [tsa.url, second_tsa.url]
    roots = tmp_path / "roots.pem"
    roots.write_bytes(tsa.ca_crt.read_bytes() + second_tsa.ca_crt.read_bytes())
    settings.OFFBOARD_TSA_ROOTS = str(roots)
    served = second_tsa.served

    signed = sign_certificate(small_pdf, org=org, reason=REASON)

    sig = signature_of(signed)
    assert second_tsa.served > served
    assert openssl_verify_timestamp(sig, second_tsa.ca_crt, tmp_path / "ts").returncode == 0


@pytest.mark.parametrize("mode", ["503", "close", "garbage", "reject"])
def test_a_tsa_that_fails_blocks_nothing_the_pdf_is_signed_without_a_timestamp(
    org, small_pdf, tmp_path, settings, caplog, tsa: LocalTSA, mode
):
    tsa.down(mode)
    settings.OFFBOARD_TSA_URLS = [tsa.url]
    settings.OFFBOARD_TSA_ROOTS = tsa.ca_pem_path
    with caplog.at_level(logging.WARNING, logger="offboard.reports.signing"):
        signed = sign_certificate(small_pdf, org=org, reason=REASON)

    sig = signature_of(signed)
    assert timestamp_token(sig) is None
    assert openssl_verify(signed, installation_ca_pem(), tmp_path / "openssl").returncode == 0
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert "WITHOUT a signature timestamp" in warning and tsa.url in warning


def test_a_tsa_that_is_not_listening_blocks_nothing(org, small_pdf, tmp_path, settings, caplog):
    settings.OFFBOARD_TSA_URLS = ["http://127.0.0.1:9/tsa"]  # discard port: connection refused
    settings.OFFBOARD_TSA_ROOTS = ""
    with caplog.at_level(logging.WARNING, logger="offboard.reports.signing"):
        signed = sign_certificate(small_pdf, org=org, reason=REASON)
    assert timestamp_token(signature_of(signed)) is None
    assert openssl_verify(signed, installation_ca_pem(), tmp_path / "openssl").returncode == 0
    assert "OFFBOARD_TSA_ROOTS is not set" in caplog.text


def test_a_token_from_a_tsa_outside_the_trusted_roots_is_not_embedded(
    org, small_pdf, settings, caplog, tsa: LocalTSA, second_tsa: LocalTSA
):
    settings.OFFBOARD_TSA_URLS = [tsa.url]
    settings.OFFBOARD_TSA_ROOTS = second_tsa.ca_pem_path  # trusts the other TSA only
    with caplog.at_level(logging.WARNING, logger="offboard.reports.signing"):
        signed = sign_certificate(small_pdf, org=org, reason=REASON)
    assert timestamp_token(signature_of(signed)) is None
    assert "does not verify" in caplog.text


# --- the organization's own certificate (PKCS#12) ----------------------------------------------


def test_an_imported_pkcs12_signs_the_next_certificate(cast, small_pdf, tmp_path):
    alice = cast["alice"]
    sign_certificate(small_pdf, org=alice.org, reason=REASON)  # Offboard's certificate first
    issued = current_certificate(alice.org)
    p12, ca_pem, leaf = make_pkcs12(tmp_path / "p12", b"s3cret pass")

    imported = import_signing_certificate(
        actor=alice, pkcs12_file=p12.read_bytes(), password=b"s3cret pass", filename="acme.p12"
    )

    assert imported.source == "imported"
    assert imported.certificate == leaf
    signed = sign_certificate(small_pdf, org=alice.org, reason=REASON)
    checked = openssl_verify(signed, ca_pem, tmp_path / "openssl")
    assert checked.returncode == 0, checked.stderr
    # …and no longer by Offboard's CA.
    assert openssl_verify(signed, installation_ca_pem(), tmp_path / "old").returncode != 0
    report = pdfsig(signed, tmp_path / "pdfsig")
    assert "Signature is Valid." in report and "Acme Digital Ltd — document signing" in report

    event = LedgerEntry.objects.filter(type="signing_certificate.imported").get()
    data = event.data
    assert data["sha256"] == leaf.fingerprint(hashes.SHA256()).hex()
    assert data["subject"] == leaf.subject.rfc4514_string()
    assert data["not_after"].startswith(f"{leaf.not_valid_after_utc:%Y-%m-%d}")
    assert data["replaces"] == issued.fingerprint
    body = bytes(event.body)
    assert b"PRIVATE" not in body and b"s3cret" not in body
    # The key is a 0600 file; the password is nowhere.
    key_file = imported.path / "key.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert all(b"s3cret" not in content for content in key_dir_files().values())


def test_an_imported_certificate_that_has_ended_gives_way_to_one_offboard_issues(
    cast, small_pdf, tmp_path, monkeypatch, caplog
):
    from offboard.reports.signing import certificates

    alice = cast["alice"]
    p12, _, leaf = make_pkcs12(tmp_path / "p12", b"pw", days=10)
    import_signing_certificate(actor=alice, pkcs12_file=p12.read_bytes(), password=b"pw")
    later = leaf.not_valid_after_utc + dt.timedelta(days=1)
    monkeypatch.setattr(certificates, "now", lambda: later)
    with caplog.at_level(logging.WARNING, logger="offboard.reports.signing"):
        signed = sign_certificate(small_pdf, org=alice.org, reason=REASON)
    issued = current_certificate(alice.org)
    assert issued.source == "issued"
    assert "Offboard issues its own until a new one is imported" in caplog.text
    signer = signer_info(signature_of(signed))["sid"].chosen["serial_number"].native
    assert signer == issued.certificate.serial_number


def test_a_wrong_password_is_refused_and_writes_nothing(cast, small_pdf, tmp_path):
    alice = cast["alice"]
    sign_certificate(small_pdf, org=alice.org, reason=REASON)
    p12, _, _ = make_pkcs12(tmp_path / "p12", b"right")
    before, events = key_dir_files(), LedgerEntry.objects.count()

    with pytest.raises(ValidationFailed) as refused:
        import_signing_certificate(
            actor=alice, pkcs12_file=p12.read_bytes(), password=b"wrong", filename="acme.p12"
        )

    assert refused.value.message == (
        "Cannot import acme.p12: the password is wrong, or it is not a PKCS#12 (.p12/.pfx) file."
    )
    assert key_dir_files() == before and LedgerEntry.objects.count() == events


@pytest.mark.parametrize(
    ("days", "start_days_ago", "problem"),
    [(10, 20, "not now"), (10, -5, "not now")],
    ids=["expired", "not yet valid"],
)
def test_a_certificate_outside_its_validity_is_refused(
    cast, tmp_path, days, start_days_ago, problem
):
    p12, _, _ = make_pkcs12(tmp_path / "p12", b"pw", days=days, start_days_ago=start_days_ago)
    with pytest.raises(ValidationFailed, match=problem):
        import_signing_certificate(
            actor=cast["alice"], pkcs12_file=p12.read_bytes(), password=b"pw"
        )
    assert key_dir_files() == {}


def test_only_an_admin_may_import_and_the_same_certificate_twice_changes_nothing(cast, tmp_path):
    p12, _, _ = make_pkcs12(tmp_path / "p12", b"pw")
    with pytest.raises(PermissionDenied):
        import_signing_certificate(actor=cast["bob"], pkcs12_file=p12.read_bytes(), password=b"pw")
    assert key_dir_files() == {}
    import_signing_certificate(actor=cast["alice"], pkcs12_file=p12.read_bytes(), password=b"pw")
    with pytest.raises(Conflict, match="already signs the documents of Acme Digital"):
        import_signing_certificate(
            actor=cast["alice"], pkcs12_file=p12.read_bytes(), password=b"pw"
        )
    assert LedgerEntry.objects.filter(type="signing_certificate.imported").count() == 1


def test_a_failed_event_leaves_the_previous_certificate_in_use(
    cast, small_pdf, tmp_path, monkeypatch
):
    alice = cast["alice"]
    sign_certificate(small_pdf, org=alice.org, reason=REASON)
    before = current_certificate(alice.org)
    p12, _, _ = make_pkcs12(tmp_path / "p12", b"pw")

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("offboard.reports.signing.services.record_event", broken)
    with pytest.raises(RuntimeError):
        import_signing_certificate(actor=alice, pkcs12_file=p12.read_bytes(), password=b"pw")
    assert current_certificate(alice.org).fingerprint == before.fingerprint


# --- shown on the Settings page ----------------------------------------------------------------


def test_the_settings_page_shows_the_certificate_in_use(cast, small_pdf):
    web = Client()
    web.force_login(cast["erin"].user)  # an auditor: read-only, sees it too
    assert (
        "None yet: Offboard issues one for Acme Digital" in web.get("/settings/").content.decode()
    )

    sign_certificate(small_pdf, org=cast["alice"].org, reason=REASON)
    cert = current_certificate(cast["alice"].org)
    body = web.get("/settings/").content.decode()
    assert "Document-signing certificate" in body
    assert cert.fingerprint in body
    assert "CN=Offboard document-signing CA" in body
    assert "issued by this Offboard’s document-signing CA" in body
