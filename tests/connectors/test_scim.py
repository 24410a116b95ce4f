"""The SCIM connector against a real scim2-server on loopback (and a fault proxy before it)."""

import pytest

from offboard.connectors import registry
from offboard.connectors.base import (
    ConnectorConfigError,
    ConnectorError,
    CredentialsRefused,
    Match,
    ObservationStatus,
    OutcomeStatus,
    Phase,
    Plan,
)
from offboard.connectors.scim import ScimConnector
from tests.connectors.peers import FaultProxy, ScimServer
from tests.smtp import free_port

pytestmark = pytest.mark.offline  # no Offboard database: runs once, in the SQLite pass


def connector(url: str, token: str, **config: object) -> ScimConnector:
    conn = registry.get("scim")({"url": url, **config}, token)
    assert isinstance(conn, ScimConnector)
    conn.http.sleep = lambda s: None
    return conn


def seed(server: ScimServer, domain: str) -> dict[str, str]:
    ann = server.user(f"ann@{domain}")
    bo = server.user(f"bo@{domain}")
    ours = server.user(f"sam@staff-{domain}")
    team = server.group(f"{domain}-team", [ann, bo])
    admins = server.group(f"{domain}-admins", [ann, ours])
    return {"ann": ann, "bo": bo, "ours": ours, "team": team, "admins": admins}


def test_check_ok_wrong_token_and_down(scim_server: ScimServer) -> None:
    result = connector(scim_server.url, scim_server.token).check()
    assert "answered" in result.detail and result.target == scim_server.url

    with pytest.raises(CredentialsRefused) as refused:
        connector(scim_server.url, "wrong-token-123").check()
    assert "refused the connection's credentials" in refused.value.message
    assert "wrong-token-123" not in str(refused.value)

    down = connector(f"http://127.0.0.1:{free_port()}/v2", scim_server.token, attempts=2)
    with pytest.raises(ConnectorError) as err:
        down.check()
    assert err.value.retryable and "network error" in err.value.message
    assert "gave up after 2 attempt(s)" in err.value.message
    assert scim_server.token not in str(err.value)


def test_config_is_validated() -> None:
    with pytest.raises(ConnectorConfigError, match="url"):
        ScimConnector({}, "t0ken")
    with pytest.raises(ConnectorConfigError, match="Unknown config field"):
        ScimConnector({"url": "http://x/v2", "password": "p"}, "t0ken")
    with pytest.raises(ConnectorConfigError, match="https://"):
        ScimConnector({"url": "ftp://x"}, "t0ken")
    with pytest.raises(ConnectorConfigError, match="Unknown connector kind"):
        registry.get("nope")


def test_discover_by_domain_group_prefix_and_id(scim_server: ScimServer, domain: str) -> None:
    ids = seed(scim_server, domain)
    conn = connector(scim_server.url, scim_server.token)

    by_domain = conn.discover(Match(email_domains=(domain,)))
    assert [a.login for a in by_domain] == [f"ann@{domain}", f"bo@{domain}"]
    ann = by_domain[0]
    assert ann.external_id == ids["ann"] and ann.details["active"] is True
    assert sorted(g["display"] for g in ann.details["groups"]) == [
        f"{domain}-admins",
        f"{domain}-team",
    ]

    by_group = conn.discover(Match(groups=(f"{domain}-admins",)))
    assert {a.external_id for a in by_group} == {ids["ann"], ids["ours"]}
    by_prefix = conn.discover(Match(role_prefixes=(f"{domain}-",)))
    assert {a.external_id for a in by_prefix} == {ids["ann"], ids["bo"], ids["ours"]}
    by_id = conn.discover(Match(ids=(ids["bo"], f"sam@staff-{domain}")))
    assert {a.external_id for a in by_id} == {ids["bo"], ids["ours"]}
    assert conn.discover(Match(email_domains=("nobody.invalid",))) == []


