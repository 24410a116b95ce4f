"""`offboard connector …` against the real SCIM server."""

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from offboard.cli import app
from offboard.core.actor import Actor
from tests.connectors.peers import ScimServer
from tests.smtp import free_port


@pytest.fixture(autouse=True)
def _identity(monkeypatch: Any, cast: dict[str, Actor]) -> None:
    monkeypatch.setenv("OFFBOARD_ORG", "acme")
    monkeypatch.setenv("OFFBOARD_USER", "alice")
    monkeypatch.delenv("SCIM_TOKEN", raising=False)


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def test_add_list_check_discover_plan_revoke_verify(
    monkeypatch: Any, scim_server: ScimServer, domain: str, case: Any, alice: Actor
) -> None:
    ann = scim_server.user(f"ann@{domain}")
    scim_server.group(f"{domain}-team", [ann])
    monkeypatch.setenv("SCIM_TOKEN", scim_server.token)
    added = run(
        "connector",
        "add",
        "Dir",
        "--kind",
        "scim",
        "--url",
        scim_server.url,
        "--secret-env",
        "SCIM_TOKEN",
        "--json",
    )
    assert added.exit_code == 0, added.output
    assert scim_server.token not in added.output

    listed = run("connector", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["kind"] == "scim"
    assert scim_server.token not in listed.output
    table = run("connector", "list")
    assert "Dir" in table.output and "scim" in table.output

    ok = run("connector", "check", "Dir")
    assert ok.exit_code == 0 and "OK: SCIM 2.0" in ok.output

    found = run("connector", "discover", "Dir", "--domain", domain, "--json")
    assert found.exit_code == 0, found.output
    assert [a["external_id"] for a in json.loads(found.output)] == [ann]
    assert run("connector", "discover", "Dir").exit_code == 1  # nothing to match on

    planned = run("connector", "plan", "Dir", "--domain", domain, "--json")
    ops = json.loads(planned.output)["operations"]
    assert [o["action"] for o in ops] == ["remove_member", "deactivate"]
    assert "Remove" in run("connector", "plan", "Dir", "--domain", domain).output

    from offboard.cases.services import add_register_item

    g = add_register_item(
        actor=alice,
        case=case,
        register="access_grants",
        values={
            "direction": "client_in_provider",
            "system": "Directory",
            "principal": f"ann@{domain}",
            "planned_action": "revoke",
        },
    )
    assert run("connector", "verify", case.ref, "Dir", "--grant", str(g.pk)).exit_code == 1
    revoked = run("connector", "revoke", case.ref, "Dir", "--grant", str(g.pk), "--json")
    assert revoked.exit_code == 0, revoked.output
    [row] = json.loads(revoked.output)
    assert row["observation"]["status"] == "absent"
    assert scim_server.token not in revoked.output


def test_check_errors_are_one_clear_line(monkeypatch: Any, scim_server: ScimServer) -> None:
    monkeypatch.setenv("SCIM_TOKEN", "wrong-token-42")
    run(
        "connector",
        "add",
        "Bad",
        "--kind",
        "scim",
        "--url",
        scim_server.url,
        "--secret-env",
        "SCIM_TOKEN",
    )
    bad = run("connector", "check", "Bad")
    assert bad.exit_code == 1 and "refused the connection's credentials" in bad.output
    assert "wrong-token-42" not in bad.output

    down = f"http://127.0.0.1:{free_port()}/v2"
    run(
        "connector",
        "add",
        "Down",
        "--kind",
        "scim",
        "--url",
        down,
        "--config",
        "attempts=1",
        "--secret-env",
        "SCIM_TOKEN",
    )
    result = run("connector", "check", "Down")
    assert result.exit_code == 1 and "network error" in result.output
    assert run("connector", "check", "Nope").exit_code == 1
