"""How a run records many grants: the steps the run settles are completed once, by its last
read's event; a batch of grants shares a transaction; links are read once."""

from typing import Any

import pytest

from offboard.cases.models import AccessGrant
from offboard.cases.services import (
    activate_case,
    mark_step_not_applicable,
    update_register_item,
)
from offboard.connectors import services
from offboard.connectors.base import Match
from offboard.connectors.models import LinkedAccount
from offboard.core.actor import Actor
from offboard.ledger.models import LedgerEntry
from tests.connectors.peers import ScimServer
from tests.connectors.test_services import connection, events, grant


@pytest.fixture
def started(case: Any, alice: Actor) -> Any:
    return case if case.state == "active" else activate_case(actor=alice, case=case)


def test_a_run_completes_the_step_it_settles_with_its_last_read(
    alice: Actor, started: Any, scim_server: ScimServer, domain: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services, "RECORD_BATCH", 2)  # three grants: two transactions
    mark_step_not_applicable(
        actor=alice, step=started.steps.get(key="handover_creative"), reason="nothing to hand"
    )
    # The playbook's own client-side grants are not the step's business here.
    for item in AccessGrant.objects.filter(case=started, direction="client_in_provider"):
        update_register_item(actor=alice, item=item, values={"direction": "provider_in_client"})
    users = [scim_server.user(f"u{i}@{domain}") for i in range(3)]
    scim_server.group(f"{domain}-team", users[:2])
    conn = connection(alice, scim_server.url, scim_server.token)
    grants = [grant(alice, started, f"u{i}@{domain}") for i in range(3)]
    # The first grant's account was linked before: read with the others, not linked again.
    first = services.discover_accounts(
        actor=alice, connection=conn, match=Match(ids=(f"u0@{domain}",))
    )[0]
    LinkedAccount.objects.create(
        org=alice.org,
        connection=conn,
        grant=grants[0],
        external_id=first.external_id,
        account=first.as_dict(),
        created_at=started.created_at,
    )
    seen: list[int] = []

    runs = services.run_revoke(
        actor=alice,
        case=started,
        grants=grants,
        connection=conn,
        progress=lambda done, total: seen.append(done),
    )

    assert all(r.observed_absent for r in runs) and seen == [1, 2, 3]
    step = started.steps.get(key="revoke_client_access")
    assert step.status == "done"
    kinds = [e for e in events(alice.org) if e["type"].startswith("connector.")]
    assert [e["type"] for e in kinds] == ["connector.revoked", "connector.verified"] * 3
    # Linked by the revoke event when it was not before; never looked up again.
    linked = [e["data"]["account_linked"] for e in kinds]
    assert linked == [False, False, True, False, True, False]
    verified = [e["data"] for e in kinds if e["type"] == "connector.verified"]
    assert [bool(d.get("completes_steps")) for d in verified] == [False, False, True]
    assert verified[-1]["completes_steps"][0]["step"] == "revoke_client_access"
    last = LedgerEntry.objects.filter(case=started, type="connector.verified").order_by("index")
    assert step.settled_by["event"] == list(last)[-1].index
    assert LinkedAccount.objects.filter(connection=conn).count() == 3