def test_plan_orders_memberships_then_disable_then_delete(
    scim_server: ScimServer, domain: str
) -> None:
    seed(scim_server, domain)
    conn = connector(scim_server.url, scim_server.token, delete_users=True)
    accounts = conn.discover(Match(email_domains=(domain,)))
    plan = conn.plan(accounts)
    orders = [op.order for op in plan.operations]
    assert orders == sorted(orders)
    actions = [op.action for op in plan.operations]
    assert actions == ["remove_member"] * 3 + ["deactivate"] * 2 + ["delete"] * 2
    assert plan.operations[0].order == Phase.REMOVE_MEMBERSHIP
    assert Plan.from_dict(plan.as_dict()) == plan  # round-trips for storage and the CLI


def test_revoke_then_verify_absent_and_twice_already_absent(
    scim_server: ScimServer, domain: str
) -> None:
    ids = seed(scim_server, domain)
    conn = connector(scim_server.url, scim_server.token)
    [ann] = conn.discover(Match(ids=(ids["ann"],)))
    assert conn.verify(ann).status == ObservationStatus.PRESENT

    outcomes = conn.revoke(conn.plan([ann]), "key-1")
    assert [o.status for o in outcomes] == [OutcomeStatus.REVOKED] * 3
    assert all(len(o.request_sha256) == 64 and len(o.response_sha256) == 64 for o in outcomes)
    assert ids["ann"] not in scim_server.members(ids["team"])
    assert scim_server.members(ids["admins"]) == [ids["ours"]]
    assert scim_server.call("GET", f"/Users/{ids['ann']}")["active"] is False

    seen = conn.verify(ann)
    assert seen.status == ObservationStatus.ABSENT, seen.detail
    assert "inactive" in seen.detail and "in no group" in seen.detail
    assert b'"read":"user"' in seen.raw and b'"read":"groups"' in seen.raw
    assert scim_server.token.encode() not in seen.raw

    # The same operations again: nothing left to do.
    again = conn.revoke(_replan(ids), "key-1")
    assert [o.status for o in again] == [OutcomeStatus.ALREADY_ABSENT] * 3
    # A fresh plan is just the deactivation, already done.
    fresh = conn.revoke(conn.plan([ann]), "key-2")
    assert [(o.operation.action, o.status) for o in fresh] == [
        ("deactivate", OutcomeStatus.ALREADY_ABSENT)
    ]


def _replan(ids: dict[str, str]) -> Plan:
    from offboard.connectors.base import Operation

    ops = [
        Operation("remove_member", ids["team"], "x", Phase.REMOVE_MEMBERSHIP, ids["ann"]),
        Operation("remove_member", ids["admins"], "x", Phase.REMOVE_MEMBERSHIP, ids["ann"]),
        Operation("deactivate", ids["ann"], "x", Phase.DISABLE, ids["ann"]),
    ]
    return Plan.of("scim", ops)


def test_delete_then_verify_reads_group_side(scim_server: ScimServer, domain: str) -> None:
    ids = seed(scim_server, domain)
    conn = connector(scim_server.url, scim_server.token)
    [bo] = conn.discover(Match(ids=(ids["bo"],)))
    # The server's quirk: deleting a user leaves it listed in its groups.
    scim_server.call("DELETE", f"/Users/{ids['bo']}")
    seen = conn.verify(bo)
    assert seen.status == ObservationStatus.PRESENT
    assert "does not exist" in seen.detail and f"{domain}-team" in seen.detail
    conn.revoke(conn.plan([bo]), "k")
    assert conn.verify(bo).status == ObservationStatus.ABSENT


