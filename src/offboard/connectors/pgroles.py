"""PostgreSQL roles connector (psycopg 3): roles in a PostgreSQL server as a revocation target.

Config: `host`, `port` (5432), `database`, `user` (the admin role: superuser or CREATEROLE),
`role_prefix` and/or `roles` (the roles this connection may touch — discovery never leaves
them), `reassign_to` (optional: REASSIGN OWNED to this role first), `drop_owned`, `drop_role`
(optional, off), `connect_timeout` (seconds, 10), `retries` (network errors, 2).
Secret: the admin password.

- discover: login roles and roles in scope matching a prefix, an explicit name, a group
  role (its members) or a mail domain (roles named like an address); with their memberships,
  privileges (database, schemas, relations of the connected database), owned objects and
  open sessions. System roles (`pg_*`) and superusers other than in `roles` are skipped.
- plan: REASSIGN OWNED (if configured) → REVOKE memberships → REVOKE privileges → ALTER ROLE
  NOLOGIN → terminate its sessions → DROP OWNED / DROP ROLE (if configured). The admin role
  itself goes last.
- revoke: each operation reads the catalogs first; nothing left to do is `already_absent`.
- verify: catalogs (role gone, or `rolcanlogin` false, no membership, no privilege, no
  session) and a login as the role that must fail.

Requests are hashed as their SQL text with parameters (never the password); responses are
the connector's JSON of the rows and status; the request id is the admin session's backend
pid (for a login probe, none: the probe never gets a session when it succeeds in failing).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql

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

# SQLSTATEs: 28P01 invalid_password, 28000 invalid_authorization_specification (no such
# role, not permitted to log in, no pg_hba entry). Class 08 and 57P0x: connection lost.
AUTH_STATES = frozenset({"28P01", "28000"})
RETRYABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01"})

ROLE_FACTS = """
SELECT r.oid, r.rolname, r.rolcanlogin, r.rolsuper,
  coalesce((SELECT array_agg(g.rolname ORDER BY g.rolname) FROM pg_auth_members m
            JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '{}') AS member_of,
  (SELECT count(*) FROM pg_stat_activity a WHERE a.usesysid = r.oid) AS sessions
FROM pg_roles r WHERE r.rolname = %s
"""

# Privileges granted to the role (not as owner) in the connected database.
PRIVILEGES = """
SELECT 'database' AS kind, current_database()::text AS name
  FROM pg_database d, aclexplode(d.datacl) a
  WHERE d.datname = current_database() AND a.grantee = %(oid)s AND d.datdba <> %(oid)s
UNION
SELECT 'schema', quote_ident(n.nspname)
  FROM pg_namespace n, aclexplode(n.nspacl) a
  WHERE a.grantee = %(oid)s AND n.nspowner <> %(oid)s
UNION
SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
  WHERE a.grantee = %(oid)s AND c.relowner <> %(oid)s
ORDER BY 1, 2
"""

OWNED = """
SELECT count(*) FROM (
  SELECT 1 FROM pg_class WHERE relowner = %(oid)s AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL SELECT 1 FROM pg_namespace WHERE nspowner = %(oid)s
  UNION ALL SELECT 1 FROM pg_proc WHERE proowner = %(oid)s
  UNION ALL SELECT 1 FROM pg_type WHERE typowner = %(oid)s AND typrelid = 0 AND typcategory <> 'A'
  UNION ALL SELECT 1 FROM pg_database WHERE datdba = %(oid)s) o
"""


class _Reply:
    """One statement as recorded: its canonical text, parameters, rows and status."""

    def __init__(self, statement: str, params: Any, backend_pid: int) -> None:
        self.request = {"sql": statement, "params": params}
        self.backend_pid = backend_pid
        self.rows: list[list[Any]] = []
        self.status = ""
        self.started_at = dt.datetime.now(dt.UTC)
        self.ended_at = self.started_at

    def summary(self) -> dict[str, Any]:
        return {"backend_pid": self.backend_pid, "status": self.status, "rows": self.rows}


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


class PgRolesConnector(Connector):
    kind = "postgres"
    version = "1.0.0"
    label = "PostgreSQL roles"
    config_fields = (
        "host",
        "port",
        "database",
        "user",
        "role_prefix",
        "roles",
        "reassign_to",
        "drop_owned",
        "drop_role",
        "connect_timeout",
        "retries",
        "sslmode",
    )
    required_config = ("host", "database", "user")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        data = super().validate_config(config)
        if data.get("port") not in (None, ""):
            try:
                ok = 0 < int(data["port"]) < 65536
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ConnectorConfigError("port must be a number from 1 to 65535.")
        roles = data.get("roles")
        if roles not in (None, "") and not (
            isinstance(roles, list) and all(isinstance(r, str) and r for r in roles)
        ):
            raise ConnectorConfigError("roles must be a list of role names.")
        if not data.get("role_prefix") and not data.get("roles"):
            raise ConnectorConfigError(
                "Set role_prefix or roles: the roles this connection may revoke."
            )
        for name in ("drop_owned", "drop_role"):
            if name in data and not isinstance(data[name], bool):
                raise ConnectorConfigError(f"{name} must be true or false.")
        for name, low in (("connect_timeout", 1), ("retries", 0)):
            if data.get(name) not in (None, ""):
                try:
                    ok = int(data[name]) >= low
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise ConnectorConfigError(f"{name} must be a whole number ≥ {low}.")
        return data

    def __init__(self, config: Mapping[str, Any], secret: str) -> None:
        super().__init__(config, secret)
        c = self.config
        self.host = str(c["host"])
        self.port = int(c.get("port") or 5432)
        self.database = str(c["database"])
        self.user = str(c["user"])
        self.role_prefix = str(c.get("role_prefix") or "")
        self.roles = tuple(c.get("roles") or ())
        self.reassign_to = str(c.get("reassign_to") or "")
        self.drop_owned = bool(c.get("drop_owned"))
        self.drop_role = bool(c.get("drop_role"))
        self.connect_timeout = int(c.get("connect_timeout") or 10)
        retries = c.get("retries")
        self.retries = 2 if retries in (None, "") else int(str(retries))
        self._conn: psycopg.Connection[Any] | None = None

    def target(self) -> str:
        return f"postgresql://{self.host}:{self.port}/{self.database}"

    # --- connection and calls -----------------------------------------------------------

    def _connect(self, user: str, password: str | None) -> psycopg.Connection[Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": user,
            "connect_timeout": self.connect_timeout,
            "application_name": "offboard-connector",
            "autocommit": True,
        }
        if password:
            kwargs["password"] = password
        if self.config.get("sslmode"):
            kwargs["sslmode"] = str(self.config["sslmode"])
        return psycopg.connect(**kwargs)

    def _safe(self, text: str) -> str:
        return self.scrub(text).decode(errors="replace")

    def _error(self, exc: psycopg.Error) -> ConnectorError:
        state = getattr(exc, "sqlstate", None) or ""
        text = self._safe(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        lowered = text.lower()
        if (
            state in AUTH_STATES
            or "password authentication failed" in lowered
            or ("role" in lowered and "does not exist" in lowered and "connection" in lowered)
        ):
            return CredentialsRefused(
                f"PostgreSQL at {self.host}:{self.port} refused the login as {self.user}: {text}",
                status=None,
            )
        if (isinstance(exc, psycopg.OperationalError) and not state) or state.startswith("08"):
            return ConnectorError(
                f"PostgreSQL at {self.host}:{self.port} is not reachable: {text}", retryable=True
            )
        return ConnectorError(
            f"PostgreSQL error{f' {state}' if state else ''}: {text}",
            retryable=state in RETRYABLE_STATES,
        )

    def _admin(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = self._connect(self.user, self._secret)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _with_retries(self, work: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return work()
            except psycopg.Error as exc:
                error = self._error(exc)
            except ConnectorError as exc:
                error = exc
            if not error.retryable or attempt >= self.retries:
                raise error
            self.close()
            time.sleep(min(0.2 * 2**attempt, 5.0))
            attempt += 1

    def _run(self, statement: sql.Composable | str, params: Any = None) -> _Reply:
        conn = self._admin()
        text = statement if isinstance(statement, str) else statement.as_string(conn)
        reply = _Reply(" ".join(text.split()), _plain(params), conn.info.backend_pid)
        with conn.cursor() as cur:
            cur.execute(statement if isinstance(statement, sql.Composable) else text, params)  # type: ignore[arg-type]
            reply.status = str(cur.statusmessage or "")
            if cur.description is not None:
                reply.rows = [_plain(list(row)) for row in cur.fetchall()]
        reply.ended_at = dt.datetime.now(dt.UTC)
        return reply

    def _exchange(self, replies: Sequence[_Reply]) -> Exchange:
        last = replies[-1]
        body = self.scrub(canonical_json(last.summary()))
        return Exchange(
            request_sha256=sha256_json(last.request),
            response_sha256=sha256_hex(body),
            request_id=str(last.backend_pid),
            response=body,
            started_at=replies[0].started_at,
            ended_at=last.ended_at,
        )

    # --- the contract ------------------------------------------------------------------

    def check(self) -> CheckResult:
        def work() -> CheckResult:
            reply = self._run(
                "SELECT current_user, current_setting('server_version'), r.rolsuper, "
                "r.rolcreaterole FROM pg_roles r WHERE r.rolname = current_user"
            )
            user, version, superuser, createrole = reply.rows[0]
            can = (
                "superuser"
                if superuser
                else ("CREATEROLE" if createrole else "cannot manage roles")
            )
            in_scope = len(
                self._candidates(
                    Match(role_prefixes=(self.role_prefix,))
                    if self.role_prefix
                    else Match(ids=self.roles)
                )
            )
            return CheckResult(
                detail=f"PostgreSQL {version} at {self.host}:{self.port}/{self.database}: "
                f"logged in as {user} ({can}); {in_scope} role(s) in scope.",
                target=self.target(),
            )

        return self._with_retries(work)

    def _in_scope(self, name: str) -> bool:
        return (bool(self.role_prefix) and name.startswith(self.role_prefix)) or name in self.roles

    def _candidates(self, match: Match) -> list[str]:
        reply = self._run(
            """
            SELECT r.rolname,
              coalesce((SELECT array_agg(g.rolname) FROM pg_auth_members m
                        JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '{}')
            FROM pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY r.rolname
            """
        )
        names: list[str] = []
        for name, member_of in reply.rows:
            if not self._in_scope(name):
                continue
            if (
                any(name.startswith(p) for p in match.role_prefixes if p)
                or name in match.ids
                or any(g in match.groups for g in member_of)
                or match.matches_email(name)
            ):
                names.append(name)
        return names

    def discover(self, match: Match) -> list[Account]:
        if match.is_empty():
            return []

        def work() -> list[Account]:
            accounts = []
            for name in self._candidates(match):
                account = self._account(name)
                if account is not None:
                    accounts.append(account)
            return accounts

        return self._with_retries(work)

    def _facts(self, name: str) -> dict[str, Any] | None:
        reply = self._run(ROLE_FACTS, (name,))
        if not reply.rows:
            return None
        oid, rolname, canlogin, superuser, member_of, sessions = reply.rows[0]
        privileges = self._run(PRIVILEGES, {"oid": oid}).rows
        owned = self._run(OWNED, {"oid": oid}).rows[0][0]
        return {
            "oid": oid,
            "name": rolname,
            "can_login": bool(canlogin),
            "superuser": bool(superuser),
            "member_of": list(member_of),
            "privileges": [f"{kind}:{obj}" for kind, obj in privileges],
            "owned_objects": int(owned),
            "sessions": int(sessions),
        }

    def _account(self, name: str) -> Account | None:
        facts = self._facts(name)
        if facts is None:
            return None
        facts.pop("oid")
        return Account(
            external_id=name,
            login=name,
            display_name=name,
            kind=AccountKind.ROLE,
            details={**facts, "database": self.database},
        )

    def plan(self, accounts: Sequence[Account]) -> Plan:
        """Built from what discovery saw plus a fresh read of the catalogs (memberships or
        privileges granted since are included)."""
        roles = [a for a in accounts if a.kind in (AccountKind.ROLE, AccountKind.USER)]
        for a in roles:
            if not self._in_scope(a.external_id):
                raise ConnectorConfigError(
                    f"The role {a.external_id} is outside this connection's role_prefix/roles."
                )
        current = self._with_retries(
            lambda: {a.external_id: self._facts(a.external_id) for a in roles}
        )
        operations: list[Operation] = []
        for account in roles:
            name = account.external_id
            now = current.get(name) or {}
            own = name == self.user
            shift = Phase.OWN_ACCESS - Phase.TRANSFER_OWNERSHIP if own else 0

            def op(
                action: str,
                target: str,
                order: int,
                description: str,
                name: str = name,
                shift: int = shift,
                **details: Any,
            ) -> None:
                operations.append(
                    Operation(
                        action=action,
                        target_id=target,
                        description=description,
                        order=order + shift,
                        account_id=name,
                        details=details,
                    )
                )

            if self.reassign_to:
                op(
                    "reassign_owned",
                    name,
                    Phase.TRANSFER_OWNERSHIP,
                    f"REASSIGN OWNED BY {name} TO {self.reassign_to} (database {self.database})",
                    to=self.reassign_to,
                )
            groups = sorted(
                set(account.details.get("member_of") or ()) | set(now.get("member_of") or ())
            )
            for group in groups:
                op(
                    "revoke_membership",
                    group,
                    Phase.REMOVE_MEMBERSHIP,
                    f"REVOKE {group} FROM {name}",
                )
            privileges = sorted(
                set(account.details.get("privileges") or ()) | set(now.get("privileges") or ())
            )
            for privilege in privileges:
                kind, _, obj = privilege.partition(":")
                op(
                    "revoke_privileges",
                    privilege,
                    Phase.REMOVE_MEMBERSHIP,
                    f"REVOKE ALL ON {kind.upper()} {obj} FROM {name}",
                )
            op("disable_login", name, Phase.DISABLE, f"ALTER ROLE {name} NOLOGIN")
            op("terminate_sessions", name, Phase.DISABLE + 1, f"Terminate the sessions of {name}")
            if self.drop_owned:
                op(
                    "drop_owned",
                    name,
                    Phase.DELETE,
                    f"DROP OWNED BY {name} (database {self.database})",
                )
            if self.drop_role:
                op("drop_role", name, Phase.DELETE + 1, f"DROP ROLE {name}")
        return Plan.of(self.kind, operations, roles)

    def revoke(self, plan: Plan, idempotency_key: str) -> list[Outcome]:
        """PostgreSQL has no idempotency token: each operation reads the catalogs first and
        changes only what is still there, so a repeat is `already_absent`."""
        actions: dict[str, Callable[[Operation], Outcome]] = {
            "reassign_owned": self._reassign_owned,
            "revoke_membership": self._revoke_membership,
            "revoke_privileges": self._revoke_privileges,
            "disable_login": self._disable_login,
            "terminate_sessions": self._terminate_sessions,
            "drop_owned": self._drop_owned,
            "drop_role": self._drop_role,
        }
        outcomes: list[Outcome] = []
        for op in plan.operations:
            started = dt.datetime.now(dt.UTC)
            action = actions.get(op.action)
            if action is None:
                outcomes.append(
                    Outcome.from_exchange(
                        op,
                        OutcomeStatus.NEEDS_MANUAL,
                        f"Unknown action {op.action!r}.",
                        None,
                        started_at=started,
                    )
                )
                continue
            try:
                outcomes.append(self._with_retries(lambda action=action, op=op: action(op)))  # type: ignore[misc]
            except ConnectorError as exc:
                detail = self._safe(exc.message)
                if exc.retryable:
                    detail += " Not confirmed: retry the revoke (it re-reads first) and verify."
                pid = (
                    self._conn.info.backend_pid
                    if self._conn is not None and not self._conn.closed
                    else 0
                )
                outcomes.append(
                    Outcome(
                        operation=op,
                        status=OutcomeStatus.FAILED,
                        detail=detail,
                        request_id=str(pid or ""),
                        started_at=started,
                    )
                )
        return outcomes

    def _outcome(
        self, op: Operation, status: OutcomeStatus, detail: str, replies: Sequence[_Reply]
    ) -> Outcome:
        return Outcome.from_exchange(
            op, status, detail, self._exchange(replies), started_at=replies[0].started_at
        )

    def _role_gone(self, op: Operation, name: str) -> tuple[_Reply, bool]:
        reply = self._run("SELECT oid FROM pg_roles WHERE rolname = %s", (name,))
        return reply, not reply.rows

    def _reassign_owned(self, op: Operation) -> Outcome:
        name = op.account_id
        read, gone = self._role_gone(op, name)
        if gone:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"The role {name} does not exist.", [read]
            )
        count = self._run(OWNED, {"oid": read.rows[0][0]})
        if not count.rows[0][0]:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"{name} owns nothing here.", [read, count]
            )
        to = str(op.details.get("to") or self.reassign_to)
        done = self._run(
            sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(name), sql.Identifier(to))
        )
        return self._outcome(
            op,
            OutcomeStatus.REVOKED,
            f"Reassigned {count.rows[0][0]} object(s) owned by {name} to {to}.",
            [read, done],
        )

    def _revoke_membership(self, op: Operation) -> Outcome:
        group, name = op.target_id, op.account_id
        query = (
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = %s AND r.rolname = %s"
        )
        read = self._run(query, (group, name))
        if not read.rows[0][0]:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"{name} is not a member of {group}.", [read]
            )
        done = self._run(
            sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(name))
        )
        after = self._run(query, (group, name))
        if after.rows[0][0]:
            return self._outcome(
                op,
                OutcomeStatus.NEEDS_MANUAL,
                f"{name} is still a member of {group} (granted by another role: REVOKE … GRANTED BY it).",
                [read, done, after],
            )
        return self._outcome(
            op, OutcomeStatus.REVOKED, f"Revoked {group} from {name}.", [read, done]
        )

    def _revoke_privileges(self, op: Operation) -> Outcome:
        name = op.account_id
        kind, _, obj = op.target_id.partition(":")
        read, gone = self._role_gone(op, name)
        if gone:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"The role {name} does not exist.", [read]
            )
        now = self._run(PRIVILEGES, {"oid": read.rows[0][0]})
        if [kind, obj] not in now.rows:
            return self._outcome(
                op,
                OutcomeStatus.ALREADY_ABSENT,
                f"{name} holds no privilege on {kind} {obj}.",
                [read, now],
            )
        keyword = {
            "database": "DATABASE",
            "schema": "SCHEMA",
            "table": "TABLE",
            "sequence": "SEQUENCE",
        }.get(kind)
        if keyword is None:
            return self._outcome(
                op, OutcomeStatus.NEEDS_MANUAL, f"Unknown object kind {kind!r}.", [read, now]
            )
        # `obj` comes from quote_ident in the catalog query above and was just matched there.
        target = sql.Identifier(obj) if kind == "database" else sql.SQL(obj)
        done = self._run(
            sql.SQL("REVOKE ALL ON {} {} FROM {}").format(
                sql.SQL(keyword), target, sql.Identifier(name)
            )
        )
        return self._outcome(
            op, OutcomeStatus.REVOKED, f"Revoked all on {kind} {obj} from {name}.", [read, done]
        )

    def _disable_login(self, op: Operation) -> Outcome:
        name = op.account_id
        read = self._run("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (name,))
        if not read.rows:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"The role {name} does not exist.", [read]
            )
        if not read.rows[0][0]:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"{name} already cannot log in.", [read]
            )
        done = self._run(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)))
        return self._outcome(
            op, OutcomeStatus.REVOKED, f"{name} can no longer log in (NOLOGIN).", [read, done]
        )

    def _terminate_sessions(self, op: Operation) -> Outcome:
        name = op.account_id
        done = self._run(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = %s AND pid <> pg_backend_pid() ORDER BY pid",
            (name,),
        )
        if not done.rows:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"{name} has no open session.", [done]
            )
        failed = [pid for pid, ok in done.rows if not ok]
        if failed:
            return self._outcome(
                op,
                OutcomeStatus.FAILED,
                f"Could not terminate session(s) {failed} of {name}.",
                [done],
            )
        pids = ", ".join(str(pid) for pid, _ in done.rows)
        return self._outcome(
            op,
            OutcomeStatus.REVOKED,
            f"Terminated {len(done.rows)} session(s) of {name} (pid {pids}).",
            [done],
        )

    def _drop_owned(self, op: Operation) -> Outcome:
        name = op.account_id
        read, gone = self._role_gone(op, name)
        if gone:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"The role {name} does not exist.", [read]
            )
        oid = read.rows[0][0]
        owned = self._run(OWNED, {"oid": oid})
        privileges = self._run(PRIVILEGES, {"oid": oid})
        if not owned.rows[0][0] and not privileges.rows:
            return self._outcome(
                op,
                OutcomeStatus.ALREADY_ABSENT,
                f"{name} owns and holds nothing here.",
                [read, owned, privileges],
            )
        done = self._run(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        return self._outcome(
            op, OutcomeStatus.REVOKED, f"Dropped what {name} owned and held here.", [read, done]
        )

    def _drop_role(self, op: Operation) -> Outcome:
        name = op.account_id
        read, gone = self._role_gone(op, name)
        if gone:
            return self._outcome(
                op, OutcomeStatus.ALREADY_ABSENT, f"The role {name} does not exist.", [read]
            )
        try:
            done = self._run(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
        except psycopg.errors.DependentObjectsStillExist as exc:
            return Outcome.from_exchange(
                op,
                OutcomeStatus.NEEDS_MANUAL,
                self._safe(
                    f"{name} still owns or holds objects (other databases?): {str(exc).splitlines()[0]}"
                ),
                self._exchange([read]),
            )
        return self._outcome(op, OutcomeStatus.REVOKED, f"Dropped the role {name}.", [read, done])

    def verify(self, account: Account, *, probe_password: str | None = None) -> Observation:
        """The catalogs (role gone, or NOLOGIN with no membership, privilege or session
        left) and a login as the role that must fail. Under `trust` or with the role's
        password (`probe_password`) the refusal is conclusive; "password authentication
        failed" only shows that the probe was not let in."""
        name = account.external_id
        started = dt.datetime.now(dt.UTC)
        secrets = [self._secret] + ([probe_password] if probe_password else [])
        reads: list[_Reply] = []

        def read() -> dict[str, Any] | None:
            reads.clear()
            facts = self._run(ROLE_FACTS, (name,))
            reads.append(facts)
            if not facts.rows:
                return None
            oid = facts.rows[0][0]
            reads.append(self._run(PRIVILEGES, {"oid": oid}))
            groups = [str(g) for g in account.details.get("member_of") or ()]
            reads.append(
                self._run(
                    "SELECT g, pg_has_role(%s, g, 'MEMBER') FROM unnest(%s::text[]) g "
                    "WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g)",
                    (name, groups),
                )
            )
            return {"facts": facts.rows[0], "privileges": reads[1].rows, "has_role": reads[2].rows}

        try:
            state = self._with_retries(read)
        except ConnectorError as exc:
            return self._observation(
                account,
                ObservationStatus.INDETERMINATE,
                f"The catalogs could not be read: {exc.message}",
                reads,
                {"attempted": False},
                started,
                secrets,
            )
        present: list[str] = []
        absent: list[str] = []
        if state is None:
            absent.append(f"the role {name} does not exist")
        else:
            _oid, _n, canlogin, _su, member_of, sessions = state["facts"]
            (present if canlogin else absent).append(
                "rolcanlogin is " + ("true" if canlogin else "false")
            )
            if member_of:
                present.append("still a member of " + ", ".join(member_of))
            held = [g for g, yes in state["has_role"] if yes]
            if held:
                present.append("pg_has_role(MEMBER) is true for " + ", ".join(held))
            if state["privileges"]:
                present.append(
                    "still holds " + ", ".join(f"{k} {o}" for k, o in state["privileges"])
                )
            if sessions:
                present.append(f"{sessions} session(s) still open")
            if not present:
                absent.append("no membership, privilege or session left")
        probe = self._login_probe(name, probe_password)
        if probe["logged_in"]:
            present.append("a login as the role succeeded")
        elif probe["conclusive"]:
            absent.append(f"a login as the role was refused ({probe['error']})")
        elif probe["reachable"]:
            absent.append(f"a login as the role failed ({probe['error']}; not conclusive alone)")
        else:
            return self._observation(
                account,
                ObservationStatus.INDETERMINATE,
                f"The login probe did not reach the server: {probe['error']}",
                reads,
                probe,
                started,
                secrets,
            )
        status = ObservationStatus.PRESENT if present else ObservationStatus.ABSENT
        return self._observation(
            account, status, "; ".join(present + absent) + ".", reads, probe, started, secrets
        )

    def _login_probe(self, name: str, password: str | None) -> dict[str, Any]:
        try:
            conn = self._connect(name, password)
        except psycopg.OperationalError as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            text = text.rpartition(": FATAL:  ")[2] if "FATAL:" in text else text
            lowered = text.lower()
            conclusive = "not permitted to log in" in lowered or "does not exist" in lowered
            reachable = (
                conclusive
                or "authentication failed" in lowered
                or "no pg_hba.conf entry" in lowered
            )
            return {
                "attempted": True,
                "role": name,
                "logged_in": False,
                "conclusive": conclusive,
                "reachable": reachable,
                "error": text,
            }
        try:
            pid = conn.info.backend_pid
        finally:
            conn.close()
        return {
            "attempted": True,
            "role": name,
            "logged_in": True,
            "conclusive": True,
            "reachable": True,
            "backend_pid": pid,
            "error": "",
        }

    def _observation(
        self,
        account: Account,
        status: ObservationStatus,
        detail: str,
        reads: Sequence[_Reply],
        probe: Mapping[str, Any],
        started: dt.datetime,
        secrets: Sequence[str],
    ) -> Observation:
        document = {
            "reads": [{"request": r.request, "response": r.summary()} for r in reads],
            "login_probe": dict(probe),
        }
        raw = scrub(canonical_json(document), secrets)
        return Observation(
            account=account,
            status=status,
            detail=scrub(detail, secrets).decode(errors="replace"),
            raw=raw,
            request_id=str(reads[-1].backend_pid) if reads else "",
            request_sha256=sha256_json(
                {"reads": [r.request for r in reads], "login_probe": {"role": account.external_id}}
            ),
            response_sha256=sha256_hex(raw),
            started_at=started,
            ended_at=dt.datetime.now(dt.UTC),
        )
