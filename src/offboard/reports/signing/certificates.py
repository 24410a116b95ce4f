"""Which certificate signs an organization's PDFs, and where its key lives.

Files only, under `OFFBOARD_KEY_DIR/document-signing/` (never a private key in the database):

    ca/current                      names the installation CA in use, e.g. `issued-3f0c…`
    ca/issued-<sha256:16>/          key.pem (0600) and chain.pem of "Offboard document-signing CA"
    orgs/<slug>/current             names the organization's certificate in use
    orgs/<slug>/issued-<sha256:16>/     one Offboard issued from its CA (EC P-256); with a PKCS#11
                                        token configured its key is made on the token, and
                                        key.pkcs11 (the key's pkcs11: URI) replaces key.pem
    orgs/<slug>/imported-<sha256:16>/   one the organization imported from a PKCS#12 file

A certificate directory is written under a temporary name and renamed into place, and
`current` is replaced atomically, so several processes (web, workers) may read and issue
at once: each sees a whole certificate, and on first use exactly one becomes `current`.
Old directories stay: they are what signed the PDFs issued before a replacement.
"""

import datetime as dt
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from django.conf import settings

from offboard.ledger import keys as ledger_keys
from offboard.ledger import pkcs11

log = logging.getLogger("offboard.reports.signing")

Source = Literal["issued", "imported"]
PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
SIGNING_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)

CA_NAME = "Offboard document-signing CA"
CA_DAYS = 20 * 365
LEAF_DAYS = 2 * 365
RENEW_BEFORE = dt.timedelta(days=30)  # an issued certificate is replaced this long before it ends
BACKDATE = dt.timedelta(minutes=5)  # tolerate a reader whose clock is a little behind
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336
_DIR_NAME = re.compile(r"(issued|imported)-[0-9a-f]{16}")


class SigningUnavailable(RuntimeError):
    """The key or certificate files of a document-signing certificate cannot be used."""


@dataclass(frozen=True)
class SigningCertificate:
    """A certificate with its private key: `chain[0]` is the signer, then its issuers. The key
    is in memory (`key`), or on a PKCS#11 token (`token_key`, its pkcs11: URI; decision 0033)."""

    key: PrivateKey | None
    chain: tuple[x509.Certificate, ...]
    source: Source
    path: Path
    token_key: str = ""

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate (DER), lowercase hex: what `openssl x509 -fingerprint
        -sha256` prints, without the colons."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self.certificate.issuer.rfc4514_string()

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def chain_pem(self) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain)

    def as_event_data(self) -> dict[str, Any]:
        """What the ledger records of it: never the key."""
        return {
            "sha256": self.fingerprint,
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": format(self.certificate.serial_number, "x"),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "source": self.source,
        }


def now() -> dt.datetime:
    # Real time, never the clock a demo pins: readers check validity against their own clock.
    return dt.datetime.now(dt.UTC)


def root() -> Path:
    return Path(settings.OFFBOARD_KEY_DIR) / "document-signing"


def org_dir(org: Any) -> Path:
    return root() / "orgs" / org.slug


# --- files -------------------------------------------------------------------------------------


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # the umask may have changed it


def publish(
    slot: Path, key: PrivateKey | str, chain: list[x509.Certificate], source: Source
) -> str:
    """Write a key (0600; or the pkcs11: URI of a key on a token) and its chain into a new
    directory of `slot`; return its name. Not yet in use: `point` makes it so."""
    name = f"{source}-{chain[0].fingerprint(hashes.SHA256()).hex()[:16]}"
    if (slot / name).is_dir():
        return name  # the same certificate, written before
    _mkdir(slot)
    temp = slot / f".tmp-{secrets.token_hex(8)}"
    temp.mkdir(mode=0o700)
    try:
        if isinstance(key, str):
            _write(temp / "key.pkcs11", key.encode() + b"\n", 0o644)  # where, not what
        else:
            pkcs8 = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write(temp / "key.pem", pkcs8, 0o600)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        _write(temp / "chain.pem", pem, 0o644)
        try:
            temp.rename(slot / name)
        except OSError:
            if not (slot / name).is_dir():
                raise
            # Another process wrote the same certificate meanwhile: theirs is as good.
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return name


