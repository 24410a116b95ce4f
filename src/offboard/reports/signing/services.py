"""Document-signing actions: an organization imports its own certificate (PKCS#12).

The password opens the file once, here, and is never stored: the key is kept as a 0600 file,
the certificate chain as PEM, beside the ones Offboard issues (`certificates.py`).
"""

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12
from django.db import transaction

from offboard.core.actor import Actor
from offboard.core.errors import Conflict, ValidationFailed
from offboard.core.permissions import require
from offboard.ledger.recorder import record_event
from offboard.reports.signing import certificates
from offboard.reports.signing.certificates import (
    SIGNING_KEY_TYPES,
    PrivateKey,
    SigningCertificate,
    SigningUnavailable,
)

MAX_PKCS12_BYTES = 1024 * 1024


def import_signing_certificate(
    *, actor: Actor, pkcs12_file: bytes, password: bytes | None, filename: str = "the file"
) -> SigningCertificate:
    """From now on the organization's PDFs are signed with the certificate in `pkcs12_file`
    (admins only). Nothing is written unless the file opens and holds a usable certificate."""
    require(actor, "org.manage_members")
    key, chain = read_pkcs12(pkcs12_file, password, filename=filename)
    slot = certificates.org_dir(actor.org)
    previous: str | None = None
    replaced: SigningCertificate | None = None
    try:
        previous = certificates.pointed(slot)
        replaced = certificates.load(slot, previous) if previous else None
    except SigningUnavailable:
        pass  # unreadable files: importing a new certificate is the way out
    fingerprint = chain[0].fingerprint(hashes.SHA256()).hex()
    if replaced is not None and replaced.fingerprint == fingerprint:
        raise Conflict(
            f"The certificate {fingerprint[:16]}… ({chain[0].subject.rfc4514_string()}) already "
            f"signs the documents of {actor.org.name}; nothing changed."
        )
    name = certificates.publish(slot, key, chain, "imported")  # not in use until `point`
    new = certificates.load(slot, name)
    try:
        with transaction.atomic():
            record_event(
                actor=actor,
                type="signing_certificate.imported",
                data={
                    **new.as_event_data(),
                    "replaces": replaced.fingerprint if replaced else None,
                },
            )
            certificates.point(slot, name)  # last: the event is written when this takes effect
    except BaseException:
        certificates.point(slot, previous)
        raise
    return new


def read_pkcs12(
    data: bytes, password: bytes | None, *, filename: str = "the file"
) -> tuple[PrivateKey, list[x509.Certificate]]:
    """The key and chain (signer first) of a PKCS#12 file, checked fit to sign PDFs now."""

    def refuse(problem: str) -> ValidationFailed:
        return ValidationFailed({"file": [problem]}, message=f"Cannot import {filename}: {problem}")

    if len(data) > MAX_PKCS12_BYTES:
        raise refuse(
            f"it is larger than {MAX_PKCS12_BYTES:,} bytes; a PKCS#12 file is far smaller."
        )
    bundle = None
    # An empty password is written either way by the tools that make PKCS#12 files.
    attempts: list[bytes | None] = [password] if password else [b"", None]
    for attempt in attempts:
        try:
            bundle = pkcs12.load_pkcs12(data, attempt)
            break
        except (ValueError, TypeError):
            continue
    if bundle is None:
        raise refuse("the password is wrong, or it is not a PKCS#12 (.p12/.pfx) file.")
    if bundle.key is None or bundle.cert is None:
        raise refuse("it holds no private key with its certificate.")
    key: Any = bundle.key
    leaf = bundle.cert.certificate
    if not isinstance(key, SIGNING_KEY_TYPES):
        raise refuse(f"its {type(key).__name__} key cannot sign PDFs (RSA, EC or EdDSA can).")
    if not certificates.matches(key, leaf):
        raise refuse("its private key does not belong to its certificate.")
    moment = certificates.now()
    if not leaf.not_valid_before_utc <= moment < leaf.not_valid_after_utc:
        raise refuse(
            f"the certificate {leaf.subject.rfc4514_string()} is valid from "
            f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}, "
            "not now."
        )
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise refuse(
            "its key usage allows neither digitalSignature nor nonRepudiation: it may not "
            "sign documents."
        )
    others = [c.certificate for c in bundle.additional_certs if c.certificate != leaf]
    return key, [leaf, *_issuers_first_to_last(leaf, others)]


def _issuers_first_to_last(
    leaf: x509.Certificate, others: list[x509.Certificate]
) -> list[x509.Certificate]:
    """The extra certificates ordered from the signer's issuer upwards; any that are not on
    that path follow, as the file gave them."""
    ordered: list[x509.Certificate] = []
    remaining = list(others)
    current = leaf
    while True:
        issuer = next((c for c in remaining if c.subject == current.issuer), None)
        if issuer is None or current.subject == current.issuer:
            break
        ordered.append(issuer)
        remaining.remove(issuer)
        current = issuer
    return ordered + remaining
