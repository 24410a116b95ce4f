"""The portal page: what the contact sees, what they may download, and what an invalid link
shows (nothing)."""

import datetime as dt
import re

import pytest
from django.test import Client

from offboard.cases.models import OffboardingCase
from offboard.portal.models import PortalLink
from offboard.portal.selectors import manifest, manifest_digest
from offboard.portal.services import revoke_portal_link
from tests.factories import close_with_approvals, settle_everything
from tests.portal.conftest import INTERNAL_NOTE, VAULT_REFERENCE, move_clock, shown_digest


def test_the_page_shows_the_case_its_items_and_their_files(visitor, token, portal_case, files):
    response = visitor.get(f"/portal/{token}/")
    body = response.content.decode()

    assert response.status_code == 200
    assert portal_case.ref in body
    assert "Northwind Traders" in body and "Acme Digital" in body
    assert "Hello Nina North" in body
    for d in portal_case.deliverables.all():
        assert d.title in body
    for f in files.values():
        assert f.original_name in body
        assert f.sha256 in body  # in full (hover and copy), besides the short form
        assert f"{f.sha256[:12]}…" in body
        assert f"/portal/{token}/files/{f.sha256}" in body
    assert body.count("Awaiting your response") == 4  # 2 deliverables, 2 handover items


def test_the_page_embeds_the_digest_of_exactly_its_manifest(visitor, token, portal_case):
    body = visitor.get(f"/portal/{token}/").content.decode()

    assert shown_digest(body) == manifest_digest(manifest(portal_case))


def test_the_page_has_strict_security_headers(visitor, token):
    response = visitor.get(f"/portal/{token}/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_page_leaks_nothing_internal_nor_about_staff_or_other_clients(
    visitor, token, portal_case, other_case, cast
):
    body = visitor.get(f"/portal/{token}/").content.decode()

    assert INTERNAL_NOTE not in body  # register notes are internal
    assert VAULT_REFERENCE not in body  # so are references to where secrets are kept
    assert "Contoso" not in body and other_case.ref not in body
    assert other_case.secret_file.sha256 not in body
    for name in cast:  # no staff usernames or emails
        assert f"{name}@acme.example" not in body
    for username in ("bob", "carol", "dave", "erin", "oscar"):
        assert username not in body.lower()
    assert "Alice" in body  # the case owner's display name, as the contact's contact


def test_the_page_records_when_the_link_was_last_used(visitor, token, issued):
    assert issued.link.last_used_at is None
    visitor.get(f"/portal/{token}/")
    assert PortalLink.objects.get(pk=issued.link.pk).last_used_at is not None


def test_a_file_of_the_case_downloads_as_an_attachment(visitor, token, files):
    f = files["report"]
    response = visitor.get(f"/portal/{token}/files/{f.sha256}")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 final campaign report\n" * 40
    assert response["Content-Disposition"] == 'attachment; filename="final-report.pdf"'
    assert response["Content-Type"] == "application/pdf"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "no-store"


def test_a_download_is_a_ledger_event_naming_the_file_and_the_contact(
    visitor, token, files, issued
):
    from offboard.ledger.models import LedgerEntry

    f = files["report"]
    visitor.get(f"/portal/{token}/files/{f.sha256}", REMOTE_ADDR="203.0.113.9")
    event = LedgerEntry.objects.order_by("-index").first()
    assert event.type == "portal.file_downloaded" and event.case_id == issued.link.case_id
    assert event.data["file"] == {"sha256": f.sha256, "name": "final-report.pdf", "size": f.size}
    assert event.files == [f.sha256]
    assert event.actor["contact_id"] == issued.link.contact_id
    assert event.actor["ip"] == "203.0.113.9" and "PortalTest" in event.actor["user_agent"]
    before = LedgerEntry.objects.count()
    visitor.get(f"/portal/{token}/files/{'0' * 64}")  # not the case's: nothing recorded
    assert LedgerEntry.objects.count() == before


def test_another_cases_file_is_not_found_through_the_link(visitor, token, other_case, alice):
    from tests.factories import upload

    unattached = upload(alice, b"%PDF-1.4 an internal file on no item\n", "internal.pdf")
    for sha in (other_case.secret_file.sha256, unattached.sha256, "0" * 64, "not-a-hash"):
        response = visitor.get(f"/portal/{token}/files/{sha}")
        assert response.status_code == 404
        assert b"Contoso" not in response.content


