"""The PostgreSQL roles connector against the local PostgreSQL (127.0.0.1:5432, user postgres;
../shared/design/TESTING.md "PostgreSQL roles as a revocation target"). Each test makes a
scratch database and roles under a random prefix and drops them after: check, discover,
plan, revoke (REVOKE, NOLOGIN, sessions terminated, optional REASSIGN/DROP) and verify — in
the catalogs and by a login that must fail — with the server unreachable, lost mid-revoke,
repeated revokes, and the admin password never recorded."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from offboard.connectors import registry
from offboard.connectors.base import (
    ConnectorConfigError,
    ConnectorError,
    CredentialsRefused,
    Match,
    ObservationStatus,
    Outcome,
    OutcomeStatus,
    Phase,
    sha256_hex,
)
from offboard.connectors.pgroles import PgRolesConnector
from tests.connectors.slapd import free_port

pytestmark = pytest.mark.offline  # no Offboard database: runs once, in the SQLite pass

HOST, PORT = "127.0.0.1", 5432


def server() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            host=HOST,
            port=PORT,
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not running at {HOST}:{PORT} ({exc})"
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)


class Scratch:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.db = prefix + "db"

    def role(self, name: str) -> str:
        return self.prefix + name

    def connect(self, role: str = "postgres", dbname: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=HOST,
            port=PORT,
            user=role,
            dbname=dbname or self.db,
            autocommit=True,
            connect_timeout=3,
        )


@pytest.fixture
def scratch() -> Iterator[Scratch]:
    admin = server()
    s = Scratch("ofbt_" + secrets.token_hex(4) + "_")
    ident = sql.Identifier
    names = ["alice", "bob", "carol", "staff", "readers", "heir"]
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(ident(s.db)))
        for name in names:
            login = sql.SQL("LOGIN" if name in ("alice", "bob", "carol") else "NOLOGIN")
            admin.execute(sql.SQL("CREATE ROLE {} {}").format(ident(s.role(name)), login))
        for member, group in [
            ("alice", "staff"),
            ("alice", "readers"),
            ("bob", "readers"),
            ("carol", "staff"),
        ]:
            admin.execute(
                sql.SQL("GRANT {} TO {}").format(ident(s.role(group)), ident(s.role(member)))
            )
        admin.execute(
            sql.SQL("GRANT CONNECT, TEMP ON DATABASE {} TO {}").format(
                ident(s.db), ident(s.role("alice"))
            )
        )
        with s.connect() as db:
            db.execute("CREATE SCHEMA app")
            db.execute("CREATE TABLE app.orders (id int)")
            db.execute("CREATE SEQUENCE app.order_ids")
            for role in ("alice", "bob"):
                db.execute(sql.SQL("GRANT USAGE ON SCHEMA app TO {}").format(ident(s.role(role))))
            db.execute(
                sql.SQL("GRANT SELECT, INSERT ON app.orders TO {}").format(ident(s.role("alice")))
            )
            db.execute(sql.SQL("GRANT USAGE ON app.order_ids TO {}").format(ident(s.role("alice"))))
            db.execute(sql.SQL("GRANT CREATE ON SCHEMA app TO {}").format(ident(s.role("alice"))))
        with s.connect(s.role("alice")) as db:
            db.execute("CREATE TABLE app.alice_notes (note text)")  # owned by alice
        yield s
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(s.db)))
        for name in names:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident(s.role(name))))
        admin.close()


@pytest.fixture
def secret() -> str:
    return "Pg-Admin-Secret-" + secrets.token_hex(8)


def connector(s: Scratch, secret: str, **config: Any) -> PgRolesConnector:
    base = {
        "host": HOST,
        "port": PORT,
        "database": s.db,
        "user": "postgres",
        "role_prefix": s.prefix,
        "connect_timeout": 2,
        "retries": 1,
    }
    return PgRolesConnector({**base, **config}, secret)


def can_login(s: Scratch, name: str) -> bool:
    try:
        s.connect(s.role(name)).close()
    except psycopg.OperationalError:
        return False
    return True


def assert_secret_free(secret: str, *things: Any) -> None:
    for thing in things:
        if isinstance(thing, Outcome):
            assert secret not in repr(thing.as_dict()) and secret.encode() not in thing.response
        elif isinstance(thing, BaseException):
            assert secret not in str(thing) and secret not in repr(thing.args)
        else:
            assert secret not in repr(thing.as_dict()) and secret.encode() not in thing.raw


def test_registry_knows_the_postgres_kind() -> None:
    assert registry.get("postgres") is PgRolesConnector


def test_config_is_validated() -> None:
    good = {"host": "h", "database": "d", "user": "u", "role_prefix": "x_"}
    PgRolesConnector.validate_config(good)
    with pytest.raises(ConnectorConfigError, match="role_prefix or roles"):
        PgRolesConnector.validate_config({"host": "h", "database": "d", "user": "u"})
    with pytest.raises(ConnectorConfigError, match="roles must be a list"):
        PgRolesConnector.validate_config({**good, "roles": "alice"})
    with pytest.raises(ConnectorConfigError, match="drop_role"):
        PgRolesConnector.validate_config({**good, "drop_role": "yes"})
    with pytest.raises(ConnectorConfigError, match="port"):
        PgRolesConnector.validate_config({**good, "port": 70000})


def test_check(scratch: Scratch, secret: str) -> None:
    result = connector(scratch, secret).check()
    assert "logged in as postgres (superuser)" in result.detail
    assert "6 role(s) in scope" in result.detail
    assert result.target == f"postgresql://{HOST}:{PORT}/{scratch.db}"


def test_check_refused_login_is_a_credentials_error(scratch: Scratch, secret: str) -> None:
    # The local server trusts loopback (no password is checked), so the refusal is of a
    # login role that does not exist — the same error class a wrong password gets.
    c = PgRolesConnector(
        {**connector(scratch, secret).config, "user": scratch.role("ghost")}, secret
    )
    with pytest.raises(CredentialsRefused) as caught:
        c.check()
    assert "refused the login" in caught.value.message and not caught.value.retryable
    assert_secret_free(secret, caught.value)


def test_check_with_the_server_down_is_a_clear_retryable_error(
    scratch: Scratch, secret: str
) -> None:
    port = free_port()
    with pytest.raises(ConnectorError) as caught:
        connector(scratch, secret, port=port).check()
    assert not isinstance(caught.value, CredentialsRefused) and caught.value.retryable
    assert f"{HOST}:{port} is not reachable" in caught.value.message
    assert_secret_free(secret, caught.value)


def test_discover(scratch: Scratch, secret: str) -> None:
    c = connector(scratch, secret)
    r = scratch.role
    [alice] = c.discover(Match(ids=(r("alice"),)))
    assert alice.details["member_of"] == [r("readers"), r("staff")]
    assert alice.details["can_login"] and alice.details["owned_objects"] == 1
    assert alice.details["privileges"] == [
        f"database:{scratch.db}",
        "schema:app",
        "sequence:app.order_ids",
        "table:app.orders",
    ]
    assert [a.login for a in c.discover(Match(groups=(r("staff"),)))] == [r("alice"), r("carol")]
    assert len(c.discover(Match(role_prefixes=(scratch.prefix,)))) == 6
    # Outside the connection's scope: never discovered, even when asked for by name.
    assert c.discover(Match(ids=("postgres",))) == []
    assert c.discover(Match()) == []


def test_revoke_then_verify_absent_in_the_catalogs_and_by_a_failing_login(
    scratch: Scratch, secret: str
) -> None:
    c = connector(scratch, secret)
    [alice] = c.discover(Match(ids=(scratch.role("alice"),)))
    session = scratch.connect(scratch.role("alice"))
    before = c.verify(alice)
    assert before.status == ObservationStatus.PRESENT
    assert "a login as the role succeeded" in before.detail and "1 session(s)" in before.detail

    plan = c.plan([alice])
    assert [op.action for op in plan.operations] == [
        "revoke_membership",
        "revoke_membership",
        "revoke_privileges",
        "revoke_privileges",
        "revoke_privileges",
        "revoke_privileges",
        "disable_login",
        "terminate_sessions",
    ]
    assert plan.operations[-2].order == Phase.DISABLE
    outcomes = c.revoke(plan, "case-7:alice")
    assert [o.status for o in outcomes] == [OutcomeStatus.REVOKED] * len(plan.operations), [
        o.detail for o in outcomes
    ]
    for o in outcomes:
        assert o.request_id.isdigit()  # the admin session's backend pid
        assert o.request_sha256 and o.response_sha256 == sha256_hex(o.response)
    assert f"pid {session.info.backend_pid}" in outcomes[-1].detail
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    assert not can_login(scratch, "alice") and can_login(scratch, "bob")

    after = c.verify(alice)
    assert after.status == ObservationStatus.ABSENT, after.detail
    assert "rolcanlogin is false" in after.detail
    assert "not permitted to log in" in after.detail
    assert after.response_sha256 == sha256_hex(after.raw)
    assert b'"logged_in":false' in after.raw
    assert_secret_free(secret, before, after, *outcomes)


def test_a_repeated_revoke_is_already_absent(scratch: Scratch, secret: str) -> None:
    c = connector(scratch, secret)
    plan = c.plan(c.discover(Match(ids=(scratch.role("alice"), scratch.role("bob")))))
    first = c.revoke(plan, "k")
    assert OutcomeStatus.FAILED not in {o.status for o in first}
    again = c.revoke(plan, "k")
    assert [o.status for o in again] == [OutcomeStatus.ALREADY_ABSENT] * len(plan.operations)
    assert all(o.response_sha256 for o in again)


def test_reassign_and_drop_role(scratch: Scratch, secret: str) -> None:
    c = connector(
        scratch, secret, reassign_to=scratch.role("heir"), drop_owned=True, drop_role=True
    )
    [alice] = c.discover(Match(ids=(scratch.role("alice"),)))
    plan = c.plan([alice])
    assert plan.operations[0].action == "reassign_owned"
    assert [op.action for op in plan.operations[-2:]] == ["drop_owned", "drop_role"]
    outcomes = c.revoke(plan, "k")
    statuses = {o.operation.action: o.status for o in outcomes}
    assert statuses["reassign_owned"] == OutcomeStatus.REVOKED
    assert statuses["drop_role"] == OutcomeStatus.REVOKED
    assert statuses["terminate_sessions"] == OutcomeStatus.ALREADY_ABSENT
    with scratch.connect() as db:
        owner = db.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'alice_notes'"
        ).fetchone()
    assert owner == (scratch.role("heir"),)  # ownership transferred before anything is dropped
    observed = c.verify(alice)
    assert observed.status == ObservationStatus.ABSENT
    assert "does not exist" in observed.detail
    assert {o.status for o in c.revoke(plan, "k")} == {OutcomeStatus.ALREADY_ABSENT}


def test_server_lost_mid_revoke_is_failed_not_revoked_then_resumes(
    scratch: Scratch, secret: str
) -> None:
    c = connector(scratch, secret)
    [alice] = c.discover(Match(ids=(scratch.role("alice"),)))
    plan = c.plan([alice])
    revoke_membership = c._revoke_membership
    calls = 0

    def revoke_then_lose_the_server(op: Any) -> Any:
        nonlocal calls
        calls += 1
        outcome = revoke_membership(op)
        if calls == 1:  # after the first change: the server "goes away"
            c.port = free_port()
            assert c._conn is not None
            c._conn.close()
        return outcome

    c._revoke_membership = revoke_then_lose_the_server  # type: ignore[method-assign]
    outcomes = c.revoke(plan, "k")
    assert outcomes[0].status == OutcomeStatus.REVOKED
    assert [o.status for o in outcomes[1:]] == [OutcomeStatus.FAILED] * (len(outcomes) - 1)
    assert "not reachable" in outcomes[1].detail and "retry" in outcomes[1].detail
    down = c.verify(alice)
    assert down.status == ObservationStatus.INDETERMINATE
    assert_secret_free(secret, *outcomes, down)

    c.port = PORT
    assert can_login(scratch, "alice")  # NOLOGIN never happened
    resumed = c.revoke(plan, "k")
    assert resumed[0].status == OutcomeStatus.ALREADY_ABSENT
    assert OutcomeStatus.FAILED not in {o.status for o in resumed}
    assert c.verify(alice).status == ObservationStatus.ABSENT


def test_verify_sees_a_membership_granted_back(scratch: Scratch, secret: str) -> None:
    c = connector(scratch, secret)
    [alice] = c.discover(Match(ids=(scratch.role("alice"),)))
    c.revoke(c.plan([alice]), "k")
    assert c.verify(alice).status == ObservationStatus.ABSENT
    with scratch.connect() as db:
        db.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(scratch.role("staff")), sql.Identifier(scratch.role("alice"))
            )
        )
    observed = c.verify(alice)
    assert observed.status == ObservationStatus.PRESENT
    assert f"pg_has_role(MEMBER) is true for {scratch.role('staff')}" in observed.detail


def test_roles_outside_the_scope_are_refused_at_plan(scratch: Scratch, secret: str) -> None:
    from offboard.connectors.base import Account, AccountKind

    c = connector(scratch, secret)
    with pytest.raises(ConnectorConfigError, match="outside"):
        c.plan([Account(external_id="postgres", login="postgres", kind=AccountKind.ROLE)])
