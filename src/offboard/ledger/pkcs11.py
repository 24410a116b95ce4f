"""Signing keys on a PKCS#11 token (an HSM, or SoftHSM2): made on the token, never extractable,
used there. Plain Python over python-pkcs11; `keys.py` decides when (decision 0033).

A key is named by an RFC 7512 URI, `pkcs11:token=<label>;id=<%XX…>;object=<label>;type=private`,
which is what the database records instead of a file path: no secret, only where to look.

PKCS#11 logs in per application, not per session, and a session must not be used by two
threads at once: so each process keeps one logged-in session per token and every use of it
goes through one lock. Signing takes a millisecond; the lock costs nothing measurable.
"""

from __future__ import annotations

import os
import secrets
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

ED25519_OID = "1.3.101.112"  # RFC 8410
P256_OID = "1.2.840.10045.3.1.7"  # secp256r1 / prime256v1
T = TypeVar("T")


class TokenUnavailable(RuntimeError):
    """The module, the token, the PIN or the key does not work; the message says what to check."""


@dataclass(frozen=True)
class TokenConfig:
    """Where new keys are made: the PKCS#11 module (.so), the token's label and its user PIN."""

    module: str
    token: str
    pin: str = field(repr=False)


@dataclass(frozen=True)
class KeyLocation:
    """A private key on a token: its token label and CKA_ID (RFC 7512 URI as text)."""

    token: str
    key_id: bytes
    label: str = ""

    def uri(self) -> str:
        parts = [
            f"token={_quote(self.token)}",
            "id=" + "".join(f"%{b:02x}" for b in self.key_id),
        ]
        if self.label:
            parts.append(f"object={_quote(self.label)}")
        return "pkcs11:" + ";".join([*parts, "type=private"])

    @classmethod
    def parse(cls, uri: str) -> KeyLocation:
        if not uri.startswith("pkcs11:"):
            raise TokenUnavailable(f"{uri[:60]!r} is not a pkcs11: URI")
        attrs: dict[str, str] = {}
        for part in uri[len("pkcs11:") :].split(";"):
            name, _, value = part.partition("=")
            attrs[name] = value
        if not attrs.get("token") or not attrs.get("id"):
            raise TokenUnavailable(f"the key URI {uri!r} names no token or no id")
        return cls(
            token=urllib.parse.unquote(attrs["token"]),
            key_id=urllib.parse.unquote_to_bytes(attrs["id"]),
            label=urllib.parse.unquote(attrs.get("object", "")),
        )


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# --- one logged-in session per process and token ---------------------------------------------

_lock = threading.RLock()
_sessions: dict[
    tuple[str, str], tuple[int, str, Any]
] = {}  # (module, token) -> (pid, pin, session)


def _open(config: TokenConfig, token_label: str) -> Any:
    if not os.path.isfile(config.module):
        raise TokenUnavailable(
            f"the PKCS#11 module {config.module} does not exist: check OFFBOARD_PKCS11_MODULE "
            "(for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
        )
    try:
        lib = pkcs11.lib(config.module)
    except pkcs11.PKCS11Error as exc:
        raise TokenUnavailable(
            f"the PKCS#11 module {config.module} cannot be loaded ({exc or type(exc).__name__}): "
            "check OFFBOARD_PKCS11_MODULE"
        ) from exc
    try:
        token = lib.get_token(token_label=token_label)
    except pkcs11.NoSuchToken:
        raise TokenUnavailable(
            f"no token labelled {token_label!r} in {config.module}: check that the HSM is "
            "connected and OFFBOARD_PKCS11_TOKEN"
        ) from None
    except pkcs11.MultipleTokensReturned:
        raise TokenUnavailable(
            f"several tokens are labelled {token_label!r} in {config.module}: give each a label "
            "of its own"
        ) from None
    try:
        return token.open(user_pin=config.pin, rw=True)
    except (pkcs11.PinIncorrect, pkcs11.PinLenRange):
        raise TokenUnavailable(
            f"the token {token_label!r} refused the PIN: check OFFBOARD_PKCS11_PIN_FILE "
            "(or OFFBOARD_PKCS11_PIN)"
        ) from None
    except pkcs11.PinLocked:
        raise TokenUnavailable(
            f"the token {token_label!r} has locked its user PIN: its security officer must "
            "unlock it"
        ) from None
    except pkcs11.PKCS11Error as exc:
        raise TokenUnavailable(
            f"the token {token_label!r} cannot be opened ({type(exc).__name__}): check the HSM"
        ) from exc


def _close(session: Any) -> None:
    with suppress(pkcs11.PKCS11Error):  # the token is gone already
        session.close()


