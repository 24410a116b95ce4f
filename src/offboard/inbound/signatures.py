"""Standard Webhooks signatures (https://www.standardwebhooks.com, v1 symmetric), verified.

A sender signs `<webhook-id>.<webhook-timestamp>.<body>` with HMAC-SHA256 under the
endpoint's secret and sends `webhook-signature: v1,<base64 MAC>`; several space-separated
signatures are allowed, so a sender that holds an old and a new secret signs with both. The
secret is `whsec_` + base64 of random bytes, and the MAC key is those bytes. The timestamp
(Unix seconds) must be within `TOLERANCE` of our clock, and MACs are compared in constant
time. The standard library only: tests/inbound/test_signatures.py has the known answers.
"""

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"
TOLERANCE = 5 * 60  # seconds either side of our clock
MAX_ID_LENGTH = 255
MAX_SIGNATURES = 10
_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_LENGTH}}}")  # visible ASCII, no spaces
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureRefused(Exception):
    """The delivery is not proven to come from the endpoint's sender: `header` names the
    header at fault, `problem` says what is wrong with it."""

    def __init__(self, header: str, problem: str) -> None:
        super().__init__(f"{header}: {problem}")
        self.header = header
        self.problem = problem


@dataclass(frozen=True)
class SignedDelivery:
    """What the headers of a verified delivery say."""

    id: str
    timestamp: int


def new_secret() -> str:
    """A fresh secret: 32 random bytes, as a Standard Webhooks `whsec_…` string."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The MAC key of a `whsec_…` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of the delivery, as the sender computes it."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _sent_macs(header: str) -> list[bytes]:
    """The v1 MACs of a `webhook-signature` header (other versions are not ours to check)."""
    macs = []
    for part in header.split(" ")[:MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            macs.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return macs


def verify(
    *,
    endpoint_secrets: Iterable[str],
    msg_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    body: bytes,
    now: float,
    tolerance: int = TOLERANCE,
) -> SignedDelivery:
    """The delivery's id and time if one of `signatures` is a MAC of it under one of
    `endpoint_secrets`; else `SignatureRefused` naming the header."""
    if not msg_id:
        raise SignatureRefused("webhook-id", "is missing")
    if not _ID.fullmatch(msg_id):
        raise SignatureRefused(
            "webhook-id", f"must be 1 to {MAX_ID_LENGTH} visible ASCII characters, no spaces"
        )
    if not timestamp:
        raise SignatureRefused("webhook-timestamp", "is missing")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureRefused("webhook-timestamp", "must be whole seconds since 1970 (Unix time)")
    sent_at = int(timestamp)
    if abs(now - sent_at) > tolerance:
        raise SignatureRefused(
            "webhook-timestamp",
            f"is {abs(int(now) - sent_at)} seconds from the receiver's clock, more than the "
            f"{tolerance} allowed: sign each attempt with the time it is sent",
        )
    if not signatures:
        raise SignatureRefused("webhook-signature", "is missing")
    sent = _sent_macs(signatures)
    if not sent:
        raise SignatureRefused("webhook-signature", "has no signature of the form v1,<base64>")
    signed = f"{msg_id}.{sent_at}.".encode() + body
    expected = [hmac.new(secret_key(s), signed, hashlib.sha256).digest() for s in endpoint_secrets]
    # Every pair is compared, in constant time each: which one matched is not timed either.
    matched = False
    for mac in sent:
        for wanted in expected:
            matched |= hmac.compare_digest(mac, wanted)
    if not matched:
        raise SignatureRefused(
            "webhook-signature",
            "no signature matches this endpoint's secret for this id, timestamp and body",
        )
    return SignedDelivery(id=msg_id, timestamp=sent_at)
