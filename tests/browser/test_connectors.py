"""Revoking a grant through the workspace against the real SCIM server: Access tab → Revoke
with connector → the plan → Revoke now → the run's page → the grant observed on the case."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.connectors.peers import ScimServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scim():
    server = ScimServer().start()
    yield server
    server.stop()


def test_a_manager_revokes_access_with_a_connector_from_the_workspace(
    page, case, cast, scim, settings
):
    from offboard.cases.models import AccessGrant
    from offboard.cases.services import activate_case, add_register_item
    from offboard.connectors.services import create_connection

    # The worker is this process: the run goes ahead as soon as it is requested (the run
    # page's live progress is shown by tests/connectors/test_web.py with a real queue).
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    alice = cast["alice"]
    if case.state != "active":
        activate_case(actor=alice, case=case)
    ann = scim.user("ann@northwind.example")
    team = scim.group("northwind-team", [ann])
    create_connection(
        actor=alice, name="Client IdP", kind="scim", config={"url": scim.url}, secret=scim.token
    )
    grant = add_register_item(
        actor=alice,
        case=case,
        register="access_grants",
        values={
            "direction": "client_in_provider",
            "system": "Client IdP",
            "principal": "ann@northwind.example",
            "planned_action": "revoke",
        },
    )

    log_in(page, "bob")
    page.goto(f"/cases/{case.ref}/")
    page.get_by_role("tab", name="Access").click()
    page.get_by_role("link", name="Revoke with connector").click()
    page.wait_for_url("**/connectors/revoke/")
    for box in page.locator("input[name=grant]").all():
        if box.get_attribute("value") != str(grant.pk):
            box.uncheck()
    page.get_by_role("button", name="Show the plan").click()
    expect(page.get_by_role("heading", name="The plan: 2 operations in Client IdP")).to_be_visible()
    expect(page.get_by_text("remove_member")).to_be_visible()
    assert scim.members(team) == [ann]  # showing the plan changed nothing
    assert axe_violations(page) == []
    screenshot(page, "connector-plan")

    page.get_by_role("button", name="Revoke now").click()
    page.wait_for_url("**/connectors/runs/*/")
    expect(page.get_by_role("heading", name="Finished")).to_be_visible()
    expect(page.get_by_text("✓ observed absent")).to_be_visible()
    expect(page.get_by_text("1 of 1 access grant recorded")).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "connector-run")
    assert scim.members(team) == []

    page.get_by_role("link", name="Back to the Access tab").click()
    row = page.locator(f"#access_grants-{grant.pk}")
    expect(row.locator(".verify.v-observed")).to_be_visible()
    expect(row.get_by_text("Revoked by connector Client IdP (scim) at")).to_be_visible()
    fresh = AccessGrant.objects.get(pk=grant.pk)
    assert (fresh.status, fresh.verification_level, fresh.source) == (
        "revoked",
        "observed",
        "observed",
    )
