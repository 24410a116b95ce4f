"""LDAP connector (OpenLDAP and compatible directories), on `ldap3`.

Config: `host`, `port` (389, or 636 with `use_ssl`), `base_dn`, `bind_dn`, `user_base` and
`group_base` (default: `base_dn`), `user_filter` (default `(objectClass=inetOrgPerson)`),
`login_attribute` (`uid`), `mail_attribute` (`mail`), `group_filter`
(`(objectClass=groupOfNames)`), `member_attribute` (`member`), `disable_mode` (`disable` —
the default — or `delete`), `timeout` (seconds, 10), `retries` (network errors, 2).
Secret: the bind password.

- discover: users under `user_base` matching `user_filter` and any of: a mail domain, a group
  (its members), a login prefix, an explicit id (DN, login or mail); with their groups (a
  group search on `member`, merged with `memberOf` where the overlay is loaded).
- plan: remove the user from each group, then disable (replace `userPassword` with a value no
  password hashes to, and set `pwdAccountLockedTime` when the ppolicy schema is loaded) or
  delete the entry. The bind DN's own entry goes last.
- revoke: each operation re-reads first, so a repeat is `already_absent`.
- verify: a search (no group lists the DN; the entry is gone, or has no usable password) and,
  given the user's known password (`probe_password`), a bind that must fail.

Every request is described canonically (operation, DN, filter, changes — never a password)
and hashed; the response recorded is the connector's JSON of the LDAP result and entries with
password hashes summarised and the bind password scrubbed. The request id is the LDAP
message id.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import safe_dn

from offboard.connectors.base import (
    Account,
    AccountKind,
    CheckResult,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    CredentialsRefused,
    Exchange,
    Match,
    Observation,
    ObservationStatus,
    Operation,
    Outcome,
    OutcomeStatus,
    Phase,
    Plan,
    canonical_json,
    scrub,
    sha256_hex,
    sha256_json,
)

T = TypeVar("T")

# A userPassword value no password hashes to: crypt(3) never yields "!…", and a server
# without {CRYPT} refuses the scheme — either way no bind succeeds. It says who put it there.
UNUSABLE_PASSWORD = "{CRYPT}!disabled-by-offboard"
LOCKED_FOREVER = "000001010000Z"  # ppolicy: a lock time this old means locked until reset

# LDAP result codes (RFC 4511).
SUCCESS = 0
SIZE_LIMIT_EXCEEDED = 4
NO_SUCH_ATTRIBUTE = 16
UNDEFINED_ATTRIBUTE_TYPE = 17
CONSTRAINT_VIOLATION = 19
ATTRIBUTE_OR_VALUE_EXISTS = 20
NO_SUCH_OBJECT = 32
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS = 50
BUSY = 51
UNAVAILABLE = 52
UNWILLING_TO_PERFORM = 53
OBJECT_CLASS_VIOLATION = 65
NOT_ALLOWED_ON_NON_LEAF = 66
RETRYABLE_RESULTS = frozenset({BUSY, UNAVAILABLE})

# Network-level failures ldap3 raises (never a result code): worth a retry.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    ldap_exc.LDAPCommunicationError,
    ldap_exc.LDAPResponseTimeoutError,
    ldap_exc.LDAPSocketOpenError,
    OSError,
)

PROBE_ERRORS: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, ldap_exc.LDAPException)


def _dn_key(dn: str) -> str:
    """A DN compared as the directory does it (case and spacing around separators)."""
    try:
        return str(safe_dn(dn)).lower()
    except Exception:  # not a DN: compare as typed
        return dn.strip().lower()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(value).decode()
    return str(value)


class _Reply:
    """One LDAP request as recorded: its canonical description, the message id, the result and
    the entries (raw attribute values as text)."""

    def __init__(self, request: Mapping[str, Any], message_id: int, result: Mapping[str, Any]):
        self.request = dict(request)
        self.message_id = message_id
        self.result = int(result.get("result", -1) if result else -1)
        self.description = str(result.get("description", "") if result else "")
        self.message = str(result.get("message", "") if result else "")
        self.entries: list[dict[str, Any]] = []
        self.started_at = dt.datetime.now(dt.UTC)
        self.ended_at = self.started_at

    @property
    def ok(self) -> bool:
        return self.result == SUCCESS

    def summary(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": self.message_id,
            "result": self.result,
            "description": self.description,
            "message": self.message,
        }
        if self.request.get("op") == "search":
            body["entries"] = self.entries
        return body


class LdapConnector(Connector):
    kind = "ldap"
    version = "1.0.0"
    label = "LDAP directory (OpenLDAP and compatible)"
    config_fields = (
        "host",
        "port",
        "use_ssl",
        "base_dn",
        "bind_dn",
        "user_base",
        "group_base",
        "user_filter",
        "login_attribute",
        "mail_attribute",
        "group_filter",
        "member_attribute",
        "disable_mode",
        "timeout",
        "retries",
    )
    required_config = ("host", "base_dn", "bind_dn")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        data = super().validate_config(config)
        if "port" in data and data["port"] not in (None, ""):
            try:
                port = int(data["port"])
            except (TypeError, ValueError):
                raise ConnectorConfigError("port must be a number from 1 to 65535.") from None
            if not 0 < port < 65536:
                raise ConnectorConfigError("port must be a number from 1 to 65535.")
        if data.get("disable_mode", "disable") not in ("disable", "delete"):
            raise ConnectorConfigError('disable_mode must be "disable" or "delete".')
        for name in ("base_dn", "bind_dn", "user_base", "group_base"):
            if data.get(name):
                try:
                    safe_dn(str(data[name]))
                except Exception:  # ldap3 raises several kinds
                    raise ConnectorConfigError(f"{name} is not a valid DN.") from None
        for name in ("user_filter", "group_filter"):
            value = str(data.get(name) or "")
            if value and not (value.startswith("(") and value.endswith(")")):
                raise ConnectorConfigError(f"{name} must be an LDAP filter in parentheses.")
        for name, low in (("timeout", 0.1), ("retries", 0)):
            if data.get(name) not in (None, ""):
                try:
                    ok = float(data[name]) >= low
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise ConnectorConfigError(f"{name} must be a number ≥ {low}.")
        return data

    def __init__(self, config: Mapping[str, Any], secret: str) -> None:
        super().__init__(config, secret)
        c = self.config
        self.host = str(c["host"])
        self.use_ssl = bool(c.get("use_ssl"))
        self.port = int(c.get("port") or (636 if self.use_ssl else 389))
        self.base_dn = str(c["base_dn"])
        self.bind_dn = str(c["bind_dn"])
        self.user_base = str(c.get("user_base") or self.base_dn)
        self.group_base = str(c.get("group_base") or self.base_dn)
        self.user_filter = str(c.get("user_filter") or "(objectClass=inetOrgPerson)")
        self.login_attr = str(c.get("login_attribute") or "uid")
        self.mail_attr = str(c.get("mail_attribute") or "mail")
        self.group_filter = str(c.get("group_filter") or "(objectClass=groupOfNames)")
        self.member_attr = str(c.get("member_attribute") or "member")
        self.disable_mode = str(c.get("disable_mode") or "disable")
        self.timeout = float(c.get("timeout") or 10)
        retries = c.get("retries")
        self.retries = 2 if retries in (None, "") else int(str(retries))
        self._conn: ldap3.Connection | None = None
        self._last_message_id = 0
        self._ppolicy: bool | None = None

    def target(self) -> str:
        return f"ldap{'s' if self.use_ssl else ''}://{self.host}:{self.port}/{self.base_dn}"

    # --- connection and calls -----------------------------------------------------------

    def _server(self) -> ldap3.Server:
        return ldap3.Server(
            self.host,
            port=self.port,
            use_ssl=self.use_ssl,
            connect_timeout=self.timeout,
            get_info=ldap3.NONE,
        )

    def _open(self, user: str, password: str) -> ldap3.Connection:
        """A bound connection; raises CredentialsRefused on result 49, ConnectorError else."""
        conn = ldap3.Connection(
            self._server(),
            user=user,
            password=password,
            receive_timeout=max(1, math.ceil(self.timeout)),
            raise_exceptions=False,
            auto_bind=ldap3.AUTO_BIND_NONE,
        )
        self._track(conn)
        if conn.bind():
            return conn
        result = dict(conn.result or {})
        self._drop(conn)
        code = int(result.get("result", -1))
        if code == INVALID_CREDENTIALS:
            raise CredentialsRefused(
                f"The LDAP server at {self.host}:{self.port} refused the bind as {user} "
                "(invalid credentials).",
                status=code,
                request_id=str(self._last_message_id),
            )
        raise ConnectorError(
            self._safe(
                f"The bind as {user} at {self.host}:{self.port} failed: "
                f"{result.get('description', '')} {result.get('message', '')}".strip()
            ),
            retryable=code in RETRYABLE_RESULTS,
            status=code,
            request_id=str(self._last_message_id),
        )

    def _track(self, conn: ldap3.Connection) -> None:
        """Remember each request's LDAP message id (ldap3 keeps it to itself)."""
        send = conn.send  # ldap3 binds the strategy's send here at construction

        def sending(*args: Any, **kwargs: Any) -> Any:
            message_id = send(*args, **kwargs)
            self._last_message_id = int(message_id)
            return message_id

        conn.send = sending

    @staticmethod
    def _drop(conn: ldap3.Connection | None) -> None:
        if conn is None:
            return
        with contextlib.suppress(Exception):  # closing a broken socket
            conn.unbind()

    def _admin(self) -> ldap3.Connection:
        if self._conn is None or not self._conn.bound or self._conn.closed:
            self._drop(self._conn)
            self._conn = None
            self._conn = self._open(self.bind_dn, self._secret)
        return self._conn

    def close(self) -> None:
        self._drop(self._conn)
        self._conn = None

    def _safe(self, text: str) -> str:
        return self.scrub(text).decode(errors="replace")

    def _with_retries(self, work: Callable[[], T]) -> T:
        """`work()` on the admin connection; network errors reconnect and retry with backoff
        (`retries` times), then raise a retryable ConnectorError. Result codes are never
        retried here but busy/unavailable (see `_checked`)."""
        attempt = 0
        while True:
            try:
                return work()
            except ConnectorError as exc:
                if not exc.retryable or attempt >= self.retries:
                    raise
            except NETWORK_ERRORS as exc:
                self.close()
                if attempt >= self.retries:
                    raise ConnectorError(
                        self._safe(
                            f"The LDAP server at {self.host}:{self.port} is not reachable "
                            f"({type(exc).__name__}: {exc})."
                        ),
                        retryable=True,
                        request_id=str(self._last_message_id or ""),
                    ) from None
            self.close()
            time.sleep(min(0.2 * 2**attempt, 5.0))
            attempt += 1

    def _checked(self, reply: _Reply, *accept: int) -> _Reply:
        if reply.result == SUCCESS or reply.result in accept:
            return reply
        raise ConnectorError(
            self._safe(
                f"LDAP {reply.request.get('op')} on {reply.request.get('dn') or reply.request.get('base')} "
                f"failed: {reply.description} ({reply.result}) {reply.message}".strip()
            ),
            retryable=reply.result in RETRYABLE_RESULTS,
            status=reply.result,
            request_id=str(reply.message_id),
        )

    def _search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        scope: Literal["BASE", "LEVEL", "SUBTREE"] = "SUBTREE",
        size_limit: int = 0,
        conn: ldap3.Connection | None = None,
    ) -> _Reply:
        c = conn or self._admin()
        request = {
            "op": "search",
            "base": base,
            "scope": scope,
            "filter": search_filter,
            "attributes": list(attributes),
        }
        started = dt.datetime.now(dt.UTC)
        c.search(
            base,
            search_filter,
            search_scope=scope,
            attributes=list(attributes),
            size_limit=size_limit,
        )
        reply = _Reply(request, self._last_message_id, c.result or {})
        reply.started_at, reply.ended_at = started, dt.datetime.now(dt.UTC)
        for entry in c.response or ():
            if entry.get("type") != "searchResEntry":
                continue
            attrs = {
                str(name): [self._attr_text(str(name), v) for v in values]
                for name, values in (entry.get("raw_attributes") or {}).items()
            }
            reply.entries.append({"dn": str(entry.get("dn", "")), "attributes": attrs})
        return self._checked(reply, NO_SUCH_OBJECT, SIZE_LIMIT_EXCEEDED)

    @staticmethod
    def _attr_text(name: str, value: Any) -> str:
        if name.lower() == "userpassword":  # never record a password hash as evidence
            return "unusable (set by Offboard)" if _text(value) == UNUSABLE_PASSWORD else "set"
        return _text(value)

    def _modify(self, dn: str, changes: Mapping[str, tuple[str, list[str]]]) -> _Reply:
        c = self._admin()
        described = {
            name: [op, ["[password]" if name.lower() == "userpassword" else v for v in values]]
            for name, (op, values) in changes.items()
        }
        request = {"op": "modify", "dn": dn, "changes": described}
        started = dt.datetime.now(dt.UTC)
        c.modify(dn, {name: [(op, values)] for name, (op, values) in changes.items()})
        reply = _Reply(request, self._last_message_id, c.result or {})
        reply.started_at, reply.ended_at = started, dt.datetime.now(dt.UTC)
        return reply

    def _delete(self, dn: str) -> _Reply:
        c = self._admin()
        started = dt.datetime.now(dt.UTC)
        c.delete(dn)
        reply = _Reply({"op": "delete", "dn": dn}, self._last_message_id, c.result or {})
        reply.started_at, reply.ended_at = started, dt.datetime.now(dt.UTC)
        return reply

    def _exchange(self, replies: Sequence[_Reply]) -> Exchange:
        """The record of the decisive request (the last), its response scrubbed."""
        last = replies[-1]
        body = self.scrub(canonical_json(last.summary()))
        return Exchange(
            request_sha256=sha256_json(last.request),
            response_sha256=sha256_hex(body),
            request_id=str(last.message_id),
            response=body,
            status=last.result,
            started_at=replies[0].started_at,
            ended_at=last.ended_at,
        )

    # --- the contract ------------------------------------------------------------------

    def check(self) -> CheckResult:
        def work() -> CheckResult:
            base = self._search(self.base_dn, "(objectClass=*)", ["1.1"], scope="BASE")
            if base.result == NO_SUCH_OBJECT:
                raise ConnectorConfigError(f"base_dn {self.base_dn} does not exist on the server.")
            users = self._search(self.user_base, self.user_filter, ["1.1"], size_limit=1000)
            count = f"{len(users.entries)}{'+' if users.result == SIZE_LIMIT_EXCEEDED else ''}"
            return CheckResult(
                detail=f"LDAP at {self.host}:{self.port}: bound as {self.bind_dn}; "
                f"{count} user(s) under {self.user_base}.",
                target=self.target(),
            )

        return self._with_retries(work)

    def discover(self, match: Match) -> list[Account]:
        if match.is_empty():
            return []
        return self._with_retries(lambda: self._discover(match))

    def _user_attributes(self) -> list[str]:
        return [self.login_attr, self.mail_attr, "cn", "displayName", "memberOf"]

    def _discover(self, match: Match) -> list[Account]:
        terms: list[str] = []
        for domain in match.email_domains:
            terms.append(f"({self.mail_attr}=*@{escape_filter_chars(domain.strip())})")
        for prefix in match.role_prefixes:
            terms.append(f"({self.login_attr}={escape_filter_chars(prefix)}*)")
        dns: set[str] = set()
        for ident in match.ids:
            if "=" in ident and "," in ident:
                dns.add(ident)
            else:
                value = escape_filter_chars(ident)
                terms.append(f"(|({self.login_attr}={value})({self.mail_attr}={value}))")
        for group in match.groups:
            dns.update(self._group_members(group))
        found: dict[str, dict[str, Any]] = {}
        attrs = self._user_attributes()
        if terms:
            reply = self._search(self.user_base, f"(&{self.user_filter}(|{''.join(terms)}))", attrs)
            for entry in reply.entries:
                found.setdefault(_dn_key(entry["dn"]), entry)
        for dn in dns:
            reply = self._search(dn, self.user_filter, attrs, scope="BASE")
            for entry in reply.entries:
                if _dn_key(entry["dn"]).endswith(_dn_key(self.user_base)):
                    found.setdefault(_dn_key(entry["dn"]), entry)
        accounts = [self._account(entry) for entry in found.values()]
        return sorted(accounts, key=lambda a: a.external_id.lower())

    def _group_members(self, group: str) -> list[str]:
        if "=" in group and "," in group:
            reply = self._search(group, self.group_filter, [self.member_attr], scope="BASE")
        else:
            reply = self._search(
                self.group_base,
                f"(&{self.group_filter}(cn={escape_filter_chars(group)}))",
                [self.member_attr],
            )
        return [
            dn
            for entry in reply.entries
            for name, values in entry["attributes"].items()
            if name.lower() == self.member_attr.lower()
            for dn in values
        ]

    def _groups_of(self, dn: str) -> list[str]:
        reply = self._search(
            self.group_base,
            f"(&{self.group_filter}({self.member_attr}={escape_filter_chars(dn)}))",
            ["1.1"],
        )
        return [entry["dn"] for entry in reply.entries]

    def _account(self, entry: Mapping[str, Any]) -> Account:
        attrs = {k.lower(): v for k, v in entry["attributes"].items()}
        dn = str(entry["dn"])
        groups = {_dn_key(g): g for g in self._groups_of(dn)}
        for g in attrs.get("memberof", []):
            groups.setdefault(_dn_key(g), g)
        login = (attrs.get(self.login_attr.lower()) or attrs.get(self.mail_attr.lower()) or [dn])[0]
        return Account(
            external_id=dn,
            login=login,
            display_name=(attrs.get("displayname") or attrs.get("cn") or [""])[0],
            kind=AccountKind.USER,
            details={
                "mail": (attrs.get(self.mail_attr.lower()) or [""])[0],
                "groups": sorted(groups.values(), key=str.lower),
            },
        )

    def plan(self, accounts: Sequence[Account]) -> Plan:
        """Reads each account's current groups (memberships added since discovery are
        included); the bind DN's own entry goes last."""
        operations: list[Operation] = []
        users = [a for a in accounts if a.kind == AccountKind.USER]
        current = self._with_retries(
            lambda: {a.external_id: self._groups_of(a.external_id) for a in users}
        )
        for account in users:
            dn = account.external_id
            own = _dn_key(dn) == _dn_key(self.bind_dn)
            groups = {_dn_key(g): g for g in account.details.get("groups") or ()}
            for g in current.get(dn, ()):
                groups.setdefault(_dn_key(g), g)
            for group in sorted(groups.values(), key=str.lower):
                operations.append(
                    Operation(
                        action="remove_member",
                        target_id=group,
                        description=f"Remove {dn} from the group {group}",
                        order=Phase.OWN_ACCESS if own else Phase.REMOVE_MEMBERSHIP,
                        account_id=dn,
                        details={"member_attribute": self.member_attr},
                    )
                )
            if self.disable_mode == "delete":
                operations.append(
                    Operation(
                        action="delete",
                        target_id=dn,
                        description=f"Delete the entry {dn}",
                        order=Phase.OWN_ACCESS + 1 if own else Phase.DELETE,
                        account_id=dn,
                    )
                )
            else:
                operations.append(
                    Operation(
                        action="disable",
                        target_id=dn,
                        description=f"Disable {dn}: replace its password with an unusable value "
                        "(and lock it where the password policy is loaded)",
                        order=Phase.OWN_ACCESS + 1 if own else Phase.DISABLE,
                        account_id=dn,
                    )
                )
        return Plan.of(self.kind, operations, users)

    def revoke(self, plan: Plan, idempotency_key: str) -> list[Outcome]:
        """LDAP has no idempotency token: each operation reads the current state first and
        changes only what is still there, so a repeat (same key or not) is `already_absent`."""
        outcomes: list[Outcome] = []
        for op in plan.operations:
            started = dt.datetime.now(dt.UTC)
            try:
                action = self._actions().get(op.action)
                if action is not None:
                    outcomes.append(self._with_retries(functools.partial(action, op)))
                else:
                    outcomes.append(
                        Outcome.from_exchange(
                            op,
                            OutcomeStatus.NEEDS_MANUAL,
                            f"Unknown action {op.action!r}.",
                            None,
                            started_at=started,
                        )
                    )
            except ConnectorError as exc:
                detail = self._safe(exc.message)
                if exc.retryable:
                    detail += " Not confirmed: retry the revoke (it re-reads first) and verify."
                outcomes.append(
                    Outcome(
                        operation=op,
                        status=OutcomeStatus.FAILED,
                        detail=detail,
                        request_id=exc.request_id,
                        started_at=started,
                    )
                )
        return outcomes

    def _actions(self) -> dict[str, Callable[[Operation], Outcome]]:
        return {
            "remove_member": self._remove_member,
            "disable": self._disable,
            "delete": self._delete_entry,
        }

    def _remove_member(self, op: Operation) -> Outcome:
        member_attr = str(op.details.get("member_attribute") or self.member_attr)
        group, dn = op.target_id, op.account_id
        read = self._search(group, "(objectClass=*)", [member_attr], scope="BASE")
        if read.result == NO_SUCH_OBJECT:
            return Outcome.from_exchange(
                op,
                OutcomeStatus.ALREADY_ABSENT,
                f"The group {group} does not exist.",
                self._exchange([read]),
            )
        members = [
            v
            for e in read.entries
            for k, vs in e["attributes"].items()
            if k.lower() == member_attr.lower()
            for v in vs
        ]
        present = [m for m in members if _dn_key(m) == _dn_key(dn)]
        if not present:
            return Outcome.from_exchange(
                op,
                OutcomeStatus.ALREADY_ABSENT,
                f"{dn} is not a member of {group}.",
                self._exchange([read]),
            )
        change = self._modify(group, {member_attr: (ldap3.MODIFY_DELETE, present)})
        exchange = self._exchange([read, change])
        if change.ok:
            return Outcome.from_exchange(
                op, OutcomeStatus.REVOKED, f"Removed {dn} from {group}.", exchange
            )
        if change.result == NO_SUCH_ATTRIBUTE:
            return Outcome.from_exchange(
                op,
                OutcomeStatus.ALREADY_ABSENT,
                f"{dn} was no longer a member of {group}.",
                exchange,
            )
        if change.result == OBJECT_CLASS_VIOLATION:
            return Outcome.from_exchange(
                op,
                OutcomeStatus.NEEDS_MANUAL,
                f"{dn} is the last member of {group}, which must keep one: add another member "
                "or delete the group.",
                exchange,
            )
        self._checked(change)
        raise AssertionError("unreachable")

    def _has_ppolicy(self) -> bool:
        """Whether the server's schema knows `pwdAccountLockedTime` (ppolicy loaded)."""
        if self._ppolicy is None:
            root = self._search("", "(objectClass=*)", ["subschemaSubentry"], scope="BASE")
            sub = next(
                (
                    v[0]
                    for e in root.entries
                    for k, v in e["attributes"].items()
                    if k.lower() == "subschemasubentry"
                ),
                "cn=Subschema",
            )
            schema = self._search(sub, "(objectClass=subschema)", ["attributeTypes"], scope="BASE")
            types = [v for e in schema.entries for vs in e["attributes"].values() for v in vs]
            self._ppolicy = any("'pwdAccountLockedTime'" in t for t in types)
        return self._ppolicy

    def _disable(self, op: Operation) -> Outcome:
        dn = op.target_id
        ppolicy = self._has_ppolicy()
        read = self._search(
            dn, "(objectClass=*)", ["userPassword", "pwdAccountLockedTime"], scope="BASE"
        )
        if read.result == NO_SUCH_OBJECT:
            return Outcome.from_exchange(
                op, OutcomeStatus.ALREADY_ABSENT, f"{dn} does not exist.", self._exchange([read])
            )
        attrs = {k.lower(): v for e in read.entries for k, v in e["attributes"].items()}
        passwords = attrs.get("userpassword", [])
        unusable = all(p != "set" for p in passwords)
        locked = bool(attrs.get("pwdaccountlockedtime")) or not ppolicy
        if unusable and locked:
            return Outcome.from_exchange(
                op,
                OutcomeStatus.ALREADY_ABSENT,
                f"{dn} is already disabled (no usable password).",
                self._exchange([read]),
            )
        changes: dict[str, tuple[str, list[str]]] = {
            "userPassword": (ldap3.MODIFY_REPLACE, [UNUSABLE_PASSWORD])
        }
        if ppolicy:
            changes["pwdAccountLockedTime"] = (ldap3.MODIFY_REPLACE, [LOCKED_FOREVER])
        change = self._modify(dn, changes)
        if (
            not change.ok
            and ppolicy
            and change.result
            in (
                UNDEFINED_ATTRIBUTE_TYPE,
                CONSTRAINT_VIOLATION,
                UNWILLING_TO_PERFORM,
                INSUFFICIENT_ACCESS,
            )
        ):
            # The lock attribute is not writable here: the unusable password alone disables.
            del changes["pwdAccountLockedTime"]
            change = self._modify(dn, changes)
        exchange = self._exchange([read, change])
        if change.result == NO_SUCH_OBJECT:
            return Outcome.from_exchange(
                op, OutcomeStatus.ALREADY_ABSENT, f"{dn} does not exist.", exchange
            )
        self._checked(change)
        locked_note = " and locked it (ppolicy)" if "pwdAccountLockedTime" in changes else ""
        return Outcome.from_exchange(
            op,
            OutcomeStatus.REVOKED,
            f"Replaced the password of {dn} with an unusable value{locked_note}.",
            exchange,
        )

    def _delete_entry(self, op: Operation) -> Outcome:
        dn = op.target_id
        change = self._delete(dn)
        exchange = self._exchange([change])
        if change.result == NO_SUCH_OBJECT:
            return Outcome.from_exchange(
                op, OutcomeStatus.ALREADY_ABSENT, f"{dn} does not exist.", exchange
            )
        if change.result == NOT_ALLOWED_ON_NON_LEAF:
            return Outcome.from_exchange(
                op,
                OutcomeStatus.NEEDS_MANUAL,
                f"{dn} has entries below it; delete them first.",
                exchange,
            )
        self._checked(change)
        return Outcome.from_exchange(op, OutcomeStatus.REVOKED, f"Deleted {dn}.", exchange)

    def verify(self, account: Account, *, probe_password: str | None = None) -> Observation:
        """A search (the entry is gone or has no usable password; no group lists it) and, when
        the user's known password is given, a bind with it that must fail. A read that fails
        gives `indeterminate`, never `absent`."""
        dn = account.external_id
        started = dt.datetime.now(dt.UTC)
        secrets = [self._secret] + ([probe_password] if probe_password else [])
        replies: list[_Reply] = []
        reasons: list[str] = []
        present = False
        probe: dict[str, Any] = {"attempted": False}

        def reads() -> None:
            replies.clear()
            replies.append(
                self._search(
                    dn,
                    "(objectClass=*)",
                    ["userPassword", "pwdAccountLockedTime"],
                    scope="BASE",
                )
            )
            replies.append(
                self._search(
                    self.group_base,
                    f"(&{self.group_filter}({self.member_attr}={escape_filter_chars(dn)}))",
                    ["1.1"],
                )
            )

        try:
            self._with_retries(reads)
        except ConnectorError as exc:
            return self._observation(
                account,
                ObservationStatus.INDETERMINATE,
                f"The directory could not be read: {self._safe(exc.message)}",
                replies,
                probe,
                started,
                secrets,
            )
        entry, groups = replies
        exists = entry.result != NO_SUCH_OBJECT and bool(entry.entries)
        if groups.entries:
            present = True
            reasons.append("still a member of " + ", ".join(e["dn"] for e in groups.entries))
        if exists:
            attrs = {k.lower(): v for e in entry.entries for k, v in e["attributes"].items()}
            if any(p == "set" for p in attrs.get("userpassword", [])) and not attrs.get(
                "pwdaccountlockedtime"
            ):
                present = True
                reasons.append("the entry has a usable password")
            else:
                reasons.append("the entry exists without a usable password")
        else:
            reasons.append("the entry does not exist")
        if probe_password:
            probe = self._bind_probe(dn, probe_password)
            if probe["bound"]:
                present = True
                reasons.append("a bind with the user's password succeeded")
            elif probe["result"] == INVALID_CREDENTIALS:
                reasons.append("a bind with the user's password was refused")
            else:
                return self._observation(
                    account,
                    ObservationStatus.INDETERMINATE,
                    "The bind probe did not give an answer: " + str(probe["error"]),
                    replies,
                    probe,
                    started,
                    secrets,
                )
        else:
            reasons.append("no bind probe (the user's password is not known)")
        status = ObservationStatus.PRESENT if present else ObservationStatus.ABSENT
        return self._observation(
            account, status, "; ".join(reasons) + ".", replies, probe, started, secrets
        )

    def _bind_probe(self, dn: str, password: str) -> dict[str, Any]:
        conn = ldap3.Connection(
            self._server(),
            user=dn,
            password=password,
            receive_timeout=max(1, math.ceil(self.timeout)),
            raise_exceptions=False,
            auto_bind=ldap3.AUTO_BIND_NONE,
        )
        self._track(conn)
        try:
            bound = bool(conn.bind())
            result = dict(conn.result or {})
            return {
                "attempted": True,
                "dn": dn,
                "message_id": self._last_message_id,
                "bound": bound,
                "result": int(result.get("result", -1)),
                "description": str(result.get("description", "")),
                "error": "",
            }
        except PROBE_ERRORS as exc:
            return {
                "attempted": True,
                "dn": dn,
                "bound": False,
                "result": -1,
                "error": f"{type(exc).__name__}: {exc}",
            }
        finally:
            self._drop(conn)

    def _observation(
        self,
        account: Account,
        status: ObservationStatus,
        detail: str,
        replies: Sequence[_Reply],
        probe: Mapping[str, Any],
        started: dt.datetime,
        secrets: Iterable[str],
    ) -> Observation:
        secrets = list(secrets)
        document = {
            "reads": [{"request": r.request, "response": r.summary()} for r in replies],
            "bind_probe": dict(probe),
        }
        raw = scrub(canonical_json(document), secrets)
        request_id = str(probe.get("message_id") or (replies[-1].message_id if replies else ""))
        return Observation(
            account=account,
            status=status,
            detail=scrub(detail, secrets).decode(errors="replace"),
            raw=raw,
            request_id=request_id,
            request_sha256=sha256_json(
                {
                    "reads": [r.request for r in replies],
                    "bind_probe": {"dn": account.external_id} if probe.get("attempted") else None,
                }
            ),
            response_sha256=sha256_hex(raw),
            started_at=started,
            ended_at=dt.datetime.now(dt.UTC),
        )
