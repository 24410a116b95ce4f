"""The whole journey in Chromium, as the people involved would live it.

alice opens a case from a playbook (/cases/new/ with its preview), completes steps in the
workspace (one with a file dropped on the step's drop zone), adds an access grant and records
its revocation with a dropped screenshot whose sha256 the page shows; the client's contact
acknowledges a deliverable and disputes a handover item on the portal; bob and carol approve
the exact state digest they see; alice closes and downloads the evidence pack, which the
offline verifier accepts.

alice sends the portal link from the workspace's Client portal section (the URL is shown to
her once, and emailed); after the dispute she sees the contact's comment on the item's row and
resolves it by editing the item.

Done through the services rather than the browser, to keep the journey to its essentials:
delivering the work before the portal link (tests/portal's `deliver_work`) and settling the
remaining register items and steps (`settle_everything`).
"""

import datetime as dt
import hashlib
import zipfile

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = b"\x89PNG\r\n\x1a\n" + b"GitHub: agency-bot removed from the organization\n" * 20


def _as(page, username):
    page.context.clear_cookies()
    log_in(page, username)


def test_from_opening_to_a_verified_evidence_pack(
    page, live_server, cast, playbooks, client_contract, tmp_path
):
    from offboard.cases.models import AccessGrant, Deliverable, HandoverItem, OffboardingCase
    from offboard.packs.verify import parse_key, verify_pack

    client, _contract = client_contract

    # --- alice opens a case from the suggested playbook ---------------------------------------
    log_in(page, "alice")
    page.goto(f"/cases/new/?client={client.pk}")
    page.get_by_label("Trigger", exact=True).select_option("non_renewal")
    page.get_by_label("Trigger date").fill("2026-11-02")
    page.get_by_role("button", name="Preview steps and dates").click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Confirm and open the case").click()
    page.wait_for_url("**/cases/C-2026-*/")
    case = OffboardingCase.objects.get(client=client)
    assert case.playbook_version == playbooks["marketing_agency"]
    expect(page.get_by_role("heading", name=f"{case.ref} Northwind Traders")).to_be_visible()

    # --- steps: one done with a dropped file, the next with a note -----------------------------
    notice = case.steps.get(key="confirm_notice")
    row = page.locator(f"#step-{notice.pk}")
    row.locator("summary", has_text="Complete").click()
    row.locator("input.dz-input").set_input_files(
        files=[
            {"name": "notice-reply.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 reply"}
        ]
    )
    row.locator(".dz-sha").wait_for()
    row.get_by_role("button", name="Mark done").click()
    page.locator(f"#step-{notice.pk} .badge.done").wait_for()

    kickoff = case.steps.get(key="exit_kickoff")
    row = page.locator(f"#step-{kickoff.pk}")
    row.locator("summary", has_text="Complete").click()
    row.get_by_label("Note").fill("Kickoff held with the account team on Monday.")
    row.get_by_role("button", name="Mark done").click()
    page.locator(f"#step-{kickoff.pk} .badge.done").wait_for()
    expect(page.locator("#case-header").get_by_text("2 of 17 required")).to_be_visible()

    # --- an access grant added, then revoked with a dropped screenshot ---------------------------
    page.get_by_role("tab", name="Access").click()
    panel = page.locator("#panel-access_grants")
    panel.locator("summary", has_text="Add access grant").click()
    add = panel.locator("#access_grants-add form")
    add.get_by_label("Direction").select_option("provider_in_client")
    add.get_by_label("System").fill("GitHub")
    add.get_by_label("Principal").fill("agency-bot")
    add.get_by_label("Planned action").select_option("revoke")
    add.get_by_role("button", name="Add to access").click()
    # Wait for the page to show the new row before reading the database: the live server's
    # thread shares the in-memory SQLite database, and reading while it writes is "table locked".
    panel.locator("li.item[id^='access_grants-']", has_text="agency-bot").first.wait_for()
    grant = AccessGrant.objects.get(case=case, system="GitHub")
    row = page.locator(f"#access_grants-{grant.pk}")
    row.wait_for()
    row.locator("summary", has_text="Revoke").click()
    revoke = row.locator("details[open] form")
    revoke.get_by_label("Verification").select_option("attested")
    revoke.locator("input.dz-input").set_input_files(
        files=[{"name": "github-removed.png", "mimeType": "image/png", "buffer": SCREENSHOT}]
    )
    shown = revoke.locator(".dz-sha")
    shown.wait_for()
    expected = hashlib.sha256(SCREENSHOT).hexdigest()
    assert shown.get_attribute("data-sha256") == expected
    assert expected in shown.inner_text()
    assert revoke.locator(".dz-name").inner_text() == "github-removed.png"
    revoke.get_by_role("button", name="Record revocation").click()
    page.locator(f"#access_grants-{grant.pk} .verify.v-attested").wait_for()
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.verification_level == "attested"
    assert [f.sha256 for f in grant.evidence.all()] == [expected]
    screenshot(page, "journey-workspace")

    # --- the client's contact: acknowledge one item, dispute another ----------------------------
    from django.core import mail

    from tests.portal.conftest import deliver_work, upload_files

    deliver_work(case, cast, upload_files(cast["alice"]))
    mail.outbox.clear()
    page.goto(f"/cases/{case.ref}/#portal")
    portal = page.locator("#portal")
    portal.locator("summary", has_text="Send a portal link").click()
    nina = client.contacts.get()
    portal.get_by_label("Contact").select_option(str(nina.pk))
    portal.get_by_role("button", name="Send portal link").click()
    shown = page.locator("#portal-issued-url")
    shown.wait_for()
    url = shown.input_value()
    assert url.startswith(live_server.url + "/portal/")
    (message,) = mail.outbox
    assert url in message.body
    expect(portal.get_by_text("emailed to nina@northwind.example")).to_be_visible()
    screenshot(page, "workspace-portal-link-sent", full_page=False)
    report = case.deliverables.order_by("id").first()
    ads = case.handover_items.order_by("id").first()
    page.context.clear_cookies()
    page.goto(url)
    page.get_by_role("link", name=f"Acknowledge {report.title}").click()
    page.get_by_label("Your full name").fill("Nina North")
    page.get_by_label("I confirm that I received").check()
    page.get_by_role("button", name="Acknowledge 1 item").click()
    page.wait_for_url("**/?r=*")
    page.get_by_role("link", name=f"Dispute {ads.name}").click()
    page.get_by_role("textbox", name="What is wrong").fill("We have no admin rights yet.")
    page.get_by_role("button", name="Send dispute").click()
    page.wait_for_url("**/?r=*")
    assert Deliverable.objects.get(pk=report.pk).status == "accepted"
    assert HandoverItem.objects.get(pk=ads.pk).status == "disputed"

    # --- alice sees the dispute where she works and resolves it -----------------------------------
    _as(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    page.get_by_role("tab", name="Handover").click()
    row = page.locator(f"#handover_items-{ads.pk}")
    expect(row.locator(".dispute").get_by_text("We have no admin rights yet.")).to_be_visible()
    row.scroll_into_view_if_needed()
    screenshot(page, "workspace-dispute", full_page=False)
    row.locator("summary", has_text="Edit").click()
    edit = row.locator("details[open] form")
    edit.get_by_label("Status").select_option("handed_over")
    edit.get_by_label("New owner").fill("Northwind IT (admin rights granted)")
    edit.get_by_role("button", name="Save changes").click()
    page.locator(f"#handover_items-{ads.pk} .badge.handed_over").wait_for()
    assert HandoverItem.objects.get(pk=ads.pk).status == "handed_over"

    # --- the rest of the work, then closing -------------------------------------------------------
    from tests.factories import settle_everything

    settle_everything(case, cast)
    page.goto(f"/cases/{case.ref}/")
    assert page.get_by_role("button", name="Close case").is_disabled()  # approvals missing
    page.get_by_role("button", name="Enter closing").click()
    page.wait_for_load_state()
    assert page.locator("#case-header .badge.state").inner_text() == "Closing"

    for approver in ("bob", "carol"):
        _as(page, approver)
        page.goto(f"/cases/{case.ref}/")
        digest = page.locator("#state-digest").inner_text()
        assert len(digest) == 64
        page.get_by_role("button", name="Approve this state").click()
        page.locator("#approvals").get_by_text("You approved this state").wait_for()

    _as(page, "alice")
    page.goto(f"/cases/{case.ref}/")
    expect(page.locator("#closure").get_by_text("the case can be closed")).to_be_visible()
    close = page.get_by_role("button", name="Close case")
    assert close.is_enabled()
    close.click()  # closed is final: a dialog says what closing does, and asks
    dialog = page.get_by_role("dialog", name=f"Close case {case.ref} for good?")
    expect(dialog.get_by_text("nina@northwind.example")).to_be_visible()
    dialog.get_by_role("button", name="Close the case for good").click()
    page.wait_for_load_state()
    assert page.locator("#case-header .badge.state").inner_text() == "Closed"
    expect(page.locator("#closure").get_by_text("Closed is final")).to_be_visible()
    case.refresh_from_db()
    assert case.state == "closed" and case.closed_at.date() <= dt.date.today()

    # --- the evidence pack, downloaded and verified offline -----------------------------------
    with page.expect_download() as download:
        page.get_by_role("button", name="Download evidence pack").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == f"{case.ref}-evidence-pack.zip" and zipfile.is_zipfile(path)
    from offboard.notifications.receipt_email import closure_receipt_file
    from offboard.notifications.selectors import receipt_for

    closure = receipt_for(case).checkpoint
    # The client checks it with the receipt they were sent at closure, trusting nothing else.
    held = closure_receipt_file(case, closure).encode()
    report_ = verify_pack(path, receipt=held)
    assert report_.outcome == "verified", [c.as_dict() for c in report_.checks if not c.ok]
    assert all(a.proven for a in report_.answers[:4]), report_.answers
    assert verify_pack(path, key=parse_key(closure.key.verifier_key)).outcome == "verified"
