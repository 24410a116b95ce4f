"""A pyHanko signer whose ECDSA P-256 key is on a PKCS#11 token (decision 0033).

pyHanko builds the CMS signature as with a key in memory; only the raw signature of the signed
attributes is asked of the token, through the same process-wide session and lock as checkpoint
signing (`ledger/pkcs11.py`). pyHanko's own PKCS11Signer would keep a session of its own and use
it from executor threads, which PKCS#11's one-login-per-application model makes racy.
"""

import hashlib

from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11.util.ec import encode_ecdsa_signature
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from offboard.ledger import pkcs11
from offboard.reports.signing.certificates import SigningUnavailable

MAX_DER_SIGNATURE = 72  # an ECDSA P-256 signature, DER: SEQUENCE of two INTEGERs of ≤ 33 bytes


class TokenSigner(signers.Signer):
    """Signs with the key at `location`, for the certificate `signing_cert` (ECDSA, SHA-256)."""

    def __init__(
        self,
        *,
        config: pkcs11.TokenConfig,
        location: pkcs11.KeyLocation,
        signing_cert: asn1_x509.Certificate,
        chain: list[asn1_x509.Certificate],
        public_key: ec.EllipticCurvePublicKey,
    ) -> None:
        super().__init__(
            signing_cert=signing_cert, cert_registry=SimpleCertificateStore.from_certs(chain)
        )
        self.config = config
        self.location = location
        self.public_key = public_key

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run:
            return bytes(MAX_DER_SIGNATURE)
        if digest_algorithm.lower() != "sha256":
            raise SigningUnavailable(f"a token key signs with SHA-256, not {digest_algorithm}")
        digest = hashlib.sha256(data).digest()
        try:
            raw = pkcs11.sign(self.config, self.location, digest, pkcs11.Mechanism.ECDSA)
        except pkcs11.TokenUnavailable as exc:
            raise SigningUnavailable(
                f"Cannot sign the PDF with the document-signing key on the token: {exc}."
            ) from exc
        signature = bytes(encode_ecdsa_signature(raw))
        try:  # a token answering with another key must not sign in this certificate's name
            self.public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SigningUnavailable(
                f"The key {self.location.uri()} on the token does not match the "
                "document-signing certificate: check OFFBOARD_PKCS11_TOKEN."
            ) from None
        return signature
