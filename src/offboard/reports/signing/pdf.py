"""Sign a PDF for an organization with pyHanko: PAdES baseline B-B, or B-T when a time-stamping
authority answers (see `sign_certificate` for the contract)."""

import asyncio
import concurrent.futures
import http.client
import io
import logging
import urllib.error
import urllib.request
from collections.abc import Coroutine
from typing import Any, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError
from pyhanko_certvalidator.registry import SimpleCertificateStore
from rfc3161_client import PKIStatus, VerificationError, VerifierBuilder, decode_timestamp_response

from offboard.ledger import pkcs11
from offboard.ledger.timestamps import MAX_REPLY_BYTES, TimestampFailed, shown, trust_roots
from offboard.reports.signing.certificates import (
    SigningCertificate,
    SigningUnavailable,
    certificate_in_use,
    token_config,
)
from offboard.reports.signing.token import TokenSigner

log = logging.getLogger("offboard.reports.signing")
FIELD_NAME = "OffboardSignature"
T = TypeVar("T")


def sign_certificate(pdf: bytes, *, org: Any, reason: str) -> bytes:
    """The PDF signed for `org`: what is stored, mailed and packed as its closure certificate.

    - `pdf` is a complete PDF (e.g. `render_certificate`'s bytes); it is kept byte for byte as
      the first revision, and the signature is appended as an incremental update. The
      signature covers the whole file except its own /Contents.
    - It is a PAdES certification signature (ETSI.CAdES.detached; DocMDP: no changes
      permitted), made with the organization's certificate in use (`certificate_in_use`:
      one it imported, else one Offboard issues from its installation CA on first use), with
      the certificate chain embedded. `reason` is shown by PDF readers as the reason.
    - When OFFBOARD_TSA_URLS is set, the signature carries an RFC 3161 signature timestamp
      from the first TSA, in that order, whose reply verifies against OFFBOARD_TSA_ROOTS
      (PAdES B-T). A TSA that is down, refuses or answers what does not verify is logged and
      skipped; with none left the PDF is signed without a timestamp (B-B) and a warning says
      so. A TSA never makes this fail: the checkpoint's own timestamps remain the trusted time.
    - Raises `SigningUnavailable` when the organization's key files cannot be read, or its key
      is on a PKCS#11 token that cannot sign (decision 0033).
    """
    certificate = certificate_in_use(org)
    signer = _signer(certificate)
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        subfilter=SigSeedSubFilter.PADES,
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        reason=reason,
        name=org.name,
        location=settings.SITE_HOST,
    )
    urls = list(settings.OFFBOARD_TSA_URLS)
    failures: list[str] = []
    roots: list[x509.Certificate] = []
    if urls:
        try:
            roots = trust_roots()
        except TimestampFailed as exc:
            failures.append(str(exc))
            urls = []
    for url in urls:
        stamper = VerifiedTimeStamper(url, roots)
        try:
            signed = _sign(pdf, meta, signer, stamper)
        except Exception:
            if stamper.failure is None:
                raise  # not the TSA's doing
            failures.append(str(stamper.failure))
            log.info("signing for %s: %s; trying the next TSA", org.slug, stamper.failure)
            continue
        log.info(
            "signed for %s with %s, timestamped by %s", org.slug, certificate.path.name, shown(url)
        )
        return signed
    signed = _sign(pdf, meta, signer, None)
    if failures:
        log.warning(
            "signed for %s with %s WITHOUT a signature timestamp (%s); the checkpoint's "
            "timestamps remain the trusted time",
            org.slug,
            certificate.path.name,
            "; ".join(failures),
        )
    return signed


def _signer(certificate: SigningCertificate) -> signers.Signer:
    def der(cert: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    if certificate.token_key:  # the key is on a PKCS#11 token (decision 0033)
        config = token_config()
        if config is None:
            raise SigningUnavailable(
                f"The document-signing key of {certificate.path.parent.name} is on a PKCS#11 "
                "token but OFFBOARD_PKCS11_MODULE is not set: configure the token "
                "(docs/deploy.md, Key custody)."
            )
        public = certificate.certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise SigningUnavailable(f"{certificate.path} holds no EC certificate.")
        try:
            location = pkcs11.KeyLocation.parse(certificate.token_key)
        except pkcs11.TokenUnavailable as exc:
            raise SigningUnavailable(f"{certificate.path}: {exc}.") from exc
        return TokenSigner(
            config=config,
            location=location,
            signing_cert=der(certificate.certificate),
            chain=[der(c) for c in certificate.chain[1:]],
            public_key=public,
        )
    assert certificate.key is not None
    pkcs8 = certificate.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return signers.SimpleSigner(
        signing_cert=der(certificate.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(pkcs8),
        cert_registry=SimpleCertificateStore.from_certs([der(c) for c in certificate.chain[1:]]),
    )


def _sign(
    pdf: bytes,
    meta: signers.PdfSignatureMetadata,
    signer: signers.Signer,
    timestamper: TimeStamper | None,
) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper)
    output = _run(pdf_signer.async_sign_pdf(writer))
    return bytes(output.getvalue())


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """pyHanko is asynchronous; run it here, or on a thread of its own when this thread
    already runs an event loop (an async caller)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class VerifiedTimeStamper(TimeStamper):
    """An RFC 3161 client for pyHanko that checks each reply as the ledger does (rfc3161-client,
    against OFFBOARD_TSA_ROOTS) before it goes into a signature. `failure` says why it gave up."""

    def __init__(self, url: str, roots: list[x509.Certificate]) -> None:
        super().__init__(include_nonce=True)
        self.url = url
        self.roots = roots
        self.failure: TimestampFailed | None = None

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            raw = await asyncio.to_thread(self._post, req.dump())
            self._verify(raw, req)
            return tsp.TimeStampResp.load(raw)
        except Exception as exc:  # a TSA's bytes are hostile input: any failure is the TSA's
            self.failure = (
                exc
                if isinstance(exc, TimestampFailed)
                else TimestampFailed(f"{shown(self.url)}: unexpected reply: {exc!r}")
            )
            raise TimestampRequestError(str(self.failure)) from exc

    def _post(self, query: bytes) -> bytes:
        where = shown(self.url)
        if not self.url.startswith(("http://", "https://")):
            raise TimestampFailed(f"TSA URL {where!r} must be http:// or https://")
        post = urllib.request.Request(  # noqa: S310 - scheme checked above; the URL is the operator's
            self.url,
            data=query,
            headers={
                "Content-Type": "application/timestamp-query",
                "Accept": "application/timestamp-reply",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(post, timeout=settings.OFFBOARD_TSA_TIMEOUT) as reply:  # noqa: S310
                raw = bytes(reply.read(MAX_REPLY_BYTES + 1))
        except urllib.error.HTTPError as exc:
            raise TimestampFailed(f"{where} answered HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise TimestampFailed(f"{where} did not answer: {exc.reason}") from exc
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise TimestampFailed(f"{where} did not answer: {exc or type(exc).__name__}") from exc
        if len(raw) > MAX_REPLY_BYTES:
            raise TimestampFailed(f"{where} answered with more than {MAX_REPLY_BYTES} bytes")
        return raw

    def _verify(self, raw: bytes, req: tsp.TimeStampReq) -> None:
        where = shown(self.url)
        try:
            response = decode_timestamp_response(raw)
        except ValueError as exc:
            raise TimestampFailed(f"{where}: not a timestamp reply: {exc}") from exc
        if response.status != PKIStatus.GRANTED:
            reason = "; ".join(response.status_string) or "no reason given"
            raise TimestampFailed(f"{where} refused (PKI status {response.status}): {reason}")
        builder = VerifierBuilder(nonce=req["nonce"].native)
        for root in self.roots:
            builder = builder.add_root_certificate(root)
        try:
            builder.build().verify(response, req["message_imprint"]["hashed_message"].native)
        except (VerificationError, ValueError) as exc:
            raise TimestampFailed(f"{where}: the timestamp token does not verify: {exc}") from exc
