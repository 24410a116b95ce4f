"""Organizations' checkpoint signing keys: Ed25519, the public half (note verifier key) in the
database with its validity, the private half in a 0600 file under OFFBOARD_KEY_DIR or, when
OFFBOARD_PKCS11_MODULE is set, made and kept on a PKCS#11 token (decision 0033)."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from offboard.core import clock
from offboard.core.errors import OffboardError
from offboard.ledger import pkcs11
from offboard.ledger.models import SigningKey
from offboard.ledger.note import NoteSigner, Signer, Verifier


def origin(org: Any) -> str:
    """The log's origin line, also the key name: `<deployment host>/offboard/<org slug>`."""
    return f"{settings.SITE_HOST}/offboard/{org.slug}"


class KeyUnavailable(OffboardError, RuntimeError):
    """A signing key's private half cannot be used: its file, or its token, PIN or key object.
    Nothing is signed; the CLI says it on one line, the API answers 503."""

    status = 503
    code = "signing_key_unavailable"


# --- where new keys are made -----------------------------------------------------------------


def token_config() -> pkcs11.TokenConfig | None:
    """The PKCS#11 token new keys are made on, or None for files. The PIN is read here, at each
    use, from OFFBOARD_PKCS11_PIN_FILE (else the OFFBOARD_PKCS11_PIN variable): never stored."""
    module = settings.OFFBOARD_PKCS11_MODULE
    if not module:
        return None
    token = settings.OFFBOARD_PKCS11_TOKEN
    if not token:
        raise KeyUnavailable(
            "OFFBOARD_PKCS11_MODULE is set but OFFBOARD_PKCS11_TOKEN is not: set it to the label "
            "of the token that holds the signing keys."
        )
    pin_file = settings.OFFBOARD_PKCS11_PIN_FILE
    if pin_file:
        try:
            pin = Path(pin_file).read_text().strip()
        except OSError as exc:
            raise KeyUnavailable(
                f"Cannot read the PKCS#11 PIN file {pin_file} (OFFBOARD_PKCS11_PIN_FILE): "
                f"{exc.strerror}. Check the path and that this user may read it."
            ) from exc
        if not pin:
            raise KeyUnavailable(
                f"The PKCS#11 PIN file {pin_file} (OFFBOARD_PKCS11_PIN_FILE) is empty."
            )
    else:
        pin = os.environ.get("OFFBOARD_PKCS11_PIN", "")
        if not pin:
            raise KeyUnavailable(
                "OFFBOARD_PKCS11_MODULE is set but no PIN is given: set OFFBOARD_PKCS11_PIN_FILE "
                "to a file (mode 0600) holding the token's user PIN."
            )
    return pkcs11.TokenConfig(module=module, token=token, pin=pin)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)  # the umask may have widened it


def create_key(org: Any) -> SigningKey:
    """A new key for the organization, on the token when one is configured; the caller retires
    the previous one."""
    name = origin(org)
    config = token_config()
    if config is not None:
        try:
            location, public = pkcs11.generate_ed25519(config, label=name)
        except pkcs11.TokenUnavailable as exc:
            raise KeyUnavailable(
                f"Cannot make a signing key for {name} on the PKCS#11 token: {exc}."
            ) from exc
        verifier = Verifier.from_public_key(name, public)
        return SigningKey.objects.create(
            org=org,
            name=name,
            key_id=verifier.key_id.hex(),
            verifier_key=verifier.verifier_key(),
            backend=SigningKey.Backend.PKCS11,
            location=location.uri(),
            created_at=clock.now(),
        )
    signer = Signer.generate(name)
    key_id = signer.key_id.hex()
    path = Path(settings.OFFBOARD_KEY_DIR) / f"{org.slug}-{key_id}.key"
    _write_private(path, signer.to_signer_key())
    return SigningKey.objects.create(
        org=org,
        name=signer.name,
        key_id=key_id,
        verifier_key=signer.verifier_key(),
        backend=SigningKey.Backend.FILE,
        private_key_path=str(path),
        created_at=clock.now(),
    )


