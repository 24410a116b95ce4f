"""The connector contract: one module per external system (SCIM, LDAP, PostgreSQL roles, …),
one interface. Pure Python — no Django, no models — so a connector can be tested against its
real peer alone, and `offboard.connectors.services` records what it did.

A connector is built from a connection's non-secret `config` (a JSON object) and its `secret`
(a token or password, unsealed only for the call). It:

- `check()`     reads something harmless: credentials and reachability, no change.
- `discover(m)` lists the accounts, group memberships, roles and keys matching `m`.
- `plan(a)`     a dry run: the exact operations, in order (`Phase`: transfer ownership first,
                our own access last). No I/O is required; a connector may read to plan.
- `revoke(p, key)` carries the plan out, idempotently, one `Outcome` per operation. It never
                reports `revoked` for something it did not change, and `already_absent` when
                there was nothing to do. A failure of one operation does not stop the others
                unless a later one depends on it (the connector says so in `detail`).
- `verify(a)`   a separate read of the system → `Observation` `absent | present |
                indeterminate`. Only this read may make an access grant `observed`.

Errors: `ConnectorError` (`retryable` for network errors, timeouts, 429 and 5xx — the
connector retries those itself with backoff honouring Retry-After before raising; 4xx are
never retried) and its subclasses `CredentialsRefused` (the peer refused the secret: a clear
message at `check()`) and `ConnectorConfigError` (the config is unusable). No message, detail
or raw response ever contains the secret: connectors scrub it (`scrub()` below).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

# --- vocabularies -----------------------------------------------------------------------


class AccountKind(enum.StrEnum):
    USER = "user"
    GROUP_MEMBERSHIP = "group-membership"
    ROLE = "role"
    KEY = "key"


class Phase(enum.IntEnum):
    """Where an operation goes in a plan: lower first. Ownership is transferred before
    anything is taken away; the access Offboard itself uses to act goes last."""

    TRANSFER_OWNERSHIP = 10
    REMOVE_MEMBERSHIP = 20
    REVOKE_CREDENTIAL = 30  # keys, tokens, passwords, sessions
    DISABLE = 40
    DELETE = 50
    OWN_ACCESS = 90


class OutcomeStatus(enum.StrEnum):
    REVOKED = "revoked"  # we changed it; a verify read still has to confirm
    ALREADY_ABSENT = "already_absent"  # nothing to do: it was not there
    PENDING = "pending"  # accepted by the peer, not yet done (asynchronous provider)
    NEEDS_MANUAL = "needs_manual"  # the connector cannot do this; a person must
    FAILED = "failed"  # refused or not reachable after retries; still open


class ObservationStatus(enum.StrEnum):
    ABSENT = "absent"
    PRESENT = "present"
    INDETERMINATE = "indeterminate"  # the read failed or was ambiguous


# --- errors -----------------------------------------------------------------------------


class ConnectorError(Exception):
    """A call to the external system failed. `retryable` says whether trying again later
    may help (network error, timeout, 429, 5xx); `status` is the HTTP (or protocol) status
    where there is one; `request_id` the provider's id for the request where it gave one.
    The message never holds the secret."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.request_id = request_id


class CredentialsRefused(ConnectorError):
    """The peer refused the connection's credentials (401/403 at check(), a failed bind…)."""


class ConnectorConfigError(ConnectorError):
    """The connection's config is incomplete or malformed; the message names the field."""


