"""The closure certificate: what a reader finds in the PDF's text, for closed and open cases."""

import io
import re

import pytest
from pypdf import PdfReader

from offboard.cases.state import fresh, state_digest
from offboard.reports.certificate import render_certificate
from tests.factories import close_with_approvals, settle_everything

QUESTIONS = (
    "Were all contractual deliverables completed?",
    "What exactly was handed over to the client?",
    "When was access revoked — and to which systems?",
    "Who approved final closure?",
    "Can this be proven later — to someone who does not trust us?",
)


def _text(pdf: bytes) -> tuple[str, list[str]]:
    reader = PdfReader(io.BytesIO(pdf))
    pages = [page.extract_text() or "" for page in reader.pages]
    return "\n".join(pages), pages


def _flat(text: str) -> str:
    """Text with line breaks and hyphenation undone, for phrases that may wrap."""
    return re.sub(r"\s+", " ", text)


def _unbroken(text: str) -> str:
    """Text with all whitespace removed, for hashes that wrap across lines."""
    return re.sub(r"\s+", "", text)


@pytest.fixture
def closed_case(case, cast):
    return close_with_approvals(settle_everything(case, cast), cast)


def test_closed_case_certificate_answers_the_five_questions(closed_case):
    case = fresh(closed_case)
    pdf = render_certificate(case)
    assert pdf.startswith(b"%PDF-")
    text, pages = _text(pdf)
    flat = _flat(text)

    assert "Certificate of client offboarding" in flat
    assert "Interim" not in text
    assert "Acme Digital" in flat and "Northwind Traders" in flat and case.ref in flat
    for question in QUESTIONS:
        assert question in flat, question
    # Table of contents with its entries, and the footer on every page.
    assert "Contents" in pages[1]
    for entry in ("1. Parties, contracts and trigger", "Case timeline"):
        assert entry in flat
    assert f"Page 1 of {len(pages)}" in pages[0]
    assert all(f"of {len(pages)}" in p for p in pages)
    assert all(case.ref in p for p in pages)

    for d in case.deliverables.all():
        assert d.title in flat
    assert case.deliverables.exists()
    assert f"Yes — all {case.deliverables.count()} contractual deliverables were accepted" in flat
    for g in case.access_grants.all():
        assert g.system in flat
    for h in case.handover_items.all():
        assert h.name in flat
    assert "NW-2025-01" in flat
    assert "Bob" in flat and "Carol" in flat
    assert "Equals the final state digest" in flat

    digest = state_digest(case)
    squeezed = _unbroken(text)
    assert digest in squeezed
    assert squeezed.count(digest) >= 3  # title page and both approvals

    # Question 5: the closure checkpoint covers every event of the case.
    from offboard.ledger.keys import origin
    from offboard.ledger.models import Checkpoint

    checkpoint = Checkpoint.objects.filter(org=case.org, case=case).get()
    assert origin(case.org) in flat
    assert f"Tree size {checkpoint.size} events" in flat
    assert bytes(checkpoint.root).hex() in squeezed
    assert "No timestamp authority is configured" in flat
    assert "offboard verify" in flat and "sha256sum -c" in flat and "openssl ts -verify" in flat

    # The timeline lists the closure, and nothing reaches the page as JSON.
    assert "case.closed" in flat
    assert '{"' not in text and "{'" not in text


def test_open_case_is_an_interim_report(case, cast):
    pdf = render_certificate(fresh(case))
    text, pages = _text(pdf)
    flat = _flat(text)
    assert "Interim report — case not closed" in flat
    assert "Certificate of client offboarding" not in pages[0]
    for question in QUESTIONS:
        assert question in flat
    assert "No — " in flat  # deliverables are still pending
    assert "no approval of its current state" in flat
    # The case was opened after no checkpoint: none covers it yet.
    assert "No signed checkpoint covers this case's latest event yet" in flat
    assert "Page 1 of" in pages[0]
    assert '{"' not in text


def test_an_explicit_checkpoint_and_time_are_used(case, cast):
    import datetime as dt

    from django.db import transaction

    from offboard.ledger.checkpoints import issue_checkpoint

    with transaction.atomic():
        checkpoint = issue_checkpoint(org=case.org, reason="manual")
    at = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    text, _ = _text(render_certificate(fresh(case), checkpoint=checkpoint, now=at))
    flat = _flat(text)
    assert "2030-01-02 03:04 UTC" in flat
    assert f"Tree size {checkpoint.size} events" in flat
    assert "Interim" in flat


