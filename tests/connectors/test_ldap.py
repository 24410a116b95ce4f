"""The LDAP connector against a real OpenLDAP `slapd` on loopback (tests/connectors/slapd.py):
check, discover, plan, revoke and verify — by search and by a bind that must fail — with the
server down, killed mid-revoke, repeated revokes, and the bind password never recorded."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import ldap3
import pytest

from offboard.connectors import registry
from offboard.connectors.base import (
    Account,
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
from offboard.connectors.ldap import UNUSABLE_PASSWORD, LdapConnector
from tests.connectors.slapd import GROUPS, PEOPLE, ROOT_DN, SUFFIX, LocalSlapd, require

pytestmark = pytest.mark.offline  # no Offboard database: runs once, in the SQLite pass

USERS = {
    # uid: (mail, password)
    "alice": ("alice@client.example", "alice-pw-Q1"),
    "bob": ("bob@client.example", "bob-pw-Q2"),
    "carol": ("carol@ours.example", "carol-pw-Q3"),
    "dan": ("dan@elsewhere.example", "dan-pw-Q4"),
}
GROUP_MEMBERS = {
    "engineering": ["alice", "bob", "carol"],
    "admins": ["alice", "carol"],
    "finance": ["dan"],
}


def dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def gdn(name: str) -> str:
    return f"cn={name},{GROUPS}"


@pytest.fixture
def secret() -> str:
    return "Bind-Secret-" + secrets.token_hex(8)


@pytest.fixture
def slapd(secret: str) -> Iterator[LocalSlapd]:
    server = LocalSlapd(require("slapd"), secret)
    try:
        server.start_again()
        seed(server, secret)
        yield server
    finally:
        server.remove()


def admin(server: LocalSlapd, secret: str) -> ldap3.Connection:
    conn = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE),
        user=ROOT_DN,
        password=secret,
        raise_exceptions=True,
    )
    conn.bind()
    return conn


def seed(server: LocalSlapd, secret: str) -> None:
    conn = admin(server, secret)
    conn.add(SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
    conn.add(PEOPLE, ["organizationalUnit"], {"ou": "people"})
    conn.add(GROUPS, ["organizationalUnit"], {"ou": "groups"})
    for uid, (mail, password) in USERS.items():
        conn.add(
            dn(uid),
            ["inetOrgPerson"],
            {"uid": uid, "cn": uid.title(), "sn": uid, "mail": mail, "userPassword": password},
        )
    for name, members in GROUP_MEMBERS.items():
        conn.add(gdn(name), ["groupOfNames"], {"cn": name, "member": [dn(m) for m in members]})
    conn.unbind()


def can_bind(server: LocalSlapd, uid: str) -> bool:
    conn = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE),
        user=dn(uid),
        password=USERS[uid][1],
    )
    try:
        return bool(conn.bind())
    finally:
        conn.unbind()


def connector(server: LocalSlapd, secret: str, **config: Any) -> LdapConnector:
    base = {
        "host": "127.0.0.1",
        "port": server.port,
        "base_dn": SUFFIX,
        "bind_dn": ROOT_DN,
        "user_base": PEOPLE,
        "group_base": GROUPS,
        "timeout": 2,
        "retries": 1,
    }
    return LdapConnector({**base, **config}, secret)


def assert_secret_free(secret: str, *things: Any) -> None:
    """No string, bytes or dict value reachable from `things` holds the secret."""
    for thing in things:
        if isinstance(thing, Outcome):
            assert secret not in repr(thing.as_dict()) and secret.encode() not in thing.response
        elif isinstance(thing, bytes):
            assert secret.encode() not in thing
        elif isinstance(thing, BaseException):
            assert secret not in str(thing) and secret not in repr(thing.args)
        elif hasattr(thing, "as_dict"):
            assert secret not in repr(thing.as_dict())
            assert secret.encode() not in getattr(thing, "raw", b"")
        else:
            assert secret not in repr(thing)


def test_registry_knows_the_ldap_kind() -> None:
    assert registry.get("ldap") is LdapConnector


def test_config_is_validated() -> None:
    good = {"host": "h", "base_dn": "dc=x", "bind_dn": "cn=a,dc=x"}
    LdapConnector.validate_config(good)
    with pytest.raises(ConnectorConfigError, match="bind_dn"):
        LdapConnector.validate_config({"host": "h", "base_dn": "dc=x"})
    with pytest.raises(ConnectorConfigError, match="port"):
        LdapConnector.validate_config({**good, "port": "nope"})
    with pytest.raises(ConnectorConfigError, match="disable_mode"):
        LdapConnector.validate_config({**good, "disable_mode": "wipe"})
    with pytest.raises(ConnectorConfigError, match="user_filter"):
        LdapConnector.validate_config({**good, "user_filter": "uid=*"})
    with pytest.raises(ConnectorConfigError, match="Unknown"):
        LdapConnector.validate_config({**good, "password": "x"})


def test_check_binds_and_counts(slapd: LocalSlapd, secret: str) -> None:
    result = connector(slapd, secret).check()
    assert "bound as cn=admin" in result.detail and "4 user(s)" in result.detail
    assert result.target == f"ldap://127.0.0.1:{slapd.port}/{SUFFIX}"
    assert_secret_free(secret, result)


def test_check_with_a_wrong_password_is_a_credentials_error(slapd: LocalSlapd, secret: str) -> None:
    wrong = secret + "-wrong"
    with pytest.raises(CredentialsRefused) as caught:
        connector(slapd, secret=wrong).check()
    assert "refused the bind" in caught.value.message and caught.value.status == 49
    assert not caught.value.retryable
    assert_secret_free(wrong, caught.value)
    assert_secret_free(secret, caught.value)


def test_check_with_the_server_down_is_a_clear_retryable_error(
    slapd: LocalSlapd, secret: str
) -> None:
    slapd.stop()
    with pytest.raises(ConnectorError) as caught:
        connector(slapd, secret).check()
    assert not isinstance(caught.value, CredentialsRefused)
    assert caught.value.retryable
    assert f"127.0.0.1:{slapd.port} is not reachable" in caught.value.message
    assert_secret_free(secret, caught.value)


def test_discover_by_domain_group_and_ids(slapd: LocalSlapd, secret: str) -> None:
    c = connector(slapd, secret)
    by_domain = c.discover(Match(email_domains=("CLIENT.example",)))
    assert [a.login for a in by_domain] == ["alice", "bob"]
    alice = by_domain[0]
    assert alice.external_id == dn("alice") and alice.details["mail"] == "alice@client.example"
    assert alice.details["groups"] == [gdn("admins"), gdn("engineering")]
    assert [a.login for a in c.discover(Match(groups=("finance",)))] == ["dan"]
    assert [a.login for a in c.discover(Match(groups=(gdn("admins"),)))] == ["alice", "carol"]
    explicit = c.discover(Match(ids=("carol", dn("dan"), "bob@client.example")))
    assert [a.login for a in explicit] == ["bob", "carol", "dan"]
    assert [a.login for a in c.discover(Match(role_prefixes=("da",)))] == ["dan"]
    assert c.discover(Match()) == []
    assert c.discover(Match(ids=("nobody",), groups=("no-such-group",))) == []
    c.close()


def test_plan_removes_memberships_before_disabling(slapd: LocalSlapd, secret: str) -> None:
    c = connector(slapd, secret)
    [alice] = c.discover(Match(ids=("alice",)))
    # A membership added after discovery is planned too (plan reads the groups again).
    admin(slapd, secret).modify(gdn("finance"), {"member": [(ldap3.MODIFY_ADD, [dn("alice")])]})
    plan = c.plan([alice])
    assert [(op.action, op.target_id, op.order) for op in plan.operations] == [
        ("remove_member", gdn("admins"), Phase.REMOVE_MEMBERSHIP),
        ("remove_member", gdn("engineering"), Phase.REMOVE_MEMBERSHIP),
        ("remove_member", gdn("finance"), Phase.REMOVE_MEMBERSHIP),
        ("disable", dn("alice"), Phase.DISABLE),
    ]
    deleting = connector(slapd, secret, disable_mode="delete").plan([alice])
    assert deleting.operations[-1].action == "delete"
    assert deleting.operations[-1].order == Phase.DELETE


def test_revoke_then_verify_absent_by_search_and_by_a_failing_bind(
    slapd: LocalSlapd, secret: str
) -> None:
    c = connector(slapd, secret)
    [alice] = c.discover(Match(ids=("alice",)))
    before = c.verify(alice, probe_password=USERS["alice"][1])
    assert before.status == ObservationStatus.PRESENT
    assert "a bind with the user's password succeeded" in before.detail

    plan = c.plan([alice])
    outcomes = c.revoke(plan, "case-1:alice")
    assert [o.status for o in outcomes] == [OutcomeStatus.REVOKED] * 3
    for o in outcomes:
        assert o.request_id.isdigit() and int(o.request_id) > 0  # the LDAP message id
        assert o.request_sha256 and o.response_sha256 == sha256_hex(o.response)
        assert b'"result":0' in o.response
    assert b"alice-pw" not in b"".join(o.response for o in outcomes)

    # What the server says, read independently of the connector.
    assert not can_bind(slapd, "alice") and can_bind(slapd, "bob")
    conn = admin(slapd, secret)
    conn.search(GROUPS, f"(member={dn('alice')})", attributes=["cn"])
    assert conn.entries == []
    conn.search(
        dn("alice"), "(objectClass=*)", search_scope=ldap3.BASE, attributes=["userPassword"]
    )
    assert conn.entries[0].userPassword.value in (UNUSABLE_PASSWORD, UNUSABLE_PASSWORD.encode())

    after = c.verify(alice, probe_password=USERS["alice"][1])
    assert after.status == ObservationStatus.ABSENT, after.detail
    assert "a bind with the user's password was refused" in after.detail
    assert after.response_sha256 == sha256_hex(after.raw) and after.request_id.isdigit()
    assert b"alice-pw" not in after.raw and b'"bound":false' in after.raw
    without_probe = c.verify(alice)
    assert without_probe.status == ObservationStatus.ABSENT
    assert "no bind probe" in without_probe.detail
    assert_secret_free(secret, before, after, without_probe, *outcomes)


def test_a_repeated_revoke_is_already_absent(slapd: LocalSlapd, secret: str) -> None:
    c = connector(slapd, secret)
    plan = c.plan(c.discover(Match(email_domains=("client.example",))))
    first = c.revoke(plan, "k")
    assert {o.status for o in first} == {OutcomeStatus.REVOKED}
    again = c.revoke(plan, "k")
    assert [o.status for o in again] == [OutcomeStatus.ALREADY_ABSENT] * len(plan.operations)
    assert all(o.response_sha256 for o in again)  # the read that found nothing to do
    assert_secret_free(secret, *first, *again)


def test_delete_mode_deletes_and_verifies_absent(slapd: LocalSlapd, secret: str) -> None:
    c = connector(slapd, secret, disable_mode="delete")
    [bob] = c.discover(Match(ids=("bob",)))
    outcomes = c.revoke(c.plan([bob]), "k")
    assert [(o.operation.action, o.status) for o in outcomes] == [
        ("remove_member", OutcomeStatus.REVOKED),
        ("delete", OutcomeStatus.REVOKED),
    ]
    assert not can_bind(slapd, "bob")
    observed = c.verify(bob, probe_password=USERS["bob"][1])
    assert observed.status == ObservationStatus.ABSENT
    assert "the entry does not exist" in observed.detail
    # The group still listed in the discovered account is planned, and found done.
    again = c.revoke(c.plan([bob]), "k")
    assert [o.status for o in again] == [OutcomeStatus.ALREADY_ABSENT] * 2


def test_the_last_member_of_a_group_needs_a_person(slapd: LocalSlapd, secret: str) -> None:
    c = connector(slapd, secret)
    [dan] = c.discover(Match(ids=("dan",)))
    outcomes = c.revoke(c.plan([dan]), "k")
    assert [(o.operation.action, o.status) for o in outcomes] == [
        ("remove_member", OutcomeStatus.NEEDS_MANUAL),
        ("disable", OutcomeStatus.REVOKED),
    ]
    assert "last member" in outcomes[0].detail
    observed = c.verify(dan, probe_password=USERS["dan"][1])
    assert observed.status == ObservationStatus.PRESENT
    assert f"still a member of {gdn('finance')}" in observed.detail


def test_server_killed_mid_revoke_is_failed_not_revoked_then_resumes(
    slapd: LocalSlapd, secret: str
) -> None:
    c = connector(slapd, secret)
    [alice] = c.discover(Match(ids=("alice",)))
    plan = c.plan([alice])
    modify = c._modify
    calls = 0

    def modify_then_die(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        reply = modify(*args, **kwargs)
        if calls == 1:
            slapd.stop()  # after the first change is made
        return reply

    c._modify = modify_then_die  # type: ignore[method-assign]
    outcomes = c.revoke(plan, "k")
    assert [o.status for o in outcomes] == [
        OutcomeStatus.REVOKED,
        OutcomeStatus.FAILED,
        OutcomeStatus.FAILED,
    ]
    assert "not reachable" in outcomes[1].detail and "retry" in outcomes[1].detail
    down = c.verify(alice, probe_password=USERS["alice"][1])
    assert down.status == ObservationStatus.INDETERMINATE
    assert_secret_free(secret, *outcomes, down)

    slapd.start_again()
    assert can_bind(slapd, "alice")  # the disable never happened
    resumed = c.revoke(plan, "k")
    assert [o.status for o in resumed] == [
        OutcomeStatus.ALREADY_ABSENT,
        OutcomeStatus.REVOKED,
        OutcomeStatus.REVOKED,
    ]
    assert c.verify(alice, probe_password=USERS["alice"][1]).status == ObservationStatus.ABSENT


def test_verify_of_a_user_never_revoked_is_present(slapd: LocalSlapd, secret: str) -> None:
    c = connector(slapd, secret)
    carol = Account(external_id=dn("carol"), login="carol")
    observed = c.verify(carol)
    assert observed.status == ObservationStatus.PRESENT
    assert "usable password" in observed.detail and "still a member" in observed.detail
    assert b'"userPassword":["set"]' in observed.raw  # the hash itself is never recorded
