"""Organizations' checkpoint signing keys: Ed25519, private half in a 0600 file under
OFFBOARD_KEY_DIR, public half (note verifier key) in the database with its validity."""

import os
from pathlib import Path
from typing import Any

from django.conf import settings

from offboard.core import clock
from offboard.ledger.models import SigningKey
from offboard.ledger.note import Signer


def origin(org: Any) -> str:
    """The log's origin line, also the key name: `<deployment host>/offboard/<org slug>`."""
    return f"{settings.SITE_HOST}/offboard/{org.slug}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)  # the umask may have widened it


def create_key(org: Any) -> SigningKey:
    """A new key for the organization; the caller retires the previous one."""
    signer = Signer.generate(origin(org))
    key_id = signer.key_id.hex()
    path = Path(settings.OFFBOARD_KEY_DIR) / f"{org.slug}-{key_id}.key"
    _write_private(path, signer.to_signer_key())
    return SigningKey.objects.create(
        org=org,
        name=signer.name,
        key_id=key_id,
        verifier_key=signer.verifier_key(),
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


class KeyUnavailable(RuntimeError):
    """The private key file of a signing key cannot be read."""


def load_signer(key: SigningKey) -> Signer:
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