def test_5xx_and_429_retried_with_backoff_honouring_retry_after(
    scim_server: ScimServer, proxy: FaultProxy, domain: str
) -> None:
    ids = seed(scim_server, domain)
    conn = connector(proxy.url, scim_server.token)
    sleeps: list[float] = []
    conn.http.sleep = sleeps.append
    proxy.inject("status", 503)
    proxy.inject("status", 429, 7)
    proxy.inject("status", 500)
    assert "answered" in conn.check().detail
    assert [s for _, _, s in proxy.seen] == ["status", "status", "status", 200]
    assert sleeps == [0.25, 7.0, 1.0]  # backoff, Retry-After, backoff

    # Given up after the attempts: failed, retryable, not revoked.
    [ann] = conn.discover(Match(ids=(ids["ann"],)))
    proxy.inject("status", 502, times=4, method="PATCH")
    outcomes = conn.revoke(conn.plan([ann]), "k")
    assert [o.status for o in outcomes] == [OutcomeStatus.FAILED, *[OutcomeStatus.REVOKED] * 2]
    assert "gave up after 4 attempt(s)" in outcomes[0].detail


def test_4xx_not_retried(scim_server: ScimServer, proxy: FaultProxy) -> None:
    conn = connector(proxy.url, scim_server.token)
    proxy.inject("status", 400)
    with pytest.raises(ConnectorError) as err:
        conn.check()
    assert not err.value.retryable and err.value.status == 400
    assert len(proxy.seen) == 1
    proxy.inject("status", 403)
    with pytest.raises(CredentialsRefused):
        conn.check()
    assert len(proxy.seen) == 2


def test_server_down_mid_revoke_is_retried_and_never_reported_revoked(
    scim_server: ScimServer, proxy: FaultProxy, domain: str
) -> None:
    ids = seed(scim_server, domain)
    conn = connector(proxy.url, scim_server.token, timeout=0.5)
    [ann] = conn.discover(Match(ids=(ids["ann"],)))
    plan = conn.plan([ann])
    # A timeout then a dropped connection on the first write: retried, then it goes through.
    proxy.inject("timeout", 1.0, method="PATCH")
    proxy.inject("drop", method="PATCH")
    outcomes = conn.revoke(plan, "k")
    assert outcomes[0].status == OutcomeStatus.REVOKED
    assert [s for m, _, s in proxy.seen if m == "PATCH"][:3] == ["timeout", "drop", 204]

    # Down for good on a write: failed (not revoked); the verify read says what is true.
    [bo] = conn.discover(Match(ids=(ids["bo"],)))
    proxy.inject("drop", times=8, method="PATCH")
    outcomes = conn.revoke(conn.plan([bo]), "k2")
    assert {o.status for o in outcomes} == {OutcomeStatus.FAILED}
    assert all("network error" in o.detail for o in outcomes)
    assert conn.verify(bo).status == ObservationStatus.PRESENT

    # Reads failing: verify is indeterminate, never absent.
    proxy.inject("drop", times=8, method="GET")
    seen = conn.verify(ann)
    assert seen.status == ObservationStatus.INDETERMINATE
    assert scim_server.token.encode() not in seen.raw


def test_a_server_echoing_the_token_never_puts_it_in_errors(
    scim_server: ScimServer, proxy: FaultProxy, domain: str
) -> None:
    token = scim_server.token
    conn = connector(proxy.url, token, attempts=2)
    echo = f'{{"detail": "bad request from Bearer {token}"}}'.encode()
    proxy.inject("status", 400, None, echo)
    with pytest.raises(ConnectorError) as err:
        conn.check()
    assert token not in str(err.value) and "[REDACTED]" in str(err.value)
    proxy.inject("status", 500, None, echo, times=2)
    with pytest.raises(ConnectorError) as err:
        conn.check()
    assert token not in str(err.value) and err.value.retryable

    ids = seed(scim_server, domain)
    [ann] = conn.discover(Match(ids=(ids["ann"],)))
    proxy.inject("status", 409, None, echo, method="PATCH")
    outcomes = conn.revoke(conn.plan([ann]), "k")
    assert outcomes[0].status == OutcomeStatus.FAILED
    assert token not in outcomes[0].detail
