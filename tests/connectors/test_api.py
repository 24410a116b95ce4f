"""/api/v1/connections and a case's connector runs, against the real SCIM server: the secret
write-only, roles and tenancy, the dry run, a run accepted then carried out by a worker."""

from typing import Any

from offboard.cases.services import activate_case
from offboard.connectors.models import Connection, ConnectorRun
from offboard.jobs.worker import JobRunner
from offboard.ledger.models import LedgerEntry
from tests.api.conftest import Api, fields_of
from tests.connectors.peers import ScimServer
from tests.connectors.test_services import grant
from tests.smtp import free_port


def _add(api: Api, scim_server: ScimServer, name: str = "Directory", **config: Any) -> Any:
    return api.post(
        "/connections",
        {
            "name": name,
            "kind": "scim",
            "config": {"url": scim_server.url, **config},
            "secret": scim_server.token,
        },
    )


def test_connections_through_the_api(api, cast, mallory_api, scim_server: ScimServer) -> None:
    assert _add(api("bob"), scim_server).status_code == 403
    bad = api("alice").post(
        "/connections", {"name": "X", "kind": "nope", "config": {}, "secret": "s3cret-token"}
    )
    assert bad.status_code == 422 and "kind" in fields_of(bad)
    made = _add(api("alice"), scim_server)
    assert made.status_code == 201, made.content
    body = made.json()
    assert "secret" not in body and scim_server.token not in made.content.decode()
    listed = api("bob").get("/connections").json()
    assert [c["name"] for c in listed["items"]] == ["Directory"]
    assert api("bob").post(f"/connections/{body['id']}/check").json()["ok"] is True
    assert mallory_api.post(f"/connections/{body['id']}/check").status_code == 404

    wrong = api("alice").patch("/connections/Directory", {"secret": "wrong-token-1234"})
    assert wrong.status_code == 200
    refused = api("bob").post("/connections/Directory/check")
    assert refused.status_code == 502
    assert refused.json()["error"]["code"] == "upstream_failed"
    assert "refused the credentials" in refused.json()["error"]["message"]
    assert "wrong-token-1234" not in refused.content.decode()

    dead = f"http://127.0.0.1:{free_port()}/v2"
    api("alice").patch("/connections/Directory", {"config": {"url": dead, "attempts": 1}})
    down = api("bob").post("/connections/Directory/check")
    assert down.status_code == 502 and down.json()["error"]["details"]["retryable"] is True

    off = api("alice").post("/connections/Directory/disable")
    assert off.json()["state"] == "disabled"
    assert api("bob").post("/connections/Directory/check").status_code == 422
    for entry in LedgerEntry.objects.all():
        assert scim_server.token.encode() not in bytes(entry.body)


def test_discover_plan_and_a_run_through_the_api(
    api, cast, case, scim_server: ScimServer, domain: str
) -> None:
    alice = cast["alice"]
    if case.state != "active":
        activate_case(actor=alice, case=case)
    ann = scim_server.user(f"ann@{domain}")
    team = scim_server.group(f"{domain}-team", [ann])
    _add(api("alice"), scim_server)
    bob = api("bob")

    found = bob.post("/connections/Directory/discover", {"email_domains": [domain]})
    assert [a["external_id"] for a in found.json()] == [ann]
    empty = bob.post("/connections/Directory/discover", {})
    assert empty.status_code == 422

    g = grant(alice, case, f"ann@{domain}")
    plan = bob.post(
        f"/cases/{case.ref}/connector-plan", {"connection": "Directory", "grants": [g.pk]}
    )
    assert plan.status_code == 200, plan.content
    assert [op["action"] for op in plan.json()["operations"]] == ["remove_member", "deactivate"]
    assert scim_server.members(team) == [ann]

    unknown = bob.post(
        f"/cases/{case.ref}/connector-runs", {"connection": "Directory", "grants": [g.pk + 999]}
    )
    assert unknown.status_code == 422 and "grants" in fields_of(unknown)
    assert (
        api("erin")
        .post(f"/cases/{case.ref}/connector-runs", {"connection": "Directory", "grants": [g.pk]})
        .status_code
        == 403
    )
    accepted = bob.post(
        f"/cases/{case.ref}/connector-runs",
        {"connection": "Directory", "grants": [g.pk], "plan_sha256": plan.json()["plan_sha256"]},
    )
    assert accepted.status_code == 202, accepted.content
    run = accepted.json()
    assert run["state"] == "queued" and run["total"] == 1
    JobRunner().run_ready()
    done = bob.get(f"/cases/{case.ref}/connector-runs/{run['id']}").json()
    assert done["state"] == "done" and done["results"][0]["observation"] == "absent"
    assert bob.get(f"/cases/{case.ref}/connector-runs").json()["count"] == 1
    assert bob.get(f"/cases/{case.ref}/connector-runs/nope").status_code == 404
    assert ConnectorRun.objects.get().plan_sha256 == plan.json()["plan_sha256"]
    assert Connection.objects.count() == 1
