"""The demo organization: everyone and everything a newcomer needs to see, loaded once."""

import datetime as dt

import pytest


@pytest.fixture(scope="module")
def _demo_loaded(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo, loaded once for this module inside a transaction that is rolled back at the
    end; each test runs in a savepoint of it (loading takes seconds: weeks of a timeline, a
    portal, certificates)."""
    from django.db import transaction
    from django.test import override_settings

    from offboard.demo import load_demo

    directory = tmp_path_factory.mktemp("demo")
    where = {"MEDIA_ROOT": str(directory / "files"), "OFFBOARD_KEY_DIR": directory / "keys"}
    with django_db_blocker.unblock():
        overrides = override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"], **where
        )
        overrides.enable()
        outer = transaction.atomic()
        outer.__enter__()
        try:
            loaded = load_demo()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            overrides.disable()
            raise
    yield loaded, where
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)
        overrides.disable()


@pytest.fixture
def demo(_demo_loaded, db, settings):
    loaded, where = _demo_loaded
    for name, value in where.items():  # where the demo's files and keys are
        setattr(settings, name, value)
    return loaded


def brightline_cases():
    from offboard.cases.models import OffboardingCase
    from offboard.cases.state import with_everything

    return {
        c.state: c for c in with_everything(OffboardingCase.objects.filter(org__slug="brightline"))
    }


def test_the_demo_has_every_role_and_prints_the_password(demo):
    from offboard.accounts.models import User
    from offboard.core.permissions import ROLES

    assert demo["created"] is True
    assert demo["password"] == "offboard-demo"
    assert {u["role"] for u in demo["users"]} == set(ROLES)
    assert [u["username"] for u in demo["users"]] == [
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "oscar",
    ]
    assert all(" " in u["name"] for u in demo["users"])  # realistic full names
    assert User.objects.get(username="bob").check_password("offboard-demo")


def test_the_demo_has_a_case_in_every_state(demo):
    assert set(brightline_cases()) == {"draft", "active", "closing", "closed", "cancelled"}
    assert sorted(c["state"] for c in demo["cases"]) == [
        "active",
        "active",
        "cancelled",
        "closed",
        "closing",
        "draft",
    ]


def test_the_closed_case_meets_every_gate_with_two_approvals_and_an_addendum(demo):
    from offboard.cases.gates import unmet_gates

    closed = brightline_cases()["closed"]

    assert unmet_gates(closed) == []
    assert sorted(a.approver.username for a in closed.approvals.all()) == ["bob", "carol"]
    assert closed.addenda.count() == 1
    assert closed.events.filter(type="case.closed").count() == 1


def test_the_closing_case_waits_for_a_second_approval(demo):
    from offboard.cases.gates import unmet_gates

    closing = brightline_cases()["closing"]

    assert [a.approver.username for a in closing.approvals.all()] == ["bob"]
    assert [g.code for g in unmet_gates(closing)] == ["approvals.missing"]


def test_the_active_cases_are_part_way_with_evidence_a_waiver_and_an_overdue_step(demo):
    from offboard.cases.models import AccessGrant, OffboardingCase, Step, Waiver
    from offboard.core import clock

    active = OffboardingCase.objects.filter(org__slug="brightline", state="active")
    steps = Step.objects.filter(case__in=active)

    assert active.count() == 2
    assert steps.filter(status="done").exclude(evidence=None).exists()
    assert steps.filter(status__in=["pending", "in_progress"]).exists()
    overdue = steps.filter(due_date__lt=clock.today()).exclude(
        status__in=["done", "not_applicable"]
    )
    assert overdue.count() == 1
    assert Waiver.objects.filter(case__in=active).count() == 1
    verified = AccessGrant.objects.filter(case__in=active, status="revoked").exclude(
        verification_level=""
    )
    assert verified.count() >= 2


def test_the_cancelled_and_draft_cases_say_why(demo):
    cases = brightline_cases()

    assert "withdrew its termination notice" in cases["cancelled"].cancel_reason
    assert cases["draft"].scope == "partial"
    assert cases["draft"].scope_notes


def test_the_demo_covers_every_service_and_fee_type_with_contacts(demo):
    from offboard.clients.models import Client, Contact, Contract, FeeType, ServiceType

    clients = Client.objects.filter(org__slug="brightline")
    contracts = Contract.objects.filter(org__slug="brightline")

    assert clients.count() >= 6
    assert set(contracts.values_list("service_type", flat=True)) == set(ServiceType.values)
    assert set(contracts.values_list("fee_type", flat=True)) == set(FeeType.values)
    for client in clients:
        roles = set(Contact.objects.filter(client=client).values_list("role", flat=True))
        assert roles == set(Contact.Role.values), client.name


def test_every_demo_change_is_an_event_and_evidence_is_real_pdf(demo):
    from django.core.files.storage import default_storage

    from offboard.cases.models import OffboardingCase
    from offboard.evidence.models import EvidenceFile
    from offboard.ledger.models import LedgerEntry

    for case in OffboardingCase.objects.filter(org__slug="brightline"):
        assert case.events.filter(type="case.opened").count() == 1
    assert LedgerEntry.objects.filter(type="member.added").count() == 5
    pdfs = EvidenceFile.objects.filter(org__slug="brightline", media_type="application/pdf")
    assert pdfs.count() > 20
    with default_storage.open(pdfs.first().storage_name) as stored:
        content = stored.read()
    assert content.startswith(b"%PDF-1.4") and content.rstrip().endswith(b"%%EOF")


def test_the_demo_pdf_has_a_correct_cross_reference_table():
    from offboard.demo import pdf

    content = pdf("Title (with parentheses)", ["Line one", "Line — two"])
    xref_at = int(content.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])

    assert content[xref_at:].startswith(b"xref\n0 6\n")
    offsets = [int(line[:10]) for line in content[xref_at:].split(b"\n")[3:8]]
    for number, offset in enumerate(offsets, start=1):
        assert content[offset:].startswith(b"%d 0 obj" % number)


def test_loading_the_demo_twice_changes_nothing(demo):
    from offboard.accounts.models import Organization, User
    from offboard.cases.models import OffboardingCase
    from offboard.demo import load_demo
    from offboard.ledger.models import LedgerEntry

    before = (
        Organization.objects.count(),
        User.objects.count(),
        OffboardingCase.objects.count(),
        LedgerEntry.objects.count(),
    )

    again = load_demo()

    assert again["created"] is False
    assert again["cases"] == demo["cases"]
    assert before == (
        Organization.objects.count(),
        User.objects.count(),
        OffboardingCase.objects.count(),
        LedgerEntry.objects.count(),
    )


def test_the_closed_case_took_weeks_and_the_log_is_in_time_order(demo):
    from offboard.ledger.models import LedgerEntry

    closed = brightline_cases()["closed"]
    times = [e.at for e in closed.events.order_by("index")]
    assert times == sorted(times)
    assert times[-1] - times[0] >= dt.timedelta(weeks=3)
    everything = list(
        LedgerEntry.objects.filter(org__slug="brightline")
        .order_by("index")
        .values_list("at", flat=True)
    )
    assert everything == sorted(everything)  # across every case of the organization
    assert everything[-1] < dt.datetime.now(dt.UTC)


def test_the_closed_case_has_a_plausible_timeline(demo):
    closed = brightline_cases()["closed"]
    end = dt.datetime.combine(closed.effective_end_date, dt.time(), tzinfo=dt.UTC)
    accepted = {d.accepted_at.date() for d in closed.deliverables.all()}
    assert len(accepted) == closed.deliverables.count()  # on different days
    handed = sorted(h.handed_over_at for h in closed.handover_items.all())
    assert handed[-1] - handed[0] >= dt.timedelta(days=6)  # the handover took a week
    revoked = [g.actioned_at for g in closed.access_grants.all()]
    assert all(abs(at - end) <= dt.timedelta(days=3) for at in revoked)  # near the end date
    returned = closed.data_dispositions.get(action="return").completed_at
    deleted = [d.completed_at for d in closed.data_dispositions.filter(action="delete")]
    assert deleted and min(deleted) > returned  # data deleted after it was returned
    invoice = closed.settlements.get(kind="final_invoice")
    assert invoice.status == "paid" and invoice.settled_at > end + dt.timedelta(days=14)


def test_the_closed_case_mixes_the_sources_of_its_facts(demo):
    from offboard.portal.models import PortalResponse

    closed = brightline_cases()["closed"]
    handover = list(closed.handover_items.all())
    by_client = [h for h in handover if h.source == "client_portal"]
    by_staff = [h for h in handover if h.source == "staff"]
    assert by_client and by_staff and len(by_client) + len(by_staff) == len(handover)
    (response,) = PortalResponse.objects.filter(case=closed, kind="acknowledged")
    for h in by_client:
        assert h.source_detail["contact"]["name"] == response.contact.name
        assert h.source_detail["typed_name"] == response.typed_name
        assert h.source_detail["manifest_sha256"] == response.manifest_sha256
        assert h.recorded_by_id is None
    late = [h for h in by_staff if h.recorded_at - h.acknowledged_at > dt.timedelta(hours=1)]
    assert late, "some acknowledgements were recorded days after they happened"
    grants = list(closed.access_grants.all())
    (vendor,) = [g for g in grants if g.source == "vendor_document"]
    assert vendor.verification_level == "vendor_confirmed"
    assert vendor.source_detail["document_sha256"] in {f.sha256 for f in vendor.evidence.all()}
    (observed,) = [g for g in grants if g.source == "observed"]
    assert {g.verification_level for g in grants if g not in (vendor, observed)} == {"attested"}
    # One revocation was done by the SCIM connector against the demo directory (a real
    # scim2-server while the demo loaded) and read back: its events and reads are evidence.
    assert observed.verification_level == "observed" and observed.status == "revoked"
    assert observed.source_detail["connection"] == "Demo directory (SCIM)"
    assert observed.source_detail["evidence_sha256"] in {f.sha256 for f in observed.evidence.all()}
    assert abs(observed.actioned_at - observed.verified_at) < dt.timedelta(minutes=5)
    types = [e.type for e in closed.events.order_by("index")]
    assert "connector.revoked" in types and "connector.verified" in types
    from offboard.cases.models import AccessGrant

    assert (
        AccessGrant.objects.filter(
            case__org__slug="brightline", verification_level="observed"
        ).count()
        == 1
    )


def test_the_demo_connection_points_at_nothing_and_its_check_says_so(demo):
    import pytest

    from offboard.connectors.base import ConnectorError
    from offboard.connectors.models import Connection
    from offboard.connectors.services import check_connection
    from offboard.core.actor import Actor

    conn = Connection.objects.get(org__slug="brightline")
    alice = Actor.from_membership(conn.created_by.memberships.get(), auth_method="test")
    with pytest.raises(ConnectorError, match="network error"):
        check_connection(actor=alice, connection=conn)