def active_key(org: Any) -> SigningKey:
    key = (
        SigningKey.objects.filter(org=org, retired_at__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )
    return key if key is not None else create_key(org)


# --- signing --------------------------------------------------------------------------------------


def signer_for(key: SigningKey) -> NoteSigner:
    """What signs with `key`, wherever its private half lives (checkpoints need no more)."""
    if key.backend == SigningKey.Backend.PKCS11:
        return TokenSigner.for_key(key)
    return load_signer(key)


def load_signer(key: SigningKey) -> Signer:
    """The private key of a file key, read into memory."""
    if key.backend != SigningKey.Backend.FILE:
        raise KeyUnavailable(
            f"The signing key {key.key_id} of {key.name} lives on a PKCS#11 token "
            f"({key.location}); its private half cannot be read out."
        )
    try:
        text = Path(key.private_key_path).read_text().strip()
    except OSError as exc:
        raise KeyUnavailable(
            f"Cannot read the signing key {key.key_id} of {key.name} at {key.private_key_path}: "
            f"{exc.strerror}. Restore the key file or rotate the key (offboard ledger rotate-key)."
        ) from exc
    signer = Signer.from_signer_key(text)
    if signer.verifier_key() != key.verifier_key:
        raise KeyUnavailable(
            f"The key file {key.private_key_path} does not match key {key.key_id}."
        )
    return signer


def _token_config_for(key: SigningKey) -> pkcs11.TokenConfig:
    config = token_config()
    if config is None:
        raise KeyUnavailable(
            f"The signing key {key.key_id} of {key.name} lives on a PKCS#11 token "
            f"({key.location}) but OFFBOARD_PKCS11_MODULE is not set: configure the token "
            "(docs/deploy.md, Key custody), or rotate to a file key (offboard ledger rotate-key)."
        )
    return config


@dataclass(frozen=True)
class TokenSigner:
    """Signs notes with an Ed25519 key on a PKCS#11 token (CKM_EDDSA). Each signature is checked
    against the key's public half in the database before it is used, so a token holding some
    other key under the same id cannot sign in this key's name."""

    name: str
    key_id: bytes
    location: pkcs11.KeyLocation
    verifier: Verifier = field(repr=False)
    config: pkcs11.TokenConfig = field(repr=False)

    @classmethod
    def for_key(cls, key: SigningKey) -> "TokenSigner":
        config = _token_config_for(key)
        try:
            location = pkcs11.KeyLocation.parse(key.location)
        except pkcs11.TokenUnavailable as exc:
            raise KeyUnavailable(f"The signing key {key.key_id} of {key.name}: {exc}.") from exc
        verifier = Verifier.from_verifier_key(key.verifier_key)
        return cls(key.name, verifier.key_id, location, verifier, config)

    def sign(self, msg: bytes) -> bytes:
        try:
            sig = pkcs11.sign(self.config, self.location, msg, pkcs11.Mechanism.EDDSA)
        except pkcs11.TokenUnavailable as exc:
            raise KeyUnavailable(
                f"Cannot sign with key {self.key_id.hex()} of {self.name}: {exc}. Nothing was "
                "signed; once the token works again, retry (or rotate the key: offboard ledger "
                "rotate-key)."
            ) from exc
        if not self.verifier.verify(msg, sig):
            raise KeyUnavailable(
                f"The key {self.location.uri()} on the token does not match signing key "
                f"{self.key_id.hex()} of {self.name}: check OFFBOARD_PKCS11_TOKEN."
            )
        return sig


def custody(key: SigningKey) -> dict[str, bool]:
    """What the token says of a token key: extractable, sensitive, never_extractable, …"""
    config = _token_config_for(key)
    try:
        return pkcs11.key_attributes(config, pkcs11.KeyLocation.parse(key.location))
    except pkcs11.TokenUnavailable as exc:
        raise KeyUnavailable(f"The signing key {key.key_id} of {key.name}: {exc}.") from exc


# --- readiness ----------------------------------------------------------------------------------


def unusable(keys: list[SigningKey]) -> list[tuple[SigningKey, str]]:
    """The keys that cannot sign now, each with why (empty when all can). A file key must be on
    this machine; a token key must be found on its token with the configured PIN."""
    problems: list[tuple[SigningKey, str]] = []
    for key in keys:
        if key.backend == SigningKey.Backend.PKCS11:
            try:
                pkcs11.find(_token_config_for(key), pkcs11.KeyLocation.parse(key.location))
            except (KeyUnavailable, pkcs11.TokenUnavailable) as exc:
                problems.append((key, str(exc)))
        elif not Path(key.private_key_path).is_file():
            problems.append((key, "no private key file on this machine"))
    return problems
