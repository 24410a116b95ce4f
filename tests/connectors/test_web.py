"""The connector pages: Settings → Connections (admins add, test, edit, disable; the secret
never shown again), and a case's Discover access / Revoke with connector / run page, against the
real SCIM server."""

import re
from typing import Any

from django.test import Client

from offboard.cases.models import AccessGrant
from offboard.cases.services import activate_case
from offboard.connectors.models import Connection, ConnectorRun, LinkedAccount
from offboard.core.actor import Actor
from offboard.jobs.worker import JobRunner
from offboard.ledger.models import LedgerEntry
from tests.connectors.peers import ScimServer
from tests.smtp import free_port


def _browser(actor: Actor) -> Client:
    web = Client()
    web.force_login(actor.user)
    return web


def _add(web: Client, url: str, token: str, name: str = "Directory") -> Any:
    return web.post(
        "/settings/connections/",
        {
            "kind": "scim",
            "name": name,
            "config_url": url,
            "secret": token,
            "recheck_interval_days": "30",
        },
    )


def test_admins_add_test_edit_and_disable_a_connection_and_its_secret_is_never_shown(
    cast: dict[str, Actor], scim_server: ScimServer
) -> None:
    web = _browser(cast["alice"])
    page = web.get("/settings/").content.decode()
    assert 'id="connections"' in page and "Add a SCIM 2.0 directory connection" in page

    bad = _add(web, "not a url", scim_server.token)
    assert bad.status_code == 422 and "was not added" in bad.content.decode()
    assert not Connection.objects.exists()

    added = _add(web, scim_server.url, scim_server.token)
    assert added.status_code == 200 and "Connection “Directory” added" in added.content.decode()
    conn = Connection.objects.get()
    assert scim_server.token not in added.content.decode()

    ok = web.post(f"/settings/connections/{conn.pk}/test").content.decode()
    assert "flash-ok" in ok and scim_server.token not in ok

    edited = web.post(
        f"/settings/connections/{conn.pk}/edit",
        {"name": "Client IdP", "config_url": scim_server.url, "secret": "wrong-token-123"},
    )
    assert edited.status_code == 302
    refused = web.post(f"/settings/connections/{conn.pk}/test").content.decode()
    assert "credentials were refused" in refused and "wrong-token-123" not in refused

    dead = f"http://127.0.0.1:{free_port()}/v2"
    web.post(
        f"/settings/connections/{conn.pk}/edit",
        {"name": "Client IdP", "config_url": dead, "config_attempts": "1", "secret": "x" * 12},
    )
    down = web.post(f"/settings/connections/{conn.pk}/test").content.decode()
    assert "flash-bad" in down and "network error" in down

    assert web.post(f"/settings/connections/{conn.pk}/disable").status_code == 302
    conn.refresh_from_db()
    assert conn.state == "disabled" and conn.name == "Client IdP"
    for entry in LedgerEntry.objects.filter(org=cast["alice"].org):
        assert scim_server.token.encode() not in bytes(entry.body)

    # Not an admin: no card, and every action is refused.
    bob = _browser(cast["bob"])
    assert 'id="connections"' not in bob.get("/settings/").content.decode()
    assert _add(bob, scim_server.url, scim_server.token).status_code == 403
    assert bob.post(f"/settings/connections/{conn.pk}/test").status_code == 403
    assert bob.post(f"/settings/connections/{conn.pk}/disable").status_code == 403


def test_another_organizations_connection_is_a_404(
    cast: dict[str, Actor], mallory: Actor, scim_server: ScimServer
) -> None:
    _add(_browser(cast["alice"]), scim_server.url, scim_server.token)
    conn = Connection.objects.get()
    web = _browser(mallory)
    assert web.post(f"/settings/connections/{conn.pk}/test").status_code == 404
    assert web.post(f"/settings/connections/{conn.pk}/disable").status_code == 404