def pointed(slot: Path) -> str | None:
    """The name `current` gives, or None when nothing is in use yet."""
    try:
        name = (slot / "current").read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SigningUnavailable(f"Cannot read {slot / 'current'}: {exc.strerror}.") from exc
    if not _DIR_NAME.fullmatch(name):
        raise SigningUnavailable(f"{slot / 'current'} names no certificate ({name[:40]!r}).")
    return name


def point(slot: Path, name: str | None, *, only_if_unset: bool = False) -> bool:
    """Make `name` the one in use (None: none). With `only_if_unset`, only if nothing is yet;
    returns False if another process was first."""
    _mkdir(slot)
    current = slot / "current"
    if name is None:
        current.unlink(missing_ok=True)
        return True
    temp = slot / f".current-{secrets.token_hex(8)}"
    _write(temp, f"{name}\n".encode(), 0o644)
    try:
        if only_if_unset:
            try:
                os.link(temp, current)  # atomic, and fails if another process was first
            except FileExistsError:
                return False
        else:
            os.replace(temp, current)
    finally:
        temp.unlink(missing_ok=True)
    return True


def load(slot: Path, name: str) -> SigningCertificate:
    where = slot / name
    source: Source = "imported" if name.startswith("imported-") else "issued"
    if (where / "key.pkcs11").is_file():
        return _load_token_certificate(where, source)
    try:
        key_pem = (where / "key.pem").read_bytes()
        chain_pem = (where / "chain.pem").read_bytes()
    except OSError as exc:
        raise SigningUnavailable(
            f"Cannot read the document-signing certificate at {where}: {exc.strerror}. Restore "
            "the files, or import a certificate (offboard org signing-certificate import)."
        ) from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        chain = tuple(x509.load_pem_x509_certificates(chain_pem))
    except (ValueError, TypeError) as exc:
        raise SigningUnavailable(f"The files in {where} are damaged: {exc}.") from exc
    if not isinstance(key, SIGNING_KEY_TYPES) or not matches(key, chain[0]):
        raise SigningUnavailable(f"The key in {where} does not match its certificate.")
    return SigningCertificate(key=key, chain=chain, source=source, path=where)


def _load_token_certificate(where: Path, source: Source) -> SigningCertificate:
    """A certificate whose key is on a PKCS#11 token: each signature is checked against the
    certificate when made (`signing/token.py`), not here, so reading it needs no token."""
    try:
        uri = (where / "key.pkcs11").read_text().strip()
        chain = tuple(x509.load_pem_x509_certificates((where / "chain.pem").read_bytes()))
    except OSError as exc:
        raise SigningUnavailable(
            f"Cannot read the document-signing certificate at {where}: {exc.strerror}."
        ) from exc
    except ValueError as exc:
        raise SigningUnavailable(f"The files in {where} are damaged: {exc}.") from exc
    if not uri.startswith("pkcs11:"):
        raise SigningUnavailable(f"{where / 'key.pkcs11'} names no key on a token.")
    return SigningCertificate(key=None, chain=chain, source=source, path=where, token_key=uri)