@contextmanager
def session(config: TokenConfig, token_label: str | None = None) -> Iterator[Any]:
    """The process's logged-in session on the token (the configured one by default), held
    under the process-wide lock. A failure inside drops the session so the next use starts
    afresh (a token that was unplugged and came back, a PIN that was changed)."""
    label = token_label or config.token
    slot = (config.module, label)
    with _lock:
        cached = _sessions.get(slot)
        if cached is not None and (cached[0] != os.getpid() or cached[1] != config.pin):
            del _sessions[slot]
            if cached[0] == os.getpid():
                _close(cached[2])  # logs out, so a changed PIN is checked for real
            else:  # a forked child: the parent's PKCS#11 state is not ours to use
                _reinitialize(config.module)
            cached = None
        if cached is None:
            opened = _open(config, label)
            cached = (os.getpid(), config.pin, opened)
            _sessions[slot] = cached
        try:
            yield cached[2]
        except pkcs11.PKCS11Error:
            _sessions.pop(slot, None)
            _close(cached[2])
            raise


def _reinitialize(module: str) -> None:
    with suppress(pkcs11.PKCS11Error):
        pkcs11.lib(module).reinitialize()


def close_all() -> None:
    """Log out and close every session of this process (tests; a token being reconfigured)."""
    with _lock:
        for pid, _pin, opened in _sessions.values():
            if pid == os.getpid():
                _close(opened)
        _sessions.clear()


def _use(config: TokenConfig, location: KeyLocation, what: str, work: Callable[[Any], T]) -> T:
    try:
        with session(config, location.token) as opened:
            return work(opened)
    except pkcs11.PKCS11Error as exc:
        raise TokenUnavailable(
            f"{what} failed on token {location.token!r} ({type(exc).__name__}): check the HSM"
        ) from exc


# --- keys ---------------------------------------------------------------------------------------


def _private_template() -> dict[Attribute, Any]:
    # Sensitive and never extractable: the token signs, nobody reads the key out, not even
    # wrapped under another key. PKCS#11 allows neither flag to be relaxed later.
    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: True,
    }


def _generate(
    config: TokenConfig, *, key_type: KeyType, curve: str, label: str
) -> tuple[KeyLocation, Any]:
    location = KeyLocation(token=config.token, key_id=secrets.token_bytes(16), label=label)

    def work(opened: Any) -> Any:
        params = opened.create_domain_parameters(
            key_type, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True
        )
        public, _private = params.generate_keypair(
            store=True,
            label=label,
            id=location.key_id,
            public_template={Attribute.TOKEN: True, Attribute.VERIFY: True},
            private_template=_private_template(),
        )
        return public

    return location, _use(config, location, "making a key", work)


def generate_ed25519(config: TokenConfig, *, label: str) -> tuple[KeyLocation, bytes]:
    """A new Ed25519 key pair on the configured token: where it is, and its 32-byte public key."""
    location, public = _generate(
        config, key_type=KeyType.EC_EDWARDS, curve=ED25519_OID, label=label
    )
    point = bytes(public[Attribute.EC_POINT])
    # The standard says DER OCTET STRING (04 20 ‖ key); some tokens give the 32 bytes bare.
    if len(point) == 34 and point[:2] == b"\x04\x20":
        point = point[2:]
    if len(point) != 32:
        raise TokenUnavailable(f"the token returned a {len(point)}-byte Ed25519 public key")
    return location, point


def generate_p256(config: TokenConfig, *, label: str) -> tuple[KeyLocation, bytes]:
    """A new ECDSA P-256 key pair on the configured token: where it is, and its public key as
    DER SubjectPublicKeyInfo (what a certificate is issued for)."""
    location, public = _generate(config, key_type=KeyType.EC, curve=P256_OID, label=label)
    return location, bytes(encode_ec_public_key(public))


def _private_key(opened: Any, location: KeyLocation) -> Any:
    try:
        return opened.get_key(object_class=ObjectClass.PRIVATE_KEY, id=location.key_id)
    except pkcs11.NoSuchKey:
        raise TokenUnavailable(
            f"no private key with id {location.key_id.hex()} on token {location.token!r}: "
            "check that this is the token the key was made on"
        ) from None
    except pkcs11.MultipleObjectsReturned:
        raise TokenUnavailable(
            f"several private keys have id {location.key_id.hex()} on token {location.token!r}"
        ) from None


def sign(config: TokenConfig, location: KeyLocation, message: bytes, mechanism: Mechanism) -> bytes:
    """The token's signature of `message` with the key at `location`."""

    def work(opened: Any) -> bytes:
        return bytes(_private_key(opened, location).sign(message, mechanism=mechanism))

    return _use(config, location, "signing", work)


def find(config: TokenConfig, location: KeyLocation) -> None:
    """Raise TokenUnavailable unless the key is there to sign with (readiness)."""
    _use(config, location, "finding the key", lambda opened: _private_key(opened, location))


def key_attributes(config: TokenConfig, location: KeyLocation) -> dict[str, bool]:
    """What the token says of the private key's custody (for `offboard ledger keys` and tests)."""

    def work(opened: Any) -> dict[str, bool]:
        key = _private_key(opened, location)
        return {
            "extractable": bool(key[Attribute.EXTRACTABLE]),
            "sensitive": bool(key[Attribute.SENSITIVE]),
            "never_extractable": bool(key[Attribute.NEVER_EXTRACTABLE]),
            "always_sensitive": bool(key[Attribute.ALWAYS_SENSITIVE]),
            "local": bool(key[Attribute.LOCAL]),  # made on the token, not imported
        }

    return _use(config, location, "reading the key's attributes", work)
