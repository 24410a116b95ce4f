"""The closure certificate's PAdES signature made with a key on a PKCS#11 token (SoftHSM2,
decision 0033): the certificate is issued by the installation CA as before, the key never
leaves the token, OpenSSL and pdfsig accept the signature, and a token that fails signs nothing."""

from pathlib import Path
from typing import Any

import pkcs11 as p11
import pytest

from offboard.ledger import pkcs11
from offboard.reports.signing import SigningUnavailable, current_certificate, sign_certificate
from offboard.reports.signing.certificates import token_config
from tests.signed_pdf import installation_ca_pem, openssl_verify, pdfsig, signature_of
from tests.softhsm import SoftHSM, on_token, softhsm

__all__ = ["on_token", "softhsm"]

REASON = "Closure certificate of case C-TEST"


@pytest.fixture(scope="module")
def small_pdf() -> bytes:
    import weasyprint

    return weasyprint.HTML(string="<h1>Closure certificate</h1><p>C-TEST</p>").write_pdf()


def private_keys_on_disk(settings: Any) -> list[Path]:
    return sorted(Path(settings.OFFBOARD_KEY_DIR).rglob("key.pem"))


def test_the_pdf_is_signed_with_a_key_made_on_the_token(
    on_token: SoftHSM, org: Any, small_pdf: bytes, tmp_path: Path, settings: Any
) -> None:
    signed = sign_certificate(small_pdf, org=org, reason=REASON)

    certificate = current_certificate(org)
    assert certificate is not None and certificate.key is None
    assert certificate.token_key.startswith("pkcs11:token=offboard;id=%")
    assert "CN=Offboard document-signing CA" in certificate.issuer
    # Only the installation CA's key is a file; the organization's is on the token.
    assert [p.parent.parent.name for p in private_keys_on_disk(settings)] == ["ca"]
    config = token_config()
    assert config is not None
    location = pkcs11.KeyLocation.parse(certificate.token_key)
    attributes = pkcs11.key_attributes(config, location)
    assert attributes["extractable"] is False and attributes["never_extractable"] is True
    assert attributes["sensitive"] is True and attributes["local"] is True

    assert signature_of(signed).reason == REASON
    checked = openssl_verify(signed, installation_ca_pem(), tmp_path / "openssl")
    assert checked.returncode == 0, checked.stderr
    assert "Verification successful" in checked.stderr
    report = pdfsig(signed, tmp_path / "pdfsig")
    assert "Signature is Valid." in report, report
    assert "Signer Certificate Common Name: Acme Digital" in report


def test_moving_to_the_token_issues_a_new_certificate_once(
    softhsm: SoftHSM, org: Any, small_pdf: bytes, settings: Any
) -> None:
    sign_certificate(small_pdf, org=org, reason=REASON)
    on_disk = current_certificate(org)
    assert on_disk is not None and on_disk.key is not None and not on_disk.token_key

    settings.OFFBOARD_PKCS11_MODULE = softhsm.module
    settings.OFFBOARD_PKCS11_TOKEN = softhsm.label
    settings.OFFBOARD_PKCS11_PIN_FILE = str(softhsm.pin_file)
    sign_certificate(small_pdf, org=org, reason=REASON)
    moved = current_certificate(org)
    assert moved is not None and moved.token_key and moved.fingerprint != on_disk.fingerprint
    sign_certificate(small_pdf, org=org, reason=REASON)
    again = current_certificate(org)
    assert again is not None and again.fingerprint == moved.fingerprint  # once, not each time


def test_a_token_that_cannot_sign_gives_a_clear_error_and_no_pdf(
    on_token: SoftHSM, org: Any, small_pdf: bytes, tmp_path: Path, settings: Any
) -> None:
    sign_certificate(small_pdf, org=org, reason=REASON)
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("not-the-pin\n")
    settings.OFFBOARD_PKCS11_PIN_FILE = str(wrong)
    try:
        with pytest.raises(SigningUnavailable, match="refused the PIN: check OFFBOARD_PKCS11_PIN"):
            sign_certificate(small_pdf, org=org, reason=REASON)
    finally:
        settings.OFFBOARD_PKCS11_PIN_FILE = str(on_token.pin_file)

    certificate = current_certificate(org)
    assert certificate is not None
    config = token_config()
    assert config is not None
    location = pkcs11.KeyLocation.parse(certificate.token_key)
    with pkcs11.session(config) as opened:
        opened.get_key(object_class=p11.ObjectClass.PRIVATE_KEY, id=location.key_id).destroy()
    with pytest.raises(SigningUnavailable, match=f"no private key with id {location.key_id.hex()}"):
        sign_certificate(small_pdf, org=org, reason=REASON)