@pytest.fixture
def invalid_pages(visitor, issued, token, alice, monkeypatch, portal_case, nina):
    """The page for an unknown token, an expired link and a revoked link."""
    from offboard.portal.services import issue_portal_link
    from tests.portal.conftest import BASE, token_of

    pages = {"unknown": visitor.get("/portal/" + "A" * 43 + "/")}
    pages["malformed"] = visitor.get("/portal/x/")
    revoked = issue_portal_link(actor=alice, case=portal_case, contact=nina, base_url=BASE)
    revoke_portal_link(actor=alice, link=revoked.link, reason="Sent to the wrong person")
    pages["revoked"] = visitor.get(f"/portal/{token_of(revoked.url)}/")
    pages["revoked file"] = visitor.get(
        f"/portal/{token_of(revoked.url)}/files/{portal_case.deliverables.first().pk}"
    )
    move_clock(monkeypatch, dt.timedelta(days=31))
    pages["expired"] = visitor.get(f"/portal/{token}/")
    pages["expired acknowledge"] = visitor.get(f"/portal/{token}/acknowledge/")
    return pages


def test_unknown_expired_and_revoked_links_show_the_same_page_revealing_nothing(
    invalid_pages, portal_case
):
    bodies = {name: r.content for name, r in invalid_pages.items()}

    assert {r.status_code for r in invalid_pages.values()} == {404}
    assert len(set(bodies.values())) == 1, "every invalid link must get the same bytes"
    body = bodies["expired"].decode()
    assert "This link is no longer valid" in body
    assert "ask your contact at the company for a new one" in body.lower()
    for revealing in (
        portal_case.ref,
        "Northwind",
        "Nina",
        "Acme",
        "Alice",
        "alice",
        portal_case.deliverables.first().title,
    ):
        assert revealing not in body
    assert invalid_pages["expired"]["Cache-Control"] == "no-store"
    assert invalid_pages["unknown"]["Referrer-Policy"] == "no-referrer"


def test_a_closed_case_shows_its_final_record_without_actions(
    visitor, issued, token, portal_case, cast
):
    closed = close_with_approvals(settle_everything(portal_case, cast), cast)
    assert closed.state == OffboardingCase.State.CLOSED

    body = visitor.get(f"/portal/{token}/").content.decode()

    assert "This offboarding is complete" in body
    assert "final record" in body
    assert "/acknowledge/?" not in body and "/dispute/?" not in body
    assert 'name="item"' not in body


def test_the_page_runs_a_bounded_number_of_queries(
    visitor, token, portal_case, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20):
        assert visitor.get(f"/portal/{token}/").status_code == 200


def test_forms_need_a_csrf_token(token, visitor):
    strict = Client(enforce_csrf_checks=True)
    digest = shown_digest(visitor.get(f"/portal/{token}/").content.decode())

    response = strict.post(
        f"/portal/{token}/dispute/",
        {"item": "deliverable:1", "comment": "x", "manifest_sha256": digest},
    )

    assert response.status_code == 403


def test_a_waived_item_is_counted_as_waived_not_as_acknowledged(visitor, token, portal_case, cast):
    """Waiving is the parties' written agreement, not the client's answer: before the client
    has done anything, the summary says "1 waived", never "1 acknowledged or accepted"."""
    from django.utils import timezone

    from offboard.cases.services import grant_waiver, update_register_item

    pending = portal_case.deliverables.filter(status="pending").get()
    grant_waiver(
        actor=cast["bob"],
        case=portal_case,
        target_type="deliverable",
        target_id=pending.pk,
        justification="Dropped from the SOW by the exit agreement",
        expires_at=timezone.now() + dt.timedelta(days=30),
    )
    update_register_item(actor=cast["alice"], item=pending, values={"status": "waived"})

    html = visitor.get(f"/portal/{token}/").content.decode()
    page = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    total = portal_case.deliverables.count() + portal_case.handover_items.count()
    assert "0 acknowledged or accepted" in page
    assert "1 waived by agreement" in page
    assert "4 awaiting your response" in page
    assert f"1 of {total} items settled" in page  # settled, by the agreement
    assert "Waived by agreement" in page  # the item's own badge