def test_rendering_runs_a_bounded_number_of_queries(case, cast, django_assert_max_num_queries):
    from offboard.cases.services import add_register_item
    from tests.factories import upload

    alice = cast["alice"]
    for i in range(15):
        proof = upload(alice, f"proof {i}".encode(), f"proof-{i}.pdf")
        add_register_item(
            actor=alice,
            case=case,
            register="deliverables",
            values={"title": f"Extra deliverable {i}"},
            evidence=[proof],
        )
        add_register_item(
            actor=alice,
            case=case,
            register="access_grants",
            values={
                "direction": "client_in_provider",
                "system": f"System {i}",
                "planned_action": "revoke",
            },
        )
        add_register_item(
            actor=alice,
            case=case,
            register="handover_items",
            values={"kind": "document", "name": f"Document {i}"},
            evidence=[proof],
        )
    case = fresh(case)
    with django_assert_max_num_queries(30):
        pdf = render_certificate(case)
    text, _ = _text(pdf)
    assert "Extra deliverable 14" in _flat(text) and "System 14" in _flat(text)


def test_cli_writes_the_certificate(closed_case, tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from offboard.cli.certificate import certificate
    from offboard.cli.common import OffboardGroup

    app = typer.Typer(cls=OffboardGroup)
    app.command()(certificate)
    app.command("noop")(lambda: None)  # a group, as in the real CLI
    out = tmp_path / "cert.pdf"
    result = CliRunner().invoke(
        app, ["certificate", closed_case.ref, "--out", str(out), "--org", "acme", "--as", "erin"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")
    assert closed_case.ref in result.output

    missing = CliRunner().invoke(
        app, ["certificate", "C-9999-0001", "--out", str(out), "--org", "acme", "--as", "erin"]
    )
    assert missing.exit_code == 1


def test_addenda_after_closure_are_listed_and_awaiting_the_next_checkpoint(closed_case, cast):
    from offboard.cases.services import add_addendum

    add_addendum(actor=cast["alice"], case=closed_case, text="Sent the report again on request.")
    text, _ = _text(render_certificate(fresh(closed_case)))
    flat = _flat(text)
    assert "7. Addenda" in flat and "Sent the report again on request." in flat
    assert "will be covered by the next checkpoint" in flat
    assert "of this case are leaves of the organization's append-only Merkle log" in flat
    assert "no signed checkpoint covers" not in flat


def test_a_long_timeline_lists_the_first_and_last_events_and_counts_the_rest(case, cast):
    from django.db import transaction

    from offboard.ledger.models import LedgerEntry
    from offboard.ledger.recorder import record_event
    from offboard.reports import certificate

    for i in range(certificate.TIMELINE_HEAD + certificate.TIMELINE_TAIL + 40):
        with transaction.atomic():
            record_event(actor=cast["bob"], type="case.note", case=case, data={"n": i})
    events = list(LedgerEntry.objects.filter(case=case).order_by("index"))
    hidden = events[certificate.TIMELINE_HEAD : -certificate.TIMELINE_TAIL]
    text, pages = _text(render_certificate(fresh(case)))
    flat = _flat(text)
    assert f"The {len(events)} events recorded for this case" in flat
    assert (
        f"{len(hidden)} events between no. {hidden[0].index} and no. {hidden[-1].index} "
        "are not listed here"
    ) in flat
    assert f"{len(hidden)} × case.note" in flat
    assert "case.opened" in flat  # the head
    listed = {int(n) for n in re.findall(r"^(\d+) \d{4}-\d\d-\d\d", text, flags=re.M)}
    assert events[-1].index in listed and events[0].index in listed
    assert not listed & {e.index for e in hidden}
    assert len(pages) < 30


def test_question_5_says_yes_only_with_an_anchor_outside_the_organization(closed_case):
    """The organization's own signature is not enough: a timestamp or the receipt the client
    receives with the certificate is (decision 0010). No TSA is configured here."""
    case = fresh(closed_case)
    alone = _flat(_text(render_certificate(case))[0])
    assert "Not independently —" in alone
    assert "nothing outside the organization fixes it yet" in alone
    assert "Yes — all" not in alone.split("Can this be proven later")[-1][:400]
    handed = _flat(_text(render_certificate(case, receipt_to=["Nina North"]))[0])
    assert "handed to Nina North in the closure receipt sent with this certificate" in handed
    assert "No trusted timestamp was granted for it." in handed