# --- values -----------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True)
class Match:
    """What `discover()` looks for; an account matches if it matches any non-empty
    criterion. Connectors ignore criteria that mean nothing to their system."""

    email_domains: tuple[str, ...] = ()  # "client.example" matches a@client.example
    groups: tuple[str, ...] = ()  # group names (or ids): their members
    role_prefixes: tuple[str, ...] = ()  # roles/logins starting with one of these
    ids: tuple[str, ...] = ()  # explicit external ids or logins

    def is_empty(self) -> bool:
        return not (self.email_domains or self.groups or self.role_prefixes or self.ids)

    def matches_email(self, email: str) -> bool:
        domain = email.rpartition("@")[2].lower()
        return bool(email) and "@" in email and domain in {d.lower() for d in self.email_domains}

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Match:
        return cls(**{f.name: tuple(data.get(f.name) or ()) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class Account:
    """Something in the external system that gives a person access: a user, a membership of
    a group, a role, a key. `external_id` is the system's stable id (SCIM id, LDAP DN, role
    name, key id); `login` the user name or e-mail shown to people."""

    external_id: str
    login: str
    display_name: str = ""
    kind: AccountKind = AccountKind.USER
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "login": self.login,
            "display_name": self.display_name,
            "kind": str(self.kind),
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Account:
        return cls(
            external_id=str(data["external_id"]),
            login=str(data.get("login") or ""),
            display_name=str(data.get("display_name") or ""),
            kind=AccountKind(data.get("kind") or AccountKind.USER),
            details=dict(data.get("details") or {}),
        )


@dataclasses.dataclass(frozen=True)
class Operation:
    """One change a revoke makes. `action` is the connector's verb (`remove_member`,
    `deactivate`, `delete`, …); `target_id` the object the change is made on (the group for
    a membership removal); `account_id` the account it serves; `order` its `Phase`."""

    action: str
    target_id: str
    description: str
    order: int
    account_id: str = ""
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target_id": self.target_id,
            "description": self.description,
            "order": int(self.order),
            "account_id": self.account_id,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Operation:
        return cls(
            action=str(data["action"]),
            target_id=str(data["target_id"]),
            description=str(data.get("description") or ""),
            order=int(data["order"]),
            account_id=str(data.get("account_id") or ""),
            details=dict(data.get("details") or {}),
        )


@dataclasses.dataclass(frozen=True)
class Plan:
    """The operations of a revoke, in the order they run (stable sort by `order`)."""

    kind: str
    operations: tuple[Operation, ...]
    accounts: tuple[Account, ...] = ()

    @classmethod
    def of(
        cls, kind: str, operations: Iterable[Operation], accounts: Iterable[Account] = ()
    ) -> Plan:
        ops = list(operations)
        ordered = sorted(range(len(ops)), key=lambda i: (ops[i].order, i))
        return cls(kind=kind, operations=tuple(ops[i] for i in ordered), accounts=tuple(accounts))

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "operations": [op.as_dict() for op in self.operations],
            "accounts": [a.as_dict() for a in self.accounts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls.of(
            str(data["kind"]),
            (Operation.from_dict(o) for o in data.get("operations") or ()),
            (Account.from_dict(a) for a in data.get("accounts") or ()),
        )

    def sha256(self) -> str:
        """SHA-256 of the canonical plan; computed once (a run's events each carry it)."""
        digest = self.__dict__.get("_sha256")
        if digest is None:
            digest = self.__dict__["_sha256"] = sha256_json(self.as_dict())
        return str(digest)


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request to the peer and its answer, as recorded: the SHA-256 of the canonical
    request (method, URL, body — never credentials) and of the raw response bytes, the
    provider's request id, the response already scrubbed of secrets."""

    request_sha256: str = ""
    response_sha256: str = ""
    request_id: str = ""
    response: bytes = b""
    status: int | None = None
    started_at: dt.datetime = dataclasses.field(default_factory=_now)
    ended_at: dt.datetime = dataclasses.field(default_factory=_now)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What `revoke()` did for one operation. The hashes, request id, raw response and times
    are those of the decisive request (for an operation made of several reads and writes,
    the last one); `response` is scrubbed of secrets."""

    operation: Operation
    status: OutcomeStatus
    detail: str = ""
    request_id: str = ""
    request_sha256: str = ""
    response_sha256: str = ""
    response: bytes = b""
    started_at: dt.datetime = dataclasses.field(default_factory=_now)
    ended_at: dt.datetime = dataclasses.field(default_factory=_now)

    @classmethod
    def from_exchange(
        cls,
        operation: Operation,
        status: OutcomeStatus,
        detail: str,
        exchange: Exchange | None,
        *,
        started_at: dt.datetime | None = None,
    ) -> Outcome:
        ex = exchange or Exchange()
        return cls(
            operation=operation,
            status=status,
            detail=detail,
            request_id=ex.request_id,
            request_sha256=ex.request_sha256,
            response_sha256=ex.response_sha256,
            response=ex.response,
            started_at=started_at or ex.started_at,
            ended_at=ex.ended_at if exchange else _now(),
        )

    def as_dict(self) -> dict[str, Any]:
        """Everything but the raw response bytes (stored as an evidence file)."""
        return {
            "operation": self.operation.as_dict(),
            "status": str(self.status),
            "detail": self.detail,
            "request_id": self.request_id,
            "request_sha256": self.request_sha256,
            "response_sha256": self.response_sha256,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
        }


@dataclasses.dataclass(frozen=True)
class Observation:
    """What `verify()` read. `raw` is the bytes of the read(s) as received, scrubbed (for
    several reads, the connector's own JSON document of them); `detail` says in words why the
    status is what it is."""

    account: Account
    status: ObservationStatus
    detail: str = ""
    raw: bytes = b""
    request_id: str = ""
    request_sha256: str = ""
    response_sha256: str = ""
    started_at: dt.datetime = dataclasses.field(default_factory=_now)
    ended_at: dt.datetime = dataclasses.field(default_factory=_now)

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account.as_dict(),
            "status": str(self.status),
            "detail": self.detail,
            "request_id": self.request_id,
            "request_sha256": self.request_sha256,
            "response_sha256": self.response_sha256,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
        }


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """`check()` succeeded: `detail` says what was read (e.g. "SCIM 2.0 at … — 12 users")."""

    detail: str
    target: str = ""


# --- the interface ----------------------------------------------------------------------


class Connector(abc.ABC):
    """Subclasses set `kind` (registry key, e.g. "scim"), `version` (of the module, recorded
    in every event), `label` (for people), `config_fields` (the keys of `config` it reads;
    `required_config` those it needs) and implement the five calls."""

    kind: ClassVar[str]
    version: ClassVar[str]
    label: ClassVar[str] = ""
    config_fields: ClassVar[tuple[str, ...]] = ()
    required_config: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping[str, Any], secret: str) -> None:
        self.config = dict(self.validate_config(config))
        self._secret = secret

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config as stored; raises ConnectorConfigError naming the bad field. Subclasses
        may normalise further (call super first)."""
        if not isinstance(config, Mapping):
            raise ConnectorConfigError("The connection's config must be a JSON object.")
        unknown = sorted(set(config) - set(cls.config_fields))
        if cls.config_fields and unknown:
            raise ConnectorConfigError(
                f"Unknown config field(s) for {cls.kind}: {', '.join(unknown)}."
            )
        missing = [f for f in cls.required_config if config.get(f) in (None, "")]
        if missing:
            raise ConnectorConfigError(
                f"Missing config field(s) for {cls.kind}: {', '.join(missing)}."
            )
        return dict(config)

    def target(self) -> str:
        """The system acted on, for the record (a base URL, host:port, …), never a secret."""
        return str(self.config.get("url") or self.config.get("host") or self.kind)

    def scrub(self, data: bytes | str) -> bytes:
        """`data` with this connection's secret replaced (see `scrub`)."""
        return scrub(data, [self._secret])

    @abc.abstractmethod
    def check(self) -> CheckResult: ...

    @abc.abstractmethod
    def discover(self, match: Match) -> list[Account]: ...

    @abc.abstractmethod
    def plan(self, accounts: Sequence[Account]) -> Plan: ...

    @abc.abstractmethod
    def revoke(self, plan: Plan, idempotency_key: str) -> list[Outcome]: ...

    @abc.abstractmethod
    def verify(self, account: Account) -> Observation: ...

    def close(self) -> None:
        """Release connections; called by the services when done."""
        return None


# --- helpers every connector uses -------------------------------------------------------

REDACTED = b"[REDACTED]"


def scrub(data: bytes | str, secrets: Iterable[str]) -> bytes:
    """`data` as bytes with every occurrence of each (non-trivial) secret replaced by
    [REDACTED] — also in its JSON-escaped and URL-quoted forms."""
    out = data.encode() if isinstance(data, str) else bytes(data)
    for secret in secrets:
        for form in secret_forms(secret):
            out = out.replace(form, REDACTED)
    return out


def secret_forms(secret: str) -> set[bytes]:
    """The forms of a secret `scrub` replaces: as is, JSON-escaped, URL-quoted (none for a
    trivial one, under 4 characters)."""
    from urllib.parse import quote

    if not secret or len(secret) < 4:
        return set()
    return {f.encode() for f in (secret, json.dumps(secret)[1:-1], quote(secret, safe=""))}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(value: Any) -> str:
    """SHA-256 of the canonical JSON (RFC 8785 for the plain values connectors use: sorted
    keys, no spaces, UTF-8) of `value`."""
    return sha256_hex(canonical_json(value))


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode()


def canonical_request_sha256(method: str, url: str, body: Any = None) -> str:
    """SHA-256 of the canonical request: method, URL and JSON body — never headers, so no
    credential enters it."""
    return sha256_json({"method": method.upper(), "url": url, "body": body})
