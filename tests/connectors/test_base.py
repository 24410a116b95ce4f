"""The contract's helpers: plan order, scrubbing, the retry delay."""

import datetime as dt
import email.utils

import pytest

from offboard.connectors.base import (
    Account,
    AccountKind,
    Match,
    Operation,
    Phase,
    Plan,
    canonical_request_sha256,
    scrub,
)
from offboard.connectors.http import HttpClient

pytestmark = pytest.mark.offline  # no Offboard database: runs once, in the SQLite pass


def test_plan_runs_transfers_first_and_our_own_access_last() -> None:
    ops = [
        Operation("drop_own_key", "k", "ours", Phase.OWN_ACCESS),
        Operation("deactivate", "u", "", Phase.DISABLE),
        Operation("remove_member", "g1", "", Phase.REMOVE_MEMBERSHIP),
        Operation("transfer", "repo", "", Phase.TRANSFER_OWNERSHIP),
        Operation("remove_member", "g2", "", Phase.REMOVE_MEMBERSHIP),
    ]
    plan = Plan.of("x", ops)
    assert [o.target_id for o in plan.operations] == ["repo", "g1", "g2", "u", "k"]
    assert Plan.from_dict(plan.as_dict()) == plan and len(plan.sha256()) == 64


def test_account_and_match_round_trip() -> None:
    a = Account("id1", "a@x.example", "A", AccountKind.KEY, {"n": 1})
    assert Account.from_dict(a.as_dict()) == a
    m = Match(email_domains=("X.example",), ids=("1",))
    assert Match.from_dict(m.as_dict()) == m
    assert m.matches_email("a@x.EXAMPLE") and not m.matches_email("a@y.example")
    assert Match().is_empty() and not m.is_empty()


def test_scrub_removes_plain_json_escaped_and_url_quoted_forms() -> None:
    secret = 'to"k/en+1'
    data = f"a {secret} b {secret.replace(chr(34), chr(92) + chr(34))} c to%22k%2Fen%2B1"
    out = scrub(data, [secret])
    assert b"to" + b'"' + b"k" not in out and b"%22k" not in out and b'\\"k' not in out
    assert out.count(b"[REDACTED]") == 3
    assert scrub("short abc", ["abc"]) == b"short abc"  # trivial values are left alone


def test_canonical_request_hash_ignores_key_order_and_has_no_headers() -> None:
    one = canonical_request_sha256("patch", "http://h/x", {"a": 1, "b": 2})
    assert one == canonical_request_sha256("PATCH", "http://h/x", {"b": 2, "a": 1})


def test_retry_delay_backoff_and_retry_after() -> None:
    client = HttpClient("http://127.0.0.1:1/v2", auth_header="Bearer t0ken", max_retry_after=30)
    assert [client._delay(n, None) for n in range(7)] == [0.25, 0.5, 1, 2, 4, 8, 8]
    assert client._delay(0, "3") == 3.0
    assert client._delay(0, "999") == 30.0  # capped
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    assert 15 < client._delay(0, email.utils.format_datetime(later, usegmt=True)) <= 20
    assert client._delay(2, "not a date") == 1.0
