"""Check a signed PDF with validators that are not the signer: OpenSSL and Poppler's pdfsig.

`signature_of(pdf)` reads the signature dictionary with pypdf (not pyHanko): its /ByteRange,
the bytes that range covers, and its /Contents (the CMS SignedData, DER, padding cut off).
`openssl_verify` takes the same two from the raw bytes, as a verifier does (so it also reads a
file too damaged for pypdf), and runs `openssl cms -verify` on them; `pdfsig` runs Poppler's `pdfsig`, or
skips saying why when it is not installed (a failure under OFFBOARD_REQUIRE_SERVICES=1;
.ci/run installs poppler-utils). `timestamp_token` digs the RFC 3161 signature timestamp out
of the CMS unsigned attributes, and `openssl_verify_timestamp` checks it with `openssl ts`.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.conf import settings
from pypdf import PdfReader

from tests.tsa import openssl_path

SIGNATURE_TIMESTAMP_OID = "1.2.840.113549.1.9.16.2.14"


@dataclass
class Signature:
    byte_range: list[int]
    signed_bytes: bytes
    cms_der: bytes
    sub_filter: str
    reason: str


def _der_length(data: bytes) -> int:
    """The length of the DER object at the start of `data` (the rest is /Contents padding)."""
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def signatures_of(pdf: bytes) -> list[Signature]:
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    found = []
    for field in root.get("/AcroForm", {}).get("/Fields", []):
        field = field.get_object()
        if field.get("/FT") != "/Sig" or "/V" not in field:
            continue
        value = field["/V"].get_object()
        a, b, c, d = (int(x) for x in value["/ByteRange"])
        contents = bytes(value["/Contents"])
        found.append(
            Signature(
                byte_range=[a, b, c, d],
                signed_bytes=pdf[a : a + b] + pdf[c : c + d],
                cms_der=contents[: _der_length(contents)],
                sub_filter=str(value.get("/SubFilter")),
                reason=str(value.get("/Reason", "")),
            )
        )
    return found


def signature_of(pdf: bytes) -> Signature:
    found = signatures_of(pdf)
    assert len(found) == 1, f"expected one signature, found {len(found)}"
    assert raw_signature(pdf) == (found[0].signed_bytes, found[0].cms_der)
    return found[0]


def raw_signature(pdf: bytes) -> tuple[bytes, bytes]:
    """(signed bytes, CMS DER) from the last /ByteRange in the file: the gap it leaves is the
    hex string of /Contents."""
    ranges = re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert ranges, "no /ByteRange in the file"
    a, b, c, d = (int(x) for x in ranges[-1])
    contents = bytes.fromhex(pdf[a + b : c].strip(b"<>").decode("ascii"))
    return pdf[a : a + b] + pdf[c : c + d], contents[: _der_length(contents)]


def openssl_verify(pdf: bytes, ca_pem: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`openssl cms -verify -binary -inform DER -in sig.der -content signed-bytes -CAfile CA`."""
    signed_bytes, cms_der = raw_signature(pdf)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "sig.der").write_bytes(cms_der)
    (workdir / "signed-bytes").write_bytes(signed_bytes)
    return subprocess.run(
        [
            openssl_path(),
            *[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                "sig.der",
                "-content",
                "signed-bytes",
            ],
            *["-CAfile", str(ca_pem), "-purpose", "any", "-out", os.devnull],
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def pdfsig_path() -> str:
    found = shutil.which("pdfsig")
    if found is None:
        reason = "pdfsig is not installed (apt-get install poppler-utils): Poppler cannot check"
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return found


def pdfsig(pdf: bytes, workdir: Path) -> str:
    """Poppler's report on every signature of the PDF (stdout and stderr)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "checked.pdf"
    path.write_bytes(pdf)
    done = subprocess.run([pdfsig_path(), str(path)], capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def signer_info(sig: Signature) -> cms.SignerInfo:
    signed_data = cms.ContentInfo.load(sig.cms_der)["content"]
    (info,) = signed_data["signer_infos"]
    return info


def timestamp_token(sig: Signature) -> bytes | None:
    """The DER of the signature timestamp token (a CMS ContentInfo), or None."""
    attrs = signer_info(sig)["unsigned_attrs"]
    if not attrs.native:
        return None
    for attr in attrs:
        if attr["type"].dotted == SIGNATURE_TIMESTAMP_OID:
            return bytes(attr["values"][0].dump())
    return None


def openssl_verify_timestamp(
    sig: Signature, tsa_ca: Path, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """`openssl ts -verify -token_in` over the signature value, as RFC 3161 / PAdES B-T says."""
    token = timestamp_token(sig)
    assert token is not None, "the signature carries no timestamp"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "token.der").write_bytes(token)
    (workdir / "signature-value").write_bytes(bytes(signer_info(sig)["signature"].native))
    return subprocess.run(
        [
            openssl_path(),
            *["ts", "-verify", "-token_in", "-in", "token.der", "-data", "signature-value"],
            *["-CAfile", str(tsa_ca)],
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- certificates ------------------------------------------------------------------------------


def installation_ca_pem() -> Path:
    """Offboard's installation CA as written to disk (not read through Offboard's code): what
    an operator hands to a reader."""
    slot = Path(settings.OFFBOARD_KEY_DIR) / "document-signing" / "ca"
    return slot / (slot / "current").read_text().strip() / "chain.pem"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Digital Ltd"),
        ]
    )


def make_pkcs12(
    directory: Path, password: bytes, *, days: int = 365, start_days_ago: int = 1
) -> tuple[Path, Path, x509.Certificate]:
    """A PKCS#12 as a real CA would hand it out: an RSA key, its certificate, the CA's.
    Returns the file, the CA (PEM) and the certificate."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Acme Test Root"))
        .issuer_name(_name("Acme Test Root"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("Acme Digital Ltd — document signing"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=start_days_ago))
        .not_valid_after(now - dt.timedelta(days=start_days_ago) + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    p12 = directory / "acme.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"acme", key, leaf, [ca], serialization.BestAvailableEncryption(password)
        )
    )
    ca_pem = directory / "acme-root.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return p12, ca_pem, leaf
