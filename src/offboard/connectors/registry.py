"""Connector kind → class. Each system is one module; add its line to `BUILTIN` (imported
lazily, so a module whose client library is missing breaks only its own kind)."""

from __future__ import annotations

import importlib

from offboard.connectors.base import Connector, ConnectorConfigError

# kind → "module:Class"
BUILTIN: dict[str, str] = {
    "scim": "offboard.connectors.scim:ScimConnector",
    "ldap": "offboard.connectors.ldap:LdapConnector",
    "postgres": "offboard.connectors.pgroles:PgRolesConnector",
    "aws_iam": "offboard.connectors.awsiam:AwsIamConnector",
}

_extra: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    """Register a class (tests, plug-ins); usable as a decorator."""
    _extra[cls.kind] = cls
    return cls


def kinds() -> list[str]:
    return sorted(set(BUILTIN) | set(_extra))


def get(kind: str) -> type[Connector]:
    """The class for `kind`; ConnectorConfigError when unknown or its module cannot load."""
    if kind in _extra:
        return _extra[kind]
    path = BUILTIN.get(kind)
    if path is None:
        raise ConnectorConfigError(f"Unknown connector kind {kind!r}; known: {', '.join(kinds())}.")
    module_name, _, attr = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConnectorConfigError(f"The {kind} connector is not available: {exc}.") from exc
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConnectorConfigError(f"{path} is not a Connector.")
    return cls
