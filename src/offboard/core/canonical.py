"""RFC 8785 canonical JSON and the SHA-256 digests built on it."""

import datetime as dt
import decimal
import hashlib
import uuid
from typing import Any

import rfc8785


def to_jsonable(value: Any) -> Any:
    """Turn the values our models hold into plain JSON types, deterministically."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


def canonical_json(value: Any) -> bytes:
    return rfc8785.dumps(to_jsonable(value))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    return sha256_hex(canonical_json(value))