def test_discover_then_revoke_with_the_plan_shown_and_the_run_page(
    cast: dict[str, Actor], case: Any, scim_server: ScimServer, domain: str
) -> None:
    alice, bob = cast["alice"], cast["bob"]
    if case.state != "active":
        activate_case(actor=alice, case=case)
    ann = scim_server.user(f"ann@{domain}")
    scim_server.user(f"ben@{domain}")
    scim_server.user("someone@elsewhere.example")
    team = scim_server.group(f"{domain}-team", [ann])
    _add(_browser(alice), scim_server.url, scim_server.token)
    conn = Connection.objects.get()
    web = _browser(bob)

    form = web.get(f"/cases/{case.ref}/connectors/discover/").content.decode()
    assert "northwind.example" in form  # prefilled from the client's contacts
    found = web.post(
        f"/cases/{case.ref}/connectors/discover/",
        {"do": "find", "connection": conn.pk, "domains": domain},
    ).content.decode()
    assert f"ann@{domain}" in found and f"ben@{domain}" in found
    assert "someone@elsewhere" not in found
    added = web.post(
        f"/cases/{case.ref}/connectors/discover/",
        {
            "do": "add",
            "connection": conn.pk,
            "domains": domain,
            "account": [ann],
            "direction": "client_in_provider",
        },
    )
    assert added.status_code == 302
    (g,) = AccessGrant.objects.filter(case=case, system="Directory")
    assert (g.principal, g.system, g.planned_action) == (f"ann@{domain}", "Directory", "revoke")
    assert LinkedAccount.objects.get(grant=g).external_id == ann

    plan = web.post(
        f"/cases/{case.ref}/connectors/revoke/",
        {"do": "plan", "connection": conn.pk, "grant": [g.pk]},
    ).content.decode()
    assert "remove_member" in plan and "deactivate" in plan and "Revoke now" in plan
    assert plan.index("remove_member") < plan.index("deactivate")
    assert scim_server.members(team) == [ann]  # the plan changed nothing
    sha = re.search(r'name="plan_sha256" value="([0-9a-f]{64})"', plan)
    assert sha

    go = web.post(
        f"/cases/{case.ref}/connectors/revoke/",
        {"do": "run", "connection": conn.pk, "grant": [g.pk], "plan_sha256": sha.group(1)},
    )
    assert go.status_code == 302
    run = ConnectorRun.objects.get()
    assert go["Location"] == f"/cases/{case.ref}/connectors/runs/{run.public_id}/"
    waiting = web.get(go["Location"]).content.decode()
    assert "Waiting for a worker" in waiting and 'hx-trigger="every 1s"' in waiting

    JobRunner().run_ready()
    done = web.get(go["Location"]).content.decode()
    assert "Finished" in done and "observed absent" in done and "hx-trigger" not in done
    g.refresh_from_db()
    assert g.verification_level == "observed"
    workspace = web.get(f"/cases/{case.ref}/").content.decode()
    assert "Revoked by connector Directory (scim) at" in workspace
    assert "verified absent at" in workspace

    # Another organization's member sees none of it.
    assert _browser(cast["erin"]).get(go["Location"]).status_code == 200  # auditors may read
    assert Client().get(go["Location"]).status_code == 302  # log in first


def test_the_run_page_of_another_case_or_org_is_a_404(
    cast: dict[str, Actor], mallory: Actor, case: Any, scim_server: ScimServer, domain: str
) -> None:
    alice = cast["alice"]
    if case.state != "active":
        activate_case(actor=alice, case=case)
    scim_server.user(f"cy@{domain}")
    _add(_browser(alice), scim_server.url, scim_server.token)
    web = _browser(alice)
    web.post(
        f"/cases/{case.ref}/connectors/discover/",
        {
            "do": "add",
            "connection": Connection.objects.get().pk,
            "domains": domain,
            "account": [],
            "direction": "client_in_provider",
        },
    )
    assert _browser(mallory).get(f"/cases/{case.ref}/connectors/revoke/").status_code == 404
    assert web.get(f"/cases/{case.ref}/connectors/runs/not-a-uuid/").status_code == 404