def matches(key: PrivateKey, certificate: x509.Certificate) -> bool:
    def raw(public: Any) -> bytes:
        return bytes(
            public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    return raw(key.public_key()) == raw(certificate.public_key())


def token_config() -> pkcs11.TokenConfig | None:
    """The PKCS#11 token new document-signing keys are made on: the checkpoint keys' one."""
    try:
        return ledger_keys.token_config()
    except ledger_keys.KeyUnavailable as exc:
        raise SigningUnavailable(exc.message) from exc


def current_certificate(org: Any) -> SigningCertificate | None:
    """The organization's certificate in use, or None before its first signed PDF."""
    slot = org_dir(org)
    name = pointed(slot)
    return load(slot, name) if name else None


def certificate_in_use(org: Any) -> SigningCertificate:
    """The certificate that signs the organization's next PDF: the one in use while it is
    valid; else (first use, an issued one about to end, an imported one that has ended) a
    new one that Offboard issues from its installation CA."""
    slot = org_dir(org)
    current = current_certificate(org)
    moment = now()
    config = token_config()
    if current is not None:
        if current.source == "issued":
            usable = current.not_before <= moment < current.not_after - RENEW_BEFORE
            # An issued key's custody follows the configuration: moving to an HSM (or off
            # one) issues a new certificate once, as rotating a checkpoint key does.
            usable = usable and bool(current.token_key) == (config is not None)
        else:  # the organization's choice: used to its last day (checked valid at import)
            usable = moment < current.not_after
        if usable:
            return current
        if current.source == "imported":
            log.warning(
                "the imported document-signing certificate of %s (%s) is valid from %s to %s; "
                "Offboard issues its own until a new one is imported",
                org.slug,
                current.subject,
                current.not_before.isoformat(),
                current.not_after.isoformat(),
            )
    ca = installation_ca()
    key: ec.EllipticCurvePrivateKey | str
    if config is not None:
        label = f"{settings.SITE_HOST}/offboard/{org.slug} document signing"
        try:
            location, spki = pkcs11.generate_p256(config, label=label)
        except pkcs11.TokenUnavailable as exc:
            raise SigningUnavailable(
                f"Cannot make the document-signing key of {org.slug} on the PKCS#11 token: {exc}."
            ) from exc
        public = serialization.load_der_public_key(spki)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        key = location.uri()
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
    leaf = _issue_leaf(org, public, ca, moment)
    name = publish(slot, key, [leaf, *ca.chain], "issued")
    if current is None:
        point(slot, name, only_if_unset=True)  # a process that was first wins; use its
    else:
        point(slot, name)
    log.info("issued a document-signing certificate for %s: %s", org.slug, name)
    return load(slot, pointed(slot) or name)


# --- what Offboard issues -------------------------------------------------------------------


def _name(*attributes: tuple[ObjectIdentifier, str]) -> x509.Name:
    # X.520 caps these at 64 characters.
    return x509.Name([x509.NameAttribute(oid, value[:64]) for oid, value in attributes if value])


def installation_ca() -> SigningCertificate:
    """The installation's "Offboard document-signing CA", made on first use (EC P-256)."""
    slot = root() / "ca"
    name = pointed(slot)
    if name is not None:
        ca = load(slot, name)
        if ca.not_after - RENEW_BEFORE > now():
            return ca
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(
        (NameOID.COMMON_NAME, CA_NAME),
        (NameOID.ORGANIZATION_NAME, "Offboard"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, settings.SITE_HOST),
    )
    moment = now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - BACKDATE)
        .not_valid_after(moment + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    new = publish(slot, key, [cert], "issued")
    point(slot, new, only_if_unset=name is None)
    return load(slot, pointed(slot) or new)


def _issue_leaf(
    org: Any, public: ec.EllipticCurvePublicKey, ca: SigningCertificate, moment: dt.datetime
) -> x509.Certificate:
    subject = _name(
        (NameOID.COMMON_NAME, org.name),
        (NameOID.ORGANIZATION_NAME, org.name),
        # The ledger's origin for the organization: ties the signer to its checkpoints.
        (NameOID.ORGANIZATIONAL_UNIT_NAME, f"{settings.SITE_HOST}/offboard/{org.slug}"),
    )
    ca_key = ca.key
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - BACKDATE)
        .not_valid_after(min(moment + dt.timedelta(days=LEAF_DAYS), ca.not_after))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """A CA's (keyCertSign, cRLSign) or a document signer's (digitalSignature, nonRepudiation)."""
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=not signs_certificates,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )
