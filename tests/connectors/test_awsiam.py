"""The AWS IAM connector against a real moto_server on loopback, IAM authentication on (so
credentials and permissions are checked for real), with the fault proxy of peers.py before it
for 5xx, 429, throttling, timeouts and lost answers — and once through the services, the CLI
and the ledger."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from offboard.connectors import registry
from offboard.connectors.awsiam import AwsIamConnector
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
    Plan,
)
from offboard.core.actor import Actor
from tests.connectors.moto import ALLOW_ALL, MotoServer
from tests.connectors.peers import FaultProxy
from tests.smtp import free_port

offline = pytest.mark.offline  # no Offboard database: runs once, in the SQLite pass

THROTTLED = (
    b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender'
    b"</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>req-throttled</RequestId></ErrorResponse>"
)


def error_xml(code: str, message: str, status_type: str = "Sender") -> bytes:
    return (
        f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>'
        f"{status_type}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>req-{code}</RequestId></ErrorResponse>"
    ).encode()


@pytest.fixture(scope="session")
def aws() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def scope(aws: MotoServer) -> str:
    """A path (and name prefix) of this test's own: the server is shared by the session."""
    return aws.scope()


@pytest.fixture
def aws_proxy(aws: MotoServer) -> Iterator[FaultProxy]:
    p = FaultProxy(aws.port, keep_host=True).start()
    yield p
    p.stop()


def connector(
    url: str, aws: MotoServer, scope: str = "", *, secret: str | None = None, **config: Any
) -> AwsIamConnector:
    conn = registry.get("aws_iam")(
        {
            "access_key_id": config.pop("access_key_id", aws.key_id),
            "endpoint_url": url,
            **({"user_path_prefix": scope} if scope else {}),
            **config,
        },
        aws.secret if secret is None else secret,
    )
    assert isinstance(conn, AwsIamConnector)
    conn.sleep = lambda s: None
    return conn


def prefix(scope: str) -> str:
    return scope.strip("/") + "-"


def loaded_user(aws: MotoServer, scope: str, name: str, **extra: Any) -> dict[str, Any]:
    """A user with one of everything the connector removes."""
    p = prefix(scope)
    team = aws.group(f"{p}team", scope)
    admins = aws.group(f"{p}admins", scope)
    arn = aws.policy(f"{p}{name}-read")
    return aws.user(
        f"{p}{name}",
        scope,
        email=f"{name}@client.example",
        groups=(team, admins),
        keys=2,
        password=True,
        mfa=True,
        certificate=True,
        ssh_key=True,
        managed=(arn,),
        inline=("extra",),
        **extra,
    )


def assert_no_secret(secret: str, outcomes: list[Outcome], *more: Any) -> None:
    for o in outcomes:
        assert secret not in o.detail and secret.encode() not in o.response
        assert secret not in json.dumps(o.as_dict())
    for thing in more:
        text = thing if isinstance(thing, bytes) else str(thing).encode()
        assert secret.encode() not in text


# --- config and check -------------------------------------------------------------------


@offline
def test_config_is_validated(monkeypatch: Any) -> None:
    ok = AwsIamConnector.validate_config(
        {"access_key_id": " AKIAIOSFODNN7EXAMPLE ", "delete_users": "false", "attempts": "2"}
    )
    assert ok == {
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "region": "us-east-1",
        "delete_users": False,
        "attempts": 2,
    }
    bad = {
        "access_key_id": {},
        "region": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "region": "Frankfurt"},
        "endpoint_url": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "endpoint_url": "ftp://x"},
        "user_path_prefix": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "user_path_prefix": "x/"},
        "delete_users": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "delete_users": "maybe"},
        "timeout": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "timeout": "-1"},
        "Unknown config field": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret": "s"},
    }
    for field, config in bad.items():
        with pytest.raises(ConnectorConfigError, match=field):
            AwsIamConnector.validate_config(config)
    # A secret access key pasted as the id is refused, and the message does not repeat it.
    with pytest.raises(ConnectorConfigError, match="access_key_id") as err:
        AwsIamConnector.validate_config({"access_key_id": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"})
    assert "wJalrXUtnFEMI" not in str(err.value)
    with pytest.raises(ConnectorConfigError, match="secret access key"):
        AwsIamConnector({"access_key_id": "AKIAIOSFODNN7EXAMPLE"}, "")
    assert registry.get("aws_iam") is AwsIamConnector
    assert "aws_iam" in registry.kinds()
    # Built from the connection alone: the environment's AWS settings are not used.
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    conn = AwsIamConnector({"access_key_id": "AKIAIOSFODNN7EXAMPLE"}, "s3cret-key")
    assert conn.target() == "https://iam.amazonaws.com"


@offline
def test_check_ok_wrong_secret_unknown_key_no_permission_and_down(
    aws: MotoServer, scope: str
) -> None:
    result = connector(aws.url, aws, scope).check()
    assert result.target == aws.url
    assert "signed in as arn:aws:iam::123456789012:user/offboard-admin" in result.detail
    assert f"ListUsers under {scope} allowed" in result.detail

    with pytest.raises(CredentialsRefused) as refused:
        connector(aws.url, aws, secret="wrong-secret-access-key-1").check()
    message = refused.value.message
    assert "SignatureDoesNotMatch" in message and "secret access key does not match" in message
    assert refused.value.status == 403 and refused.value.request_id
    assert "wrong-secret-access-key-1" not in str(refused.value)

    with pytest.raises(CredentialsRefused, match="InvalidClientTokenId"):
        connector(aws.url, aws, access_key_id="AKIANOSUCHKEY0000000").check()

    # Valid credentials without iam:ListUsers: refused, and the message says why.
    weak = aws.user(f"{prefix(scope)}weak", scope, keys=1)
    with pytest.raises(CredentialsRefused) as denied:
        connector(aws.url, aws, access_key_id=weak["keys"][0], secret=weak["secrets"][0]).check()
    assert "AccessDenied" in denied.value.message and "not allowed" in denied.value.message
    assert not denied.value.retryable

    down = connector(f"http://127.0.0.1:{free_port()}", aws, attempts=2)
    with pytest.raises(ConnectorError) as err:
        down.check()
    assert err.value.retryable and "network error" in err.value.message
    assert "gave up after 2 attempt(s)" in err.value.message
    assert aws.secret not in str(err.value)


# --- discover and plan ------------------------------------------------------------------


@offline
def test_discover_by_id_prefix_group_and_email_tag(aws: MotoServer, scope: str) -> None:
    p = prefix(scope)
    team = aws.group(f"{p}team", scope)
    ann = aws.user(f"{p}ann", scope, email="ann@client.example", groups=(team,))
    bo = aws.user(f"{p}bo", scope, email="Bo@Client.Example")
    sam = aws.user(f"{p}sam@client.example", scope)  # an e-mail-shaped UserName
    aws.user(f"{p}cy", scope, email="cy@elsewhere.example")
    # Outside the connection's path: never discovered, whatever matches.
    outside = aws.user(f"{p}out", "/elsewhere/", email="out@client.example", groups=(team,))
    conn = connector(aws.url, aws, scope)

    by_domain = conn.discover(Match(email_domains=("client.example",)))
    assert [a.login for a in by_domain] == [f"{p}ann", f"{p}bo", f"{p}sam@client.example"]
    first = by_domain[0]
    assert first.external_id == ann["id"] and first.display_name == "ann@client.example"
    assert first.details["groups"] == [team] and first.details["path"] == scope
    assert first.details["arn"].endswith(f"user{scope}{p}ann")

    assert {a.external_id for a in conn.discover(Match(groups=(team,)))} == {ann["id"]}
    assert {a.external_id for a in conn.discover(Match(role_prefixes=(f"{p}b", f"{p}s")))} == {
        bo["id"],
        sam["id"],
    }
    by_id = conn.discover(Match(ids=(f"{p}ann", bo["id"], "cy@elsewhere.example")))
    assert sorted(a.login for a in by_id) == [f"{p}ann", f"{p}bo", f"{p}cy"]
    assert conn.discover(Match(ids=(outside["name"], outside["id"]))) == []
    assert conn.discover(Match(groups=("no-such-group",), ids=("no such user",))) == []
    assert conn.discover(Match()) == []
    # Without a path prefix the whole account is in scope.
    unscoped = connector(aws.url, aws)
    assert {a.login for a in unscoped.discover(Match(groups=(team,)))} == {f"{p}ann", f"{p}out"}


@offline
def test_plan_is_ordered_credentials_then_permissions_then_delete(
    aws: MotoServer, scope: str
) -> None:
    user = loaded_user(aws, scope, "ann")
    conn = connector(aws.url, aws, scope)
    [ann] = conn.discover(Match(ids=(user["name"],)))
    plan = conn.plan([ann])
    actions = [op.action for op in plan.operations]
    assert actions == [
        "delete_access_key",
        "delete_access_key",
        "delete_login_profile",
        "deactivate_mfa_device",
        "delete_virtual_mfa_device",
        "delete_signing_certificate",
        "delete_ssh_public_key",
        "detach_user_policy",
        "delete_user_policy",
        "remove_user_from_group",
        "remove_user_from_group",
        "delete_user",
    ]
    orders = [op.order for op in plan.operations]
    assert orders == sorted(orders)
    assert plan.operations[0].order == Phase.REVOKE_CREDENTIAL
    assert plan.operations[7].order == Phase.DISABLE and orders[-1] == Phase.DELETE
    assert {op.account_id for op in plan.operations} == {user["id"]}
    assert sorted(op.target_id for op in plan.operations[:2]) == sorted(user["keys"])
    assert plan.operations[3].target_id == user["mfa"]
    assert all(op.description and op.details["user_name"] == user["name"] for op in plan.operations)
    assert Plan.from_dict(plan.as_dict()) == plan  # round-trips for storage and the CLI

    kept = connector(aws.url, aws, scope, delete_users=False).plan([ann])
    assert [op.action for op in kept.operations] == actions[:-1]

    # An account outside the connection's path is refused, not planned.
    other = aws.user(f"{prefix(scope)}far", "/far/")
    [far] = connector(aws.url, aws).discover(Match(ids=(other["name"],)))
    with pytest.raises(ConnectorConfigError, match="outside this connection's user_path_prefix"):
        conn.plan([far])


# --- revoke and verify ------------------------------------------------------------------


@offline
def test_revoke_then_verify_absent_and_twice_already_absent(aws: MotoServer, scope: str) -> None:
    user = loaded_user(aws, scope, "ann")
    conn = connector(aws.url, aws, scope)
    [ann] = conn.discover(Match(ids=(user["name"],)))
    before = conn.verify(ann)
    assert before.status == ObservationStatus.PRESENT
    assert "2 active access key(s)" in before.detail and "console password" in before.detail

    plan = conn.plan([ann])
    outcomes = conn.revoke(plan, "key-1")
    assert [o.status for o in outcomes] == [OutcomeStatus.REVOKED] * 12, [
        o.detail for o in outcomes
    ]
    for o in outcomes:
        assert len(o.request_sha256) == 64 and len(o.response_sha256) == 64
        assert o.request_id and o.response.startswith(b"<")
        assert o.started_at <= o.ended_at
    assert b"<DeleteUserResponse" in outcomes[-1].response
    assert not aws.exists(user["name"])
    devices = aws.iam.list_virtual_mfa_devices()["VirtualMFADevices"]
    assert user["mfa"] not in [d["SerialNumber"] for d in devices]

    seen = conn.verify(ann)
    assert seen.status == ObservationStatus.ABSENT, seen.detail
    assert "does not exist (NoSuchEntity)" in seen.detail
    doc = json.loads(seen.raw)
    assert doc["reads"][0]["read"] == "GetUser" and doc["reads"][0]["error_code"] == "NoSuchEntity"
    assert len(seen.request_sha256) == 64 and seen.request_id

    # The same plan again: nothing left to do; a fresh plan has only the deletion, done.
    again = conn.revoke(plan, "key-1")
    assert [o.status for o in again] == [OutcomeStatus.ALREADY_ABSENT] * 12
    assert [(o.operation.action, o.status) for o in conn.revoke(conn.plan([ann]), "key-2")] == [
        ("remove_user_from_group", OutcomeStatus.ALREADY_ABSENT),
        ("remove_user_from_group", OutcomeStatus.ALREADY_ABSENT),
        ("delete_user", OutcomeStatus.ALREADY_ABSENT),
    ]
    assert_no_secret(aws.secret, outcomes + again, seen.raw, seen.detail)


@offline
def test_kept_users_are_stripped_and_verify_reads_what_is_left(aws: MotoServer, scope: str) -> None:
    user = loaded_user(aws, scope, "bo")
    conn = connector(aws.url, aws, scope, delete_users=False)
    [bo] = conn.discover(Match(ids=(user["id"],)))
    outcomes = conn.revoke(conn.plan([bo]), "k")
    assert {o.status for o in outcomes} == {OutcomeStatus.REVOKED}
    assert aws.exists(user["name"])
    seen = conn.verify(bo)
    assert seen.status == ObservationStatus.ABSENT, seen.detail
    assert "kept (delete_users is off)" in seen.detail
    assert [r["read"] for r in json.loads(seen.raw)["reads"]] == [
        "GetUser",
        "ListAccessKeys",
        "GetLoginProfile",
        "ListMFADevices",
        "ListSigningCertificates",
        "ListSSHPublicKeys",
        "ListAttachedUserPolicies",
        "ListUserPolicies",
        "ListGroupsForUser",
    ]
    # Access that comes back is seen; an inactive key is not access.
    key = aws.iam.create_access_key(UserName=user["name"])["AccessKey"]["AccessKeyId"]
    back = conn.verify(bo)
    assert back.status == ObservationStatus.PRESENT and "1 active access key(s)" in back.detail
    aws.iam.update_access_key(UserName=user["name"], AccessKeyId=key, Status="Inactive")
    assert conn.verify(bo).status == ObservationStatus.ABSENT
    # With delete_users on, a user that still exists is present however bare.
    assert connector(aws.url, aws, scope).verify(bo).status == ObservationStatus.PRESENT


@offline
def test_a_new_user_under_the_same_name_is_never_touched(aws: MotoServer, scope: str) -> None:
    user = aws.user(f"{prefix(scope)}dee", scope, keys=1, password=True)
    conn = connector(aws.url, aws, scope)
    [dee] = conn.discover(Match(ids=(user["name"],)))
    plan = conn.plan([dee])
    # Deleted and re-created by someone else before the revoke runs: another UserId.
    aws.iam.delete_access_key(UserName=user["name"], AccessKeyId=user["keys"][0])
    aws.iam.delete_login_profile(UserName=user["name"])
    aws.iam.delete_user(UserName=user["name"])
    twin = aws.user(user["name"], scope, password=True)
    outcomes = conn.revoke(plan, "k")
    assert [o.status for o in outcomes] == [OutcomeStatus.NEEDS_MANUAL] * 3
    assert all("now belongs to another user" in o.detail for o in outcomes)
    assert aws.exists(user["name"])
    assert aws.iam.get_login_profile(UserName=user["name"])["LoginProfile"]
    seen = conn.verify(dee)
    assert seen.status == ObservationStatus.PRESENT
    assert twin["id"] in seen.detail and "a person must decide" in seen.detail


@offline
def test_the_connections_own_user_goes_last(aws: MotoServer, scope: str) -> None:
    p = prefix(scope)
    ann = aws.user(f"{p}ann", scope, keys=1)
    robot = aws.user(f"{p}robot", scope, keys=2, password=True, inline=("all",))
    conn = connector(
        aws.url, aws, scope, access_key_id=robot["keys"][0], secret=robot["secrets"][0]
    )
    accounts = conn.discover(Match(role_prefixes=(p,)))
    plan = conn.plan(accounts)
    assert [(op.details["user_name"], op.action) for op in plan.operations] == [
        (ann["name"], "delete_access_key"),
        (ann["name"], "delete_user"),
        (robot["name"], "delete_access_key"),  # its other key
        (robot["name"], "delete_login_profile"),
        (robot["name"], "own_user"),
        (robot["name"], "delete_access_key"),  # this connection's own key, last of all
    ]
    assert plan.operations[2].order >= Phase.OWN_ACCESS
    assert plan.operations[-1].target_id == robot["keys"][0]
    outcomes = conn.revoke(plan, "k")
    assert [o.status for o in outcomes] == [
        OutcomeStatus.REVOKED,
        OutcomeStatus.REVOKED,
        OutcomeStatus.REVOKED,
        OutcomeStatus.REVOKED,
        OutcomeStatus.NEEDS_MANUAL,
        OutcomeStatus.REVOKED,
    ]
    assert "by hand" in outcomes[4].detail and "policy all" in outcomes[4].detail
    assert aws.iam.list_access_keys(UserName=robot["name"])["AccessKeyMetadata"] == []
    with pytest.raises(CredentialsRefused, match="InvalidClientTokenId"):
        conn.check()  # its own key is gone: the connection has revoked itself last


# --- faults -----------------------------------------------------------------------------


@offline
def test_5xx_429_and_throttling_retried_with_backoff_and_retry_after(
    aws: MotoServer, aws_proxy: FaultProxy, scope: str
) -> None:
    url = f"http://127.0.0.1:{aws_proxy.port}"
    conn = connector(url, aws, scope, delete_users=False)
    sleeps: list[float] = []
    conn.sleep = sleeps.append
    aws_proxy.inject("status", 503)
    aws_proxy.inject("status", 429, 7)
    aws_proxy.inject("status", 400, None, THROTTLED)  # IAM throttles with HTTP 400
    assert "answered" in conn.check().detail
    assert [s for _, _, s in aws_proxy.seen][:4] == ["status", "status", "status", 200]
    assert sleeps == [0.25, 7.0, 1.0]  # backoff, Retry-After, backoff

    # Given up after the attempts: that operation failed (retryable), the others went on.
    user = aws.user(f"{prefix(scope)}ann", scope, keys=1, password=True)
    [ann] = conn.discover(Match(ids=(user["name"],)))
    aws_proxy.inject("status", 502, times=4, contains=b"Action=DeleteLoginProfile")
    outcomes = conn.revoke(conn.plan([ann]), "k")
    assert [(o.operation.action, o.status) for o in outcomes] == [
        ("delete_access_key", OutcomeStatus.REVOKED),
        ("delete_login_profile", OutcomeStatus.FAILED),
    ]
    assert "gave up after 4 attempt(s)" in outcomes[1].detail
    assert "Not confirmed" in outcomes[1].detail
    seen = conn.verify(ann)
    assert seen.status == ObservationStatus.PRESENT and "console password" in seen.detail


@offline
def test_4xx_is_final_and_a_partial_failure_shows_what_is_open(
    aws: MotoServer, aws_proxy: FaultProxy, scope: str
) -> None:
    # A connection allowed everything but iam:DetachUserPolicy: moto refuses that call.
    p = prefix(scope)
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            *ALLOW_ALL["Statement"],
            {"Effect": "Deny", "Action": "iam:DetachUserPolicy", "Resource": "*"},
        ],
    }
    robot = aws.user(f"{p}robot", "/robots/", keys=1)
    aws.iam.put_user_policy(
        UserName=robot["name"], PolicyName="almost-all", PolicyDocument=json.dumps(deny)
    )
    user = aws.user(f"{p}ann", scope, keys=1, managed=(aws.policy(f"{p}read"),))
    url = f"http://127.0.0.1:{aws_proxy.port}"
    conn = connector(url, aws, scope, access_key_id=robot["keys"][0], secret=robot["secrets"][0])
    [ann] = conn.discover(Match(ids=(user["name"],)))
    outcomes = conn.revoke(conn.plan([ann]), "k")
    assert [(o.operation.action, o.status) for o in outcomes] == [
        ("delete_access_key", OutcomeStatus.REVOKED),
        ("detach_user_policy", OutcomeStatus.FAILED),
        ("delete_user", OutcomeStatus.FAILED),
    ]
    assert "AccessDenied" in outcomes[1].detail and "not allowed" in outcomes[1].detail
    assert "Not confirmed" not in outcomes[1].detail  # final, not retried
    statuses = [s for _, _, s in aws_proxy.seen]
    assert statuses.count(403) == 1  # the refused call was sent once, not retried
    assert "DeleteConflict" in outcomes[2].detail and outcomes[2].request_id
    seen = conn.verify(ann)
    assert seen.status == ObservationStatus.PRESENT
    assert f"attached policies {p}read" in seen.detail and "access key" not in seen.detail

    # A 400 the proxy injects is not retried either.
    aws_proxy.seen.clear()
    aws_proxy.inject("status", 400, None, error_xml("ValidationError", "bad"))
    with pytest.raises(ConnectorError) as err:
        conn.check()
    assert not err.value.retryable and err.value.status == 400
    assert "ValidationError" in err.value.message and len(aws_proxy.seen) == 1

    # Run again with a connection that may detach: the rest is done, the read says absent.
    admin = connector(aws.url, aws, scope)
    again = admin.revoke(admin.plan([ann]), "k")
    assert [(o.operation.action, o.status) for o in again] == [
        ("detach_user_policy", OutcomeStatus.REVOKED),
        ("delete_user", OutcomeStatus.REVOKED),
    ]
    assert admin.verify(ann).status == ObservationStatus.ABSENT


@offline
def test_timeouts_are_retried_and_a_write_that_landed_is_not_lost(
    aws: MotoServer, aws_proxy: FaultProxy, scope: str
) -> None:
    url = f"http://127.0.0.1:{aws_proxy.port}"
    conn = connector(url, aws, scope, timeout=0.4, attempts=2, delete_users=False)
    user = aws.user(f"{prefix(scope)}ann", scope, keys=1, password=True)
    [ann] = conn.discover(Match(ids=(user["name"],)))
    plan = conn.plan([ann])
    # The key's deletion lands but its answer never comes; the password's deletion is not
    # even forwarded. Both are retried: one finds it gone, the other goes through.
    aws_proxy.inject("late", 1.0, contains=b"Action=DeleteAccessKey")
    aws_proxy.inject("timeout", 1.0, contains=b"Action=DeleteLoginProfile")
    outcomes = conn.revoke(plan, "k")
    assert [o.status for o in outcomes] == [OutcomeStatus.REVOKED, OutcomeStatus.REVOKED]
    assert "timed out but had landed" in outcomes[0].detail
    assert b"NoSuchEntity" in outcomes[0].response
    faults = [s for _, _, s in aws_proxy.seen if isinstance(s, str)]
    assert faults == ["late", "timeout"]
    assert conn.verify(ann).status == ObservationStatus.ABSENT

    # Reads that time out every time: indeterminate, never absent.
    aws_proxy.inject("timeout", 1.0, times=2, contains=b"Action=GetUser")
    seen = conn.verify(ann)
    assert seen.status == ObservationStatus.INDETERMINATE
    assert "timed out" in seen.detail and "gave up after 2 attempt(s)" in seen.detail
    assert json.loads(seen.raw)["error"]


@offline
def test_server_killed_mid_revoke_the_rest_failed_and_verify_indeterminate() -> None:
    server = MotoServer().start()
    try:
        scope = server.scope()
        user = loaded_user(server, scope, "ann")
        conn = connector(server.url, server, scope, attempts=2)
        [ann] = conn.discover(Match(ids=(user["name"],)))
        plan = conn.plan([ann])
        # Down for good just as the console password's deletion goes out (SIGKILL).
        conn.iam.meta.events.register(
            "before-send.iam.DeleteLoginProfile", lambda **_: server.kill()
        )
        outcomes = conn.revoke(plan, "k")
        statuses = [o.status for o in outcomes]
        assert statuses[:2] == [OutcomeStatus.REVOKED] * 2  # the access keys, before
        assert statuses[2:] == [OutcomeStatus.FAILED] * 10  # never reported revoked
        for o in outcomes[2:]:
            assert "network error" in o.detail and "gave up after 2 attempt(s)" in o.detail
            assert "Not confirmed" in o.detail
        seen = conn.verify(ann)
        assert seen.status == ObservationStatus.INDETERMINATE
        assert "The read failed" in seen.detail
        assert_no_secret(server.secret, outcomes, seen.raw, seen.detail)
    finally:
        server.stop()


@offline
def test_a_peer_echoing_the_secret_never_puts_it_in_errors_outcomes_or_reads(
    aws: MotoServer, aws_proxy: FaultProxy, scope: str
) -> None:
    secret = aws.secret
    url = f"http://127.0.0.1:{aws_proxy.port}"
    conn = connector(url, aws, scope, attempts=2, delete_users=False)
    echo = error_xml("ValidationError", f"bad request signed with {secret}")
    aws_proxy.inject("status", 400, None, echo)
    with pytest.raises(ConnectorError) as err:
        conn.check()
    assert secret not in str(err.value) and "[REDACTED]" in str(err.value)
    aws_proxy.inject("status", 500, None, error_xml("ServiceFailure", secret, "Receiver"), times=2)
    with pytest.raises(ConnectorError) as err:
        conn.check()
    assert err.value.retryable and secret not in str(err.value)

    user = aws.user(f"{prefix(scope)}ann", scope, keys=1)
    [ann] = conn.discover(Match(ids=(user["name"],)))
    aws_proxy.inject("status", 409, None, echo, contains=b"Action=DeleteAccessKey")
    outcomes = conn.revoke(conn.plan([ann]), "k")
    assert outcomes[0].status == OutcomeStatus.FAILED and "[REDACTED]" in outcomes[0].detail
    aws_proxy.inject("status", 500, None, echo, times=2, contains=b"Action=ListAccessKeys")
    seen = conn.verify(ann)
    assert seen.status == ObservationStatus.INDETERMINATE
    assert b"[REDACTED]" in seen.raw
    assert_no_secret(secret, outcomes, seen.raw, seen.detail)


# --- through the services, the ledger and the CLI ---------------------------------------


def test_run_revoke_makes_the_grant_revoked_and_observed_with_no_secret_anywhere(
    cast: dict[str, Actor], case: Any, aws: MotoServer, scope: str, caplog: Any, settings: Any
) -> None:
    from offboard.cases.models import AccessGrant
    from offboard.cases.services import activate_case, add_register_item
    from offboard.connectors import services
    from offboard.connectors.models import Connection, LinkedAccount
    from offboard.ledger.models import LedgerEntry

    caplog.set_level(logging.DEBUG)
    alice = cast["alice"]
    started = case if case.state == "active" else activate_case(actor=alice, case=case)
    user = loaded_user(aws, scope, "ann")
    conn = services.create_connection(
        actor=alice,
        name="AWS",
        kind="aws_iam",
        config={"access_key_id": aws.key_id, "endpoint_url": aws.url, "user_path_prefix": scope},
        secret=aws.secret,
    )
    assert services.check_connection(actor=alice, connection=conn).target == aws.url
    grant = add_register_item(
        actor=alice,
        case=started,
        register="access_grants",
        values={
            "direction": "client_in_provider",
            "system": "AWS",
            "principal": user["name"],
            "privilege": "IAM user",
            "planned_action": "revoke",
        },
    )
    assert isinstance(grant, AccessGrant)

    [run] = services.run_revoke(
        actor=alice, case=started, grants=[grant], connection=conn, idempotency_key="k-1"
    )
    assert [o.status for o in run.outcomes] == [OutcomeStatus.REVOKED] * 12
    assert run.observation is not None and run.observed_absent
    assert not aws.exists(user["name"])
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.verification_level == "observed"
    assert grant.source == "observed"
    assert grant.source_detail["connection_id"] == str(conn.public_id)
    assert LinkedAccount.objects.get(grant=grant).external_id == user["id"]

    events = [
        json.loads(bytes(e.body))
        for e in LedgerEntry.objects.filter(org=alice.org).order_by("index")
    ]
    ran = [e for e in events if e["type"].startswith("connector.")]
    assert [e["type"] for e in ran] == ["connector.revoked", "connector.verified"]
    revoked, verified = (e["data"] for e in ran)
    assert revoked["connector"] == {"kind": "aws_iam", "version": AwsIamConnector.version}
    assert revoked["target"] == aws.url and revoked["idempotency_key"] == "k-1"
    assert [o["operation"]["action"] for o in revoked["operations"]][-1] == "delete_user"
    assert all(o["request_id"] and len(o["request_sha256"]) == 64 for o in revoked["operations"])
    assert verified["observation"] == "absent"

    # Again: the deleted user is read back by its linked account; nothing left to do.
    [again] = services.run_revoke(
        actor=alice, case=started, grants=[grant], connection=conn, idempotency_key="k-1"
    )
    assert {o.status for o in again.outcomes} == {OutcomeStatus.ALREADY_ABSENT}
    assert again.observed_absent

    secret = aws.secret.encode()
    for entry in LedgerEntry.objects.filter(org=alice.org):
        assert secret not in bytes(entry.body)
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert aws.secret not in caplog.text
    for config, sealed in Connection.objects.values_list("config", "secret_sealed"):
        assert aws.secret not in json.dumps(config) and aws.secret not in sealed


def test_cli_adds_an_aws_connection_with_the_secret_from_the_environment(
    monkeypatch: Any, cast: dict[str, Actor], aws: MotoServer, scope: str
) -> None:
    from offboard.cli import app

    monkeypatch.setenv("OFFBOARD_ORG", "acme")
    monkeypatch.setenv("OFFBOARD_USER", "alice")
    monkeypatch.setenv("OFFBOARD_TEST_AWS_SECRET", aws.secret)
    user = aws.user(f"{prefix(scope)}ann", scope, email="ann@client.example")
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            *("connector", "add", "AWS", "--kind", "aws_iam"),
            *("--access-key-id", aws.key_id, "--config", f"endpoint_url={aws.url}"),
            *("--config", f"user_path_prefix={scope}", "--config", "delete_users=false"),
            *("--secret-env", "OFFBOARD_TEST_AWS_SECRET", "--json"),
        ],
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["kind"] == "aws_iam" and aws.secret not in added.output
    listed = runner.invoke(app, ["connector", "list"])
    assert "aws_iam" in listed.output and aws.url in listed.output
    ok = runner.invoke(app, ["connector", "check", "AWS"])
    assert ok.exit_code == 0 and "OK: AWS IAM at" in ok.output, ok.output
    found = runner.invoke(
        app, ["connector", "discover", "AWS", "--domain", "client.example", "--json"]
    )
    assert [a["external_id"] for a in json.loads(found.output)] == [user["id"]]
    for result in (added, listed, ok, found):
        assert aws.secret not in result.output


@offline
def test_accounts_round_trip_and_verify_uses_the_user_name(aws: MotoServer, scope: str) -> None:
    """What LinkedAccount stores is enough to read the user back (by name, checked by id)."""
    user = aws.user(f"{prefix(scope)}eve", scope)
    conn = connector(aws.url, aws, scope)
    [eve] = conn.discover(Match(ids=(user["id"],)))
    stored = Account.from_dict(json.loads(json.dumps(eve.as_dict())))
    assert conn.verify(stored).status == ObservationStatus.PRESENT
    aws.iam.delete_user(UserName=user["name"])
    assert conn.verify(stored).status == ObservationStatus.ABSENT
