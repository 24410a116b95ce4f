"""The workspace's step rows show the register items a step is about, with links to them, and
that settling them completed it; an HTMX revocation refreshes the step it completed."""

import re

import pytest
from django.test import Client

from offboard.cases import selectors
from offboard.cases.services import mark_step_not_applicable, update_register_item
from tests.factories import upload

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def alice_web(cast):
    c = Client()
    c.force_login(cast["alice"].user)
    return c


def _row(body: str, step) -> str:
    """The HTML of one step's row."""
    found = re.search(rf'<li id="step-{step.pk}".*?</li>\s*(?=<li id="step-|</ol>)', body, re.S)
    assert found, f"no row for step {step.key}"
    return found[0]


def _free(case, alice, key):
    for dep in selectors.get_step(case, key).depends_on:
        _free(case, alice, dep)
        dep_step = selectors.get_step(case, dep)
        if dep_step.status not in ("done", "not_applicable"):
            mark_step_not_applicable(actor=alice, step=dep_step, reason="Not in this test")


def test_a_step_row_links_to_the_items_it_is_about(alice_web, case):
    step = selectors.get_step(case, "revoke_client_access")
    grants = list(case.access_grants.filter(direction="client_in_provider").order_by("id"))

    row = _row(alice_web.get(f"/cases/{case.ref}/").content.decode(), step)

    assert "About:" in row
    for g in grants:
        assert f'href="#access_grants-{g.pk}"' in row
    ours = case.access_grants.filter(direction="provider_in_client").first()
    assert f'href="#access_grants-{ours.pk}"' not in row  # another step's items
    assert "2 of 2 still open; the step completes by itself once all are settled" in row
    assert "of a kind it accepts, after Hand over creative source files and brand assets." in row
    other = selectors.get_step(case, "confirm_notice")
    assert "About:" not in _row(alice_web.get(f"/cases/{case.ref}/").content.decode(), other)


def test_revoking_the_last_grant_with_htmx_shows_the_step_completed_by_its_items(
    alice_web, case, cast
):
    alice = cast["alice"]
    _free(case, alice, "revoke_client_access")
    first, second = case.access_grants.filter(direction="client_in_provider").order_by("id")
    proof = upload(alice, b"%PDF-1.4 removed users\n", "removed.pdf")
    update_register_item(
        actor=alice,
        item=first,
        values={"status": "revoked", "verification_level": "attested"},
        evidence=[proof],
    )

    response = alice_web.post(
        f"/cases/{case.ref}/registers/access_grants/{second.pk}/revoke",
        {"verification_level": "attested", "evidence": [proof.sha256]},
        **HX,
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="steps"' in body  # the steps are refreshed with the register panel
    step = selectors.get_step(case, "revoke_client_access")
    assert step.status == "done"
    row = _row(body, step)
    assert 'class="badge done"' in row
    assert "Completed by settling 2 items: their files are its evidence" in row
    assert f"event #{step.settled_by['event']}" in row
    for g in (first, second):
        assert f'href="#access_grants-{g.pk}"' in row
    # The shared regions the step form swaps itself do not include the steps section.
    page = alice_web.get(f"/cases/{case.ref}/").content.decode()
    row_form = re.search(r'hx-target="#step-\d+"[^>]*hx-select-oob="([^"]*)"', page)
    assert row_form and "#steps" not in row_form[1]


def test_a_client_ack_step_says_the_client_acknowledges_in_the_portal(alice_web, case):
    step = selectors.get_step(case, "transfer_ad_accounts")
    row = _row(alice_web.get(f"/cases/{case.ref}/").content.decode(), step)
    assert "The client acknowledges in the portal" in row and 'href="#portal"' in row


def test_a_step_completed_by_the_client_s_acknowledgement_names_it(alice_web, case, cast):
    from tests.cases.test_linked_steps import acknowledge

    alice = cast["alice"]
    _free(case, alice, "handover_creative")
    step = selectors.get_step(case, "handover_creative")
    items = list(case.handover_items.filter(kind__in=["document", "licence"]).order_by("id"))
    for h in items:
        update_register_item(
            actor=alice, item=h, values={"status": "handed_over", "method": "Shared drive"}
        )
    row = _row(alice_web.get(f"/cases/{case.ref}/").content.decode(), step)
    assert "All its items are settled, but their records are not evidence this step takes" in row

    event = acknowledge(case, alice, items)

    row = _row(alice_web.get(f"/cases/{case.ref}/").content.decode(), step)
    assert 'class="badge done"' in row
    assert "Completed by settling 2 items, acknowledged by the client in the portal" in row
    assert "Nina North" in row and f"event #{event.index}" in row
    assert f"list sha256 {event.data['manifest_sha256'][:8]}" in row
    assert row.count("client · portal") == 2
