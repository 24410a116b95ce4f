"""Connections and running the SCIM connector on a case: events, evidence, the grant's
provenance — and the secret nowhere."""

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from offboard.cases.models import AccessGrant
from offboard.cases.services import activate_case, add_register_item, update_register_item
from offboard.connectors import services
from offboard.connectors.base import ObservationStatus, OutcomeStatus
from offboard.connectors.models import Connection, LinkedAccount
from offboard.core.actor import Actor
from offboard.core.errors import PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry
from tests.connectors.peers import FaultProxy, ScimServer
from tests.smtp import free_port


@pytest.fixture
def started(case: Any, alice: Actor) -> Any:
    return case if case.state == "active" else activate_case(actor=alice, case=case)


def grant(actor: Actor, case: Any, principal: str) -> AccessGrant:
    item = add_register_item(
        actor=actor,
        case=case,
        register="access_grants",
        values={
            "direction": "client_in_provider",
            "system": "SCIM directory",
            "principal": principal,
            "privilege": "member",
            "planned_action": "revoke",
        },
    )
    assert isinstance(item, AccessGrant)
    return item


def connection(actor: Actor, url: str, token: str, name: str = "Directory") -> Connection:
    return services.create_connection(
        actor=actor, name=name, kind="scim", config={"url": url}, secret=token
    )


def events(org: Any) -> list[dict[str, Any]]:
    return [
        json.loads(bytes(e.body)) for e in LedgerEntry.objects.filter(org=org).order_by("index")
    ]


def assert_secret_nowhere(org: Any, secret: str, caplog: Any, media_root: str) -> None:
    for entry in LedgerEntry.objects.filter(org=org):
        assert secret.encode() not in bytes(entry.body)
    for path in Path(media_root).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in caplog.text
    row = Connection.objects.filter(org=org).values_list("config", "secret_sealed")
    for config, sealed in row:
        assert secret not in json.dumps(config) and secret not in sealed


def test_connections_are_for_admins_and_events_hold_no_secret(
    cast: dict[str, Actor], scim_server: ScimServer
) -> None:
    alice, bob = cast["alice"], cast["bob"]
    with pytest.raises(PermissionDenied):
        connection(bob, scim_server.url, scim_server.token)
    with pytest.raises(ValidationFailed) as bad:
        services.create_connection(
            actor=alice, name="X", kind="nope", config={}, secret="", recheck_interval_days=0
        )
    assert set(bad.value.errors) == {"kind", "secret", "recheck_interval_days"}
    with pytest.raises(ValidationFailed) as bad:
        services.create_connection(
            actor=alice, name="X", kind="scim", config={"url": "ftp://x"}, secret="s3cret-x"
        )
    assert "config" in bad.value.errors

    conn = connection(alice, scim_server.url, scim_server.token)
    assert conn.recheck_interval_days == 30
    assert services.check_connection(actor=alice, connection=conn).target == scim_server.url
    services.update_connection(
        actor=alice, connection=conn, secret="replaced-token-9", recheck_interval_days=7
    )
    conn.refresh_from_db()
    from offboard.connectors.base import CredentialsRefused

    with pytest.raises(CredentialsRefused) as refused:
        services.check_connection(actor=alice, connection=conn)
    assert "replaced-token-9" not in str(refused.value)
    services.disable_connection(actor=alice, connection=conn)
    with pytest.raises(ValidationFailed, match="disabled"):
        services.check_connection(actor=alice, connection=conn)
    kinds = [e["type"] for e in events(alice.org) if e["type"].startswith("connection.")]
    assert kinds == ["connection.created", "connection.updated", "connection.disabled"]
    for e in events(alice.org):
        text = json.dumps(e)
        assert scim_server.token not in text and "replaced-token-9" not in text


def test_sealed_secret_opens_only_on_its_row(alice: Actor, scim_server: ScimServer) -> None:
    a = connection(alice, scim_server.url, scim_server.token, "A")
    b = connection(alice, scim_server.url, "other-token-1", "B")
    Connection.objects.filter(pk=b.pk).update(secret_sealed=a.secret_sealed)
    b.refresh_from_db()
    from offboard.connectors.base import ConnectorConfigError

    with pytest.raises(ConnectorConfigError, match="cannot be opened"):
        services.open_connector(b)


