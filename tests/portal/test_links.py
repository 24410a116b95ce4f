"""Issuing and revoking portal links: who may, for whom, what is stored and recorded, and
the link's email."""

import datetime as dt

import pytest
from django.core import mail

from offboard.core.errors import CaseClosed, Conflict, PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry
from offboard.portal.models import PortalLink
from offboard.portal.selectors import link_for_token, token_hash
from offboard.portal.services import issue_portal_link, revoke_portal_link
from tests.portal.conftest import BASE, token_of


def test_issuing_stores_only_the_hash_of_the_token_and_records_an_event(portal_case, alice, nina):
    issued = issue_portal_link(actor=alice, case=portal_case, contact=nina, base_url=BASE)

    token = token_of(issued.url)
    assert issued.url == f"{BASE}/portal/{token}/"
    assert len(token) == 43  # secrets.token_urlsafe(32)
    link = PortalLink.objects.get()
    assert link.token_hash == token_hash(token) and token not in link.token_hash
    assert link_for_token(token) == link
    assert link.expires_at - link.created_at == dt.timedelta(days=30)
    assert link.respond_by - link.created_at == dt.timedelta(days=14)
    event = LedgerEntry.objects.filter(type="portal_link.issued").get()
    assert event.case_id == portal_case.pk and event.actor["username"] == "alice"
    assert event.data["link_id"] == link.pk
    assert event.data["contact"] == {"id": nina.pk, "name": "Nina North", "email": nina.email}
    assert token not in bytes(event.body).decode()  # the token is nowhere on record


def test_the_contact_is_emailed_the_link(portal_case, alice, nina):
    mail.outbox.clear()
    issued = issue_portal_link(
        actor=alice, case=portal_case, contact=nina, base_url=BASE, days=10, respond_days=7
    )

    (message,) = mail.outbox
    assert message.to == ["Nina North <nina@northwind.example>"]
    assert portal_case.ref in message.subject and "Acme Digital" in message.subject
    assert issued.url in message.body
    assert "Please respond by" in message.body
    assert issued.emailed and PortalLink.objects.get().emailed_at is not None


def test_no_email_when_asked_not_to(portal_case, alice, nina):
    mail.outbox.clear()
    issued = issue_portal_link(
        actor=alice, case=portal_case, contact=nina, base_url=BASE, send_email=False
    )

    assert mail.outbox == [] and not issued.emailed
    assert PortalLink.objects.get().emailed_at is None


def test_a_failed_email_keeps_the_link_and_says_why(portal_case, alice, nina, settings):
    from tests.smtp import LocalSMTP

    down = LocalSMTP()  # never started: connection refused
    down.configure(settings, timeout=2)

    issued = issue_portal_link(actor=alice, case=portal_case, contact=nina, base_url=BASE)

    assert not issued.emailed
    assert "did not answer" in issued.email_error or "refused" in issued.email_error
    link = PortalLink.objects.get()
    assert link.email_error == issued.email_error and link.emailed_at is None
    assert link_for_token(token_of(issued.url)) == link  # staff can still copy the URL


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("alice", True),
        ("bob", True),
        ("carol", True),
        ("oscar", False),
        ("dave", False),
        ("erin", False),
    ],
)
def test_the_case_owner_managers_and_admins_issue_links(portal_case, cast, nina, who, allowed):
    if allowed:
        issue_portal_link(actor=cast[who], case=portal_case, contact=nina, base_url=BASE)
        assert PortalLink.objects.count() == 1
    else:
        with pytest.raises(PermissionDenied, match=r"portal\.links"):
            issue_portal_link(actor=cast[who], case=portal_case, contact=nina, base_url=BASE)
        assert not PortalLink.objects.exists()


def test_an_operator_who_owns_the_case_may_issue_links(portal_case, cast, nina):
    from offboard.cases.services import update_case

    update_case(actor=cast["alice"], case=portal_case, owner_id=cast["oscar"].user.pk)
    portal_case.refresh_from_db()

    issue_portal_link(actor=cast["oscar"], case=portal_case, contact=nina, base_url=BASE)

    assert PortalLink.objects.get().created_by == cast["oscar"].user


