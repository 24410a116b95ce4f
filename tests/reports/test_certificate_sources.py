"""The certificate says where each register fact comes from, counted by source, and when it
happened as well as when it was recorded; file names wrap at sensible points; one settlement
item reads as one; a checkpoint is "at this case's closure" only if it was (decision 0008)."""

import datetime as dt
import io
import re

import pytest
from pypdf import PdfReader

from offboard.cases.services import open_case, update_register_item
from offboard.cases.state import fresh
from offboard.core import clock
from offboard.portal.selectors import link_for_token, manifest, manifest_digest
from offboard.portal.services import acknowledge_items, issue_portal_link
from offboard.reports.certificate import render_certificate
from tests.factories import close_with_approvals, settle_everything, upload
from tests.portal.conftest import token_of


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def fixed_case(alice, playbooks, client_contract):
    """A fixed-fee exit: its only settlement item is the final invoice."""
    from offboard.clients.services import create_contract

    client, _ = client_contract
    contract = create_contract(
        actor=alice,
        client=client,
        reference="NW-2025-02",
        service_type="marketing_agency",
        fee_type="fixed",
        start_date=dt.date(2025, 3, 1),
        end_date=dt.date(2026, 12, 31),
    )
    return open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="contract_expiry",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"],
    )


def test_each_answer_counts_its_facts_by_source_and_never_merges_them(fixed_case, cast):
    alice = cast["alice"]
    case = settle_everything(fixed_case, cast)  # every handover item handed over by staff
    by_client, by_staff = case.handover_items.order_by("id")[:2]
    nina = case.client.contacts.get()
    issued = issue_portal_link(
        actor=alice, case=case, contact=nina, base_url="http://unused", send_email=False
    )
    acknowledge_items(
        link=link_for_token(token_of(issued.url)),
        items=[f"handover_item:{by_client.pk}"],
        typed_name="Nina North",
        confirmed=True,
        manifest_sha256=manifest_digest(manifest(case)),
        ip=None,
        user_agent=None,
    )
    happened = (clock.now() - dt.timedelta(days=4)).replace(second=0, microsecond=0)
    update_register_item(
        actor=alice,
        item=by_staff,
        values={"status": "acknowledged", "acknowledged_at": happened},
    )
    rest = case.handover_items.count() - 2
    report = upload(alice, b"%PDF-1.4 long name\n", "final_campaign_performance_report_v3.pdf")
    update_register_item(
        actor=alice, item=case.deliverables.order_by("id").first(), values={}, evidence=[report]
    )

    text = _text(render_certificate(fresh(case)))
    flat = _flat(text)

    assert (
        f"How each is known: 1 acknowledged by the client in the portal (Nina North); "
        f"1 acknowledged, recorded by staff (Alice); {rest} handed over, recorded by staff "
        "(Alice)." in flat
    )
    assert "client acknowledged" not in flat  # a staff record is never the client's word
    assert (
        f"Sources — {rest + 2} handover items: 1 acknowledged by the client in the portal" in flat
    )
    when = happened.strftime("%Y-%m-%d %H:%M UTC")
    assert re.search(rf"Happened {when}, recorded \d{{4}}-\d\d-\d\d \d\d:\d\d UTC", flat)
    assert "Acknowledged by the client in the portal — Nina North" in flat
    assert "Acknowledged — recorded by staff (Alice)" in flat
    # Deliverables, access, data and money say it too.
    assert "accepted, recorded by staff (Alice)" in flat
    assert "revoked, recorded by staff (Alice)" in flat
    assert "done, recorded by staff (Alice)" in flat
    # One settlement item reads as one.
    assert (
        "The one settlement item is paid. How each is known: 1 paid, recorded by staff (Dave)."
        in flat
    )
    assert "All 1 " not in flat
    # A long file name wraps only after _ - . (never mid-word, as in "deliverable-1.p df").
    assert re.search(r"final_\s?campaign_\s?performance_\s?report_\s?v3\.\s?pdf", text)
    assert not re.search(r"\.p\s+df|\.pd\s+f", text)


def test_the_checkpoint_is_at_this_cases_closure_only_if_it_was(case, fixed_case, cast):
    first = close_with_approvals(settle_everything(case, cast), cast)
    own = _flat(_text(render_certificate(fresh(first))))
    assert "(signed at this case's closure)" in own

    second = close_with_approvals(settle_everything(fixed_case, cast), cast)
    later = _flat(_text(render_certificate(fresh(first))))  # now covered by the later checkpoint
    assert "(signed at this case's closure)" not in later
    assert f"signed at the closure of case {second.ref}" in later


ONE_GRANT = """
slug: one-grant
name: One grant
service_type: consulting
fee_types: [fixed]
approval_policy: {min_approvers: 1, roles: [manager]}
steps:
  - {key: confirm_notice, phase: notice, title: Confirm the notice, owner_role: case_owner,
     due: {from: trigger, offset_days: 2}}
seeds:
  access_grants:
    - {direction: provider_in_client, system: GitHub, principal: acme-bot, planned_action: revoke}
  handover_items:
    - {kind: vault_entry, name: Deploy key}
"""


def test_one_of_anything_reads_as_one_and_codes_read_as_words(alice, cast, client_contract):
    """ "The one access grant was dealt with", not "All 1 access grant … were"; a case of one
    event says "the one event … is a leaf"; kinds and statuses are words, not codes."""
    from offboard.clients.services import create_contract
    from offboard.ledger.checkpoints import issue_checkpoint
    from offboard.playbooks.services import import_playbook

    client, _ = client_contract
    contract = create_contract(
        actor=alice,
        client=client,
        reference="NW-2025-03",
        service_type="consulting",
        fee_type="fixed",
        start_date=dt.date(2025, 3, 1),
        end_date=dt.date(2026, 12, 31),
    )
    opened = open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="contract_expiry",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=import_playbook(actor=alice, source=ONE_GRANT),
    )
    issue_checkpoint(org=opened.org, reason="requested")
    just_opened = _flat(_text(render_certificate(fresh(opened))))
    assert "the one event of this case is a leaf of the organization's" in just_opened
    assert "all 1 event" not in just_opened

    closed = close_with_approvals(settle_everything(opened, cast), cast)
    flat = _flat(_text(render_certificate(fresh(closed))))
    assert "The one access grant was dealt with: 1 revoked" in flat
    assert "All 1 " not in flat and "all 1 " not in flat
    assert "VAULT ENTRY Deploy key" in flat  # the kind in words (small capitals on the page)
    assert "vault_entry" not in flat.lower()
    assert "status: planned → handed over" in flat
    assert "planned → handed_over" not in flat