def test_revoke_then_verify_observed_with_evidence_and_no_secret(
    cast: dict[str, Actor],
    started: Any,
    scim_server: ScimServer,
    domain: str,
    caplog: Any,
    settings: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = cast["alice"]
    ann = scim_server.user(f"ann@{domain}")
    team = scim_server.group(f"{domain}-team", [ann])
    conn = connection(alice, scim_server.url, scim_server.token)
    g = grant(alice, started, f"ann@{domain}")
    missing = grant(alice, started, f"nobody@{domain}")

    runs = services.run_revoke(
        actor=alice, case=started, grants=[g, missing], connection=conn, idempotency_key="k-1"
    )
    assert [o.status for o in runs[0].outcomes] == [OutcomeStatus.REVOKED] * 2
    assert runs[0].observation is not None
    assert runs[0].observation.status == ObservationStatus.ABSENT
    assert "no single account" in runs[1].problem
    assert scim_server.members(team) == []

    g.refresh_from_db()
    assert g.status == "revoked" and g.verification_level == "observed"
    assert g.source == "observed" and g.source_detail["connection_id"] == str(conn.public_id)
    assert g.verified_at is not None and g.actioned_at is not None
    assert g.evidence.count() == 1
    missing.refresh_from_db()
    assert missing.status == "active" and missing.verification_level == ""
    assert LinkedAccount.objects.get(grant=g).external_id == ann

    case_events = [e for e in events(alice.org) if e["type"].startswith("connector.")]
    assert [e["type"] for e in case_events] == [
        "connector.revoked",
        "connector.verified",
        "connector.revoked",
    ]
    revoked, verified, failed = (e["data"] for e in case_events)
    assert revoked["connector"] == {"kind": "scim", "version": "1.0.0"}
    assert revoked["connection_id"] == str(conn.public_id)
    assert revoked["idempotency_key"] == "k-1" and revoked["outcome"] == "revoked"
    assert [o["operation"]["action"] for o in revoked["operations"]] == [
        "remove_member",
        "deactivate",
    ]
    for o in revoked["operations"]:
        assert len(o["request_sha256"]) == 64 and len(o["response_sha256"]) == 64
        assert o["started_at"] and o["ended_at"]
    assert verified["observation"] == "absent" and verified["item"]["source"] == "observed"
    assert verified["evidence_sha256"] in case_events[1]["files"]
    assert failed["outcome"] == "failed" and failed["account"] is None

    # Again with the same key: nothing left to do, and the grant stays observed.
    again = services.run_revoke(
        actor=alice, case=started, grants=[g], connection=conn, idempotency_key="k-1"
    )
    assert {o.status for o in again[0].outcomes} == {OutcomeStatus.ALREADY_ABSENT}
    assert again[0].observed_absent

    assert_secret_nowhere(alice.org, scim_server.token, caplog, settings.MEDIA_ROOT)


def test_staff_cannot_set_observed_and_a_present_read_changes_nothing(
    alice: Actor, started: Any, scim_server: ScimServer, domain: str
) -> None:
    scim_server.user(f"bo@{domain}")
    conn = connection(alice, scim_server.url, scim_server.token)
    g = grant(alice, started, f"bo@{domain}")
    runs = services.run_verify(actor=alice, case=started, grants=[g], connection=conn)
    assert runs[0].observation is not None
    assert runs[0].observation.status == ObservationStatus.PRESENT
    g.refresh_from_db()
    assert g.status == "active" and g.verification_level == ""
    update_register_item(actor=alice, item=g, values={"status": "revoked"})
    with pytest.raises(ValidationFailed, match="connector"):
        update_register_item(actor=alice, item=g, values={"verification_level": "observed"})


def test_server_down_records_failure_never_observed(
    alice: Actor, started: Any, scim_server: ScimServer, domain: str, caplog: Any, settings: Any
) -> None:
    cy = scim_server.user(f"cy@{domain}")
    conn = connection(alice, scim_server.url, scim_server.token)
    g = grant(alice, started, f"cy@{domain}")
    services.run_verify(actor=alice, case=started, grants=[g], connection=conn)  # links it
    assert LinkedAccount.objects.get(grant=g).external_id == cy
    dead = f"http://127.0.0.1:{free_port()}/v2"
    services.update_connection(actor=alice, connection=conn, config={"url": dead, "attempts": 2})
    conn.refresh_from_db()
    runs = services.run_revoke(actor=alice, case=started, grants=[g], connection=conn)
    assert "network error" in runs[0].problem
    g.refresh_from_db()
    assert g.status == "active" and g.verification_level == ""
    last = events(alice.org)[-1]
    assert last["type"] == "connector.revoked" and last["data"]["outcome"] == "failed"
    assert_secret_nowhere(alice.org, scim_server.token, caplog, settings.MEDIA_ROOT)


def test_mid_revoke_failure_then_verify_read_decides(
    alice: Actor, started: Any, scim_server: ScimServer, proxy: FaultProxy, domain: str
) -> None:
    scim_server.user(f"di@{domain}")
    conn = services.create_connection(
        actor=alice,
        name="Via proxy",
        kind="scim",
        config={"url": proxy.url, "attempts": 2},
        secret=scim_server.token,
    )
    g = grant(alice, started, f"di@{domain}")
    proxy.inject("status", 503, 0, times=2, method="PATCH")
    runs = services.run_revoke(actor=alice, case=started, grants=[g], connection=conn)
    assert [o.status for o in runs[0].outcomes] == [OutcomeStatus.FAILED]
    assert runs[0].observation is not None
    assert runs[0].observation.status == ObservationStatus.PRESENT
    g.refresh_from_db()
    assert g.status == "active"
    runs = services.run_revoke(actor=alice, case=started, grants=[g], connection=conn)
    assert runs[0].observed_absent
    g.refresh_from_db()
    assert g.status == "revoked" and g.verification_level == "observed"


def test_the_evidence_pack_carries_the_reads_verifies_and_holds_no_secret(
    alice: Actor, started: Any, scim_server: ScimServer, domain: str, tmp_path: Path
) -> None:
    import zipfile

    from offboard.ledger import keys
    from offboard.packs.export import iter_pack, start_export
    from offboard.packs.verify import parse_key, verify_pack

    scim_server.user(f"eve@{domain}")
    conn = connection(alice, scim_server.url, scim_server.token)
    g = grant(alice, started, f"eve@{domain}")
    [run] = services.run_revoke(actor=alice, case=started, grants=[g], connection=conn)
    assert run.observed_absent
    path = tmp_path / "pack.zip"
    plan = start_export(actor=alice, case=started)
    with path.open("wb") as f:
        for chunk in iter_pack(plan):
            f.write(chunk)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    assert not [n for n, data in members.items() if scim_server.token.encode() in data]
    read = run.observation.raw if run.observation else b""
    assert any(data == read for data in members.values())  # the read itself is in the pack
    report = verify_pack(path, key=parse_key(keys.active_key(alice.org).verifier_key))
    assert not [c.as_dict() for c in report.checks if not c.ok]


@pytest.mark.parametrize("back", [False, True])
def test_offboard_verify_cites_the_latest_connector_read_under_question_3(
    cast: dict[str, Actor],
    case: Any,
    scim_server: ScimServer,
    domain: str,
    tmp_path: Path,
    back: bool,
) -> None:
    """Question 3 for a grant revoked by a connector cites its read of the system — and a later
    read that found the account back outweighs the earlier absent one."""
    from offboard.packs.export import iter_pack, start_export
    from offboard.packs.verify import parse_key, verify_pack
    from tests.factories import close_with_approvals, settle_everything

    alice = cast["alice"]
    case = settle_everything(case, cast)
    fay = scim_server.user(f"fay@{domain}")
    conn = connection(alice, scim_server.url, scim_server.token)
    g = grant(alice, case, f"fay@{domain}")
    [run] = services.run_revoke(actor=alice, case=case, grants=[g], connection=conn)
    assert run.observed_absent
    if back:  # someone turns the account on again before the case closes
        scim_server.call("PATCH", f"/Users/{fay}", {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": True}],
        })  # fmt: skip
        [read] = services.run_verify(actor=alice, case=case, grants=[g], connection=conn)
        assert read.observation is not None and read.observation.status == "present"
    case = close_with_approvals(case, cast)
    plan = start_export(actor=cast["erin"], case=case)
    path = tmp_path / "pack.zip"
    path.write_bytes(b"".join(iter_pack(plan)))
    report = verify_pack(path, key=parse_key(plan.checkpoint.key.verifier_key))
    (q3,) = [a for a in report.answers if a.number == 3]
    (line,) = [r for r in q3.reasons if r.startswith(g.label()) or f"fay@{domain}" in r]
    if back:
        assert not q3.proven
        assert "the latest connector read in the pack found it present" in line
    else:
        assert "observed absent by a system read (data/events/" in line
        # The certificate says the same: who revoked it, and the read that shows it.
        import io
        import re

        from pypdf import PdfReader

        from offboard.cases.state import fresh
        from offboard.reports.certificate import render_certificate

        pdf = PdfReader(io.BytesIO(render_certificate(fresh(case))))
        text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in pdf.pages))
        assert "Revoked by connector Directory (scim) at" in text
        assert "verified absent at" in text