def test_the_contact_must_belong_to_the_cases_client(portal_case, other_case, alice):
    carl = other_case.client.contacts.get()

    with pytest.raises(ValidationFailed) as exc:
        issue_portal_link(actor=alice, case=portal_case, contact=carl, base_url=BASE)

    assert exc.value.errors == {"contact": ["is not a contact of Northwind Traders"]}
    assert not PortalLink.objects.exists()


@pytest.mark.parametrize(
    ("days", "respond_days", "field"),
    [(0, None, "days"), (91, None, "days"), (10, 11, "respond_days"), (10, 0, "respond_days")],
)
def test_the_lifetime_and_deadline_stay_within_bounds(
    portal_case, alice, nina, days, respond_days, field
):
    with pytest.raises(ValidationFailed) as exc:
        issue_portal_link(
            actor=alice,
            case=portal_case,
            contact=nina,
            base_url=BASE,
            days=days,
            respond_days=respond_days,
        )
    assert field in exc.value.errors


def test_a_link_lives_as_long_as_asked(portal_case, alice, nina):
    issued = issue_portal_link(
        actor=alice, case=portal_case, contact=nina, base_url=BASE, days=90, respond_days=60
    )
    assert issued.link.expires_at - issued.link.created_at == dt.timedelta(days=90)
    assert issued.link.respond_by - issued.link.created_at == dt.timedelta(days=60)


def test_no_link_for_a_draft_or_closed_case(
    alice, nina, portal_case, cast, client_contract, playbooks
):
    from offboard.cases.services import open_case
    from tests.factories import close_with_approvals, settle_everything

    client, contract = client_contract
    draft = open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="breach",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"],
        draft=True,
        allow_duplicate=True,
    )
    with pytest.raises(Conflict, match="draft"):
        issue_portal_link(actor=alice, case=draft, contact=nina, base_url=BASE)
    closed = close_with_approvals(settle_everything(portal_case, cast), cast)
    with pytest.raises(CaseClosed):
        issue_portal_link(actor=alice, case=closed, contact=nina, base_url=BASE)
    assert not PortalLink.objects.exists()


def test_revoking_stops_the_link_and_is_recorded_once(issued, token, alice, bob):
    revoked = revoke_portal_link(actor=bob, link=issued.link, reason="Nina left Northwind")

    assert revoked.revoked_at is not None and revoked.revoked_by == bob.user
    assert link_for_token(token) is None
    event = LedgerEntry.objects.filter(type="portal_link.revoked").get()
    assert event.data["reason"] == "Nina left Northwind"
    assert event.data["link_id"] == issued.link.pk
    with pytest.raises(Conflict, match="already revoked"):
        revoke_portal_link(actor=alice, link=issued.link)
    assert LedgerEntry.objects.filter(type="portal_link.revoked").count() == 1


def test_an_operator_cannot_revoke_someone_elses_link(issued, cast):
    with pytest.raises(PermissionDenied):
        revoke_portal_link(actor=cast["oscar"], link=issued.link)
    assert PortalLink.objects.get().revoked_at is None


def test_a_link_on_a_closed_case_can_still_be_revoked(issued, token, portal_case, cast):
    from tests.factories import close_with_approvals, settle_everything

    close_with_approvals(settle_everything(portal_case, cast), cast)

    revoke_portal_link(actor=cast["alice"], link=issued.link)

    assert link_for_token(token) is None


def test_tokens_are_unique_and_unguessable(portal_case, alice, nina):
    urls = {
        issue_portal_link(
            actor=alice, case=portal_case, contact=nina, base_url=BASE, send_email=False
        ).url
        for _ in range(5)
    }
    assert len(urls) == 5
    assert link_for_token("A" * 43) is None
    assert link_for_token(PortalLink.objects.first().token_hash) is None  # the hash opens nothing
