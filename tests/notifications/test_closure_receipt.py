"""The closure receipt end to end, against a real SMTP server (aiosmtpd on loopback): closing
a case queues it; the outbox issues the certificate once, as an evidence file with its
event; the client's contacts receive it with the signed checkpoint; a mail server that is
down, refuses or hangs never blocks the closure and is retried with backoff."""

import datetime as dt
import hashlib
import io
import re
import threading
import time
from typing import Any

import pytest
import typer
from django.conf import settings
from django.core import mail
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from pypdf import PdfReader
from typer.testing import CliRunner

from offboard.cases.state import fresh
from offboard.cli import app as offboard_app
from offboard.cli.worker import worker
from offboard.core import clock
from offboard.evidence.models import EvidenceFile
from offboard.ledger.models import Checkpoint, LedgerEntry
from offboard.ledger.receipt import open_receipt
from offboard.notifications import receipts
from offboard.notifications.models import ClosureReceipt
from tests.api.conftest import Api, token_for
from tests.factories import close_with_approvals, settle_everything
from tests.signed_pdf import installation_ca_pem, openssl_verify, signature_of
from tests.smtp import LocalSMTP
from tests.tsa import LocalTSA


def closed(case: Any, cast: dict[str, Any]) -> Any:
    return close_with_approvals(settle_everything(case, cast), cast)


def receipt_of(case: Any) -> ClosureReceipt:
    return ClosureReceipt.objects.select_related("certificate", "checkpoint").get(case=case)


def events(case: Any, type: str) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(case=case, type=type).order_by("index"))


def later(monkeypatch: pytest.MonkeyPatch, delta: dt.timedelta) -> dt.datetime:
    moved = dt.datetime.now(dt.UTC) + delta
    monkeypatch.setattr(clock, "now", lambda: moved)
    return moved


def page(actor: Any, case: Any) -> str:
    browser = Client()
    browser.force_login(actor.user)
    response = browser.get(f"/cases/{case.ref}/")
    assert response.status_code == 200
    return response.content.decode()


def api_receipt(cast: dict[str, Any], case: Any) -> dict[str, Any]:
    response = Api(token_for(cast["erin"])).get(f"/cases/{case.ref}")
    assert response.status_code == 200
    return response.json()["closure_receipt"]


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in reader.pages))


def stored_bytes(evidence: EvidenceFile) -> bytes:
    with default_storage.open(evidence.storage_name, "rb") as f:
        return f.read()


def worker_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Only to keep `worker` a subcommand, as under `offboard`."""

    app.command()(worker)
    return app


# --- queued at closure, sent by the outbox ------------------------------------------------------


def test_closing_queues_the_receipt_and_sends_nothing_inside_the_closure(
    smtp: LocalSMTP, case: Any, cast: dict[str, Any]
) -> None:
    case = closed(case, cast)
    receipt = receipt_of(case)
    closure = Checkpoint.objects.get(case=case, reason="case_closed")
    assert receipt.checkpoint == closure
    assert receipt.state == "pending"
    assert receipt.recipients == [
        {"name": "Nina North", "email": "nina@northwind.example", "role": "primary"}
    ]
    assert (receipt.attempts, receipt.certificate, receipt.sent_at) == (0, None, None)
    assert receipt.closed_by == cast["alice"].user
    assert receipt.next_attempt_at is not None and receipt.next_attempt_at <= clock.now()
    # The closure recorded no certificate or receipt event and did not talk to the server.
    assert not events(case, "case.certificate_issued")
    assert not events(case, "case.receipt_sent")
    assert smtp.received == [] and smtp.data_attempts == 0
    assert "Queued for Nina North &lt;nina@northwind.example&gt;" in page(cast["alice"], case)
    assert api_receipt(cast, case)["state"] == "pending"


def test_the_client_receives_the_certificate_and_the_signed_checkpoint(
    smtp: LocalSMTP, case: Any, cast: dict[str, Any], tmp_path: Any
) -> None:
    case = closed(case, cast)
    closure = Checkpoint.objects.get(case=case, reason="case_closed")

    counts = receipts.process_pending()

    assert counts == {"certificates": 1, "sent": 1, "failed": 0, "skipped": 0}
    (received,) = smtp.received
    message = received.message
    # Envelope and headers.
    assert received.rcpt_tos == ["nina@northwind.example"]
    assert message["To"] == "Nina North <nina@northwind.example>"
    assert message["From"] == "Acme Digital <offboard@offboard.localhost>"
    assert message["Reply-To"] == "alice@acme.example"
    # (Django folds a long non-ASCII subject after "Subject:"; readers drop the blank.)
    assert message["Subject"].strip() == (
        f"Offboarding of Northwind Traders closed — your closure certificate ({case.ref})"
    )
    # The body: what closed, the five questions, the checkpoint, and why to keep it.
    text = received.text()
    assert text.startswith("Dear Nina North,")
    assert f"Acme Digital has closed the offboarding of Northwind Traders (case {case.ref}" in text
    assert "Closure was approved by Bob (manager) and Carol (manager)" in text
    for question in (
        "1. Were all contractual deliverables completed?",
        "4. Who approved final closure?",
    ):
        assert question in text
    # Question 5 as of the checkpoint sent: every event up to the closure, none after it.
    up_to_closure = LedgerEntry.objects.filter(case=case, index__lt=closure.size).count()
    assert up_to_closure == LedgerEntry.objects.filter(case=case).count() - 2  # + the two below
    assert (
        f"5. Can this be proven later — to someone who does not trust us?\n   Yes — all {up_to_closure} events of this case up to its closure"
        in text
    )
    assert "PLEASE KEEP THIS EMAIL AND ITS ATTACHMENTS." in text
    assert "check later that our records were not rewritten" in text
    # The one command the client is given trusts the receipt, never the pack's own keys.
    command = (
        f"offboard verify {case.ref}-evidence-pack.zip --receipt {case.ref}-closure-receipt.txt"
    )
    assert command in text and command in received.html()
    assert "--key" not in text
    assert closure.signed_note in text
    assert f"{closure.size} entries, root hash {bytes(closure.root).hex()}" in text
    assert closure.signed_note in received.html().replace("&#x27;", "'")
    # Attachments: the stored certificate, byte for byte, and the closure receipt.
    attachments = received.attachments()
    assert set(attachments) == {
        f"{case.ref}-closure-certificate.pdf",
        f"{case.ref}-closure-receipt.txt",
    }
    pdf_part = attachments[f"{case.ref}-closure-certificate.pdf"]
    assert pdf_part.get_content_type() == "application/pdf"
    pdf = pdf_part.get_content()
    assert pdf.startswith(b"%PDF-")
    receipt = receipt_of(case)
    certificate = receipt.certificate
    assert certificate is not None
    assert hashlib.sha256(pdf).hexdigest() == certificate.sha256
    assert stored_bytes(certificate) == pdf
    # A signed PDF (PAdES): OpenSSL verifies its signature against Offboard's CA.
    assert signature_of(pdf).sub_filter == "/ETSI.CAdES.detached"
    checked = openssl_verify(pdf, installation_ca_pem(), tmp_path / "openssl")
    assert checked.returncode == 0, checked.stderr
    assert (certificate.original_name, certificate.media_type, certificate.size) == (
        f"{case.ref}-closure-certificate.pdf",
        "application/pdf",
        len(pdf),
    )
    receipt_part = attachments[f"{case.ref}-closure-receipt.txt"]
    assert receipt_part["Content-Transfer-Encoding"] == "base64"
    receipt_bytes = receipt_part.get_payload(decode=True)
    # It proves itself: signed by the organization's key, the closure event a leaf of the
    # closure checkpoint, the very checkpoint in the body.
    held, checkpoint = open_receipt(receipt_bytes)
    closure_event = LedgerEntry.objects.get(case=case, type="case.closed")
    assert (held.case_ref, held.closed_index, held.closed_leaf) == (
        case.ref,
        closure_event.index,
        bytes(closure_event.leaf_hash),
    )
    assert held.checkpoint_text == closure.signed_note
    assert held.key.verifier_key() == closure.key.verifier_key
    assert (checkpoint.size, checkpoint.root) == (closure.size, bytes(closure.root))
    assert command in receipt_bytes.decode()
    # The certificate answers from the records, against the closure checkpoint.
    words = pdf_text(pdf)
    assert "Certificate of client offboarding" in words and case.ref in words
    assert "Interim" not in words
    assert f"covered by a checkpoint of size {closure.size}" in words
    assert f"Yes — all {up_to_closure} events of this case are leaves" in words
    # One event each, recorded by the outbox in the closer's name.
    (issued,) = events(case, "case.certificate_issued")
    (sent,) = events(case, "case.receipt_sent")
    assert issued.files == [certificate.sha256]
    assert issued.data["checkpoint_size"] == closure.size
    assert issued.data["checkpoint_root"] == bytes(closure.root).hex()
    assert issued.data["sha256"] == certificate.sha256
    assert sent.files == [certificate.sha256]
    assert sent.data["recipients"] == ["nina@northwind.example"]
    assert sent.data["message_id"] == message["Message-ID"].strip() == receipt.message_id
    assert sent.data["checkpoint_size"] == closure.size
    assert sent.data["via"] == "smtp"
    assert sent.data["receipt_sha256"] == hashlib.sha256(receipt_bytes).hexdigest()
    for event in (issued, sent):
        assert (event.actor["username"], event.actor["auth"]) == ("alice", "system")
    assert closure.size <= issued.index < sent.index  # after the checkpoint handed out
    # The row, the page and the API say it was sent.
    assert (receipt.state, receipt.attempts, receipt.last_error) == ("sent", 1, "")
    assert receipt.next_attempt_at is None and receipt.sent_at is not None
    html = page(cast["alice"], case)
    assert "Closure receipt" in html and "Sent " in html
    assert "to Nina North &lt;nina@northwind.example&gt;" in html
    assert certificate.sha256[:12] in html
    shown = api_receipt(cast, case)
    assert shown["state"] == "sent"
    assert shown["certificate"]["sha256"] == certificate.sha256
    assert shown["recipients"] == [
        {"name": "Nina North", "email": "nina@northwind.example", "role": "primary"}
    ]
    assert shown["checkpoint_size"] == closure.size
    # Nothing is done twice.
    assert receipts.process_pending() == {"certificates": 0, "sent": 0, "failed": 0, "skipped": 0}
    assert len(smtp.received) == 1


def test_a_case_whose_client_has_no_contacts_gets_its_certificate_but_no_email(
    smtp: LocalSMTP, alice: Any, cast: dict[str, Any], playbooks: dict[str, Any]
) -> None:
    from offboard.cases.services import open_case
    from offboard.clients.services import create_client, create_contract

    client = create_client(actor=alice, name="Quiet Client Ltd")
    contract = create_contract(
        actor=alice,
        client=client,
        reference="QC-1",
        service_type="marketing_agency",
        fee_type="fixed",
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2026, 12, 31),
    )
    case = open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="contract_expiry",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"],
    )
    case = closed(case, cast)
    assert (receipt_of(case).state, receipt_of(case).recipients) == ("no_recipients", [])

    assert receipts.process_pending() == {"certificates": 1, "sent": 0, "failed": 0, "skipped": 0}

    receipt = receipt_of(case)
    assert receipt.state == "no_recipients"
    assert receipt.next_attempt_at is None  # nothing left to do
    assert receipt.certificate is not None
    assert len(events(case, "case.certificate_issued")) == 1
    assert not events(case, "case.receipt_sent")
    assert smtp.received == [] and smtp.data_attempts == 0
    assert "Not sent: the client had no contact with an email address at closure." in page(
        alice, case
    )
    assert api_receipt(cast, case)["state"] == "no_recipients"
    assert receipts.process_pending()["certificates"] == 0


# --- a mail server that is down, refuses or hangs ----------------------------------------------


def test_a_mail_server_that_is_down_is_retried_with_backoff_and_the_receipt_sent_once(
    smtp: LocalSMTP, case: Any, cast: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp.down()
    started = time.monotonic()
    case = closed(case, cast)
    assert time.monotonic() - started < 10
    assert fresh(case).state == "closed"  # the closure never depends on the mail server

    counts = receipts.process_pending()

    assert counts == {"certificates": 1, "sent": 0, "failed": 1, "skipped": 0}
    receipt = receipt_of(case)
    assert (receipt.state, receipt.attempts) == ("failed", 1)
    assert receipt.last_error.startswith(f"SMTP server 127.0.0.1:{smtp.port} did not answer")
    assert "refused" in receipt.last_error.lower()
    now = clock.now()
    assert receipt.next_attempt_at is not None
    assert (
        now + dt.timedelta(seconds=20) < receipt.next_attempt_at <= now + dt.timedelta(seconds=31)
    )
    assert receipt.certificate is not None  # issued before sending, kept for the retries
    assert len(events(case, "case.certificate_issued")) == 1
    assert not events(case, "case.receipt_sent")
    html = page(cast["alice"], case)
    assert "Failed: SMTP server 127.0.0.1" in html and "next attempt at" in html
    shown = api_receipt(cast, case)
    assert shown["state"] == "failed" and "did not answer" in shown["last_error"]
    assert "next attempt at" in shown["summary"]
    # Not due yet: nothing is tried.
    assert receipts.process_pending() == {"certificates": 0, "sent": 0, "failed": 0, "skipped": 0}

    # Still down half a minute later: the wait doubles.
    later(monkeypatch, dt.timedelta(seconds=31))
    assert receipts.process_pending()["failed"] == 1
    receipt = receipt_of(case)
    assert receipt.attempts == 2
    assert receipt.next_attempt_at is not None
    assert receipt.next_attempt_at - clock.now() > dt.timedelta(seconds=50)

    # The server is back: the worker's next round sends it, once.
    smtp.up()
    later(monkeypatch, dt.timedelta(seconds=95))
    result = CliRunner().invoke(worker_app(), ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert f"closure receipt of {case.ref} sent to nina@northwind.example" in result.output
    assert "0 certificate(s) issued, 1 closure receipt(s) sent, 0 failed" in result.output
    assert len(smtp.received) == 1
    receipt = receipt_of(case)
    assert (receipt.state, receipt.attempts, receipt.last_error) == ("sent", 3, "")
    assert len(events(case, "case.certificate_issued")) == 1  # not issued again for the retry
    assert (
        EvidenceFile.objects.filter(original_name__endswith="closure-certificate.pdf").count() == 1
    )
    (sent,) = events(case, "case.receipt_sent")
    # Every attempt used the same Message-ID: a resend after a crash is one message.
    assert sent.data["message_id"] == smtp.received[0].message["Message-ID"].strip()
    again = CliRunner().invoke(worker_app(), ["worker", "--once"])
    assert "0 closure receipt(s) sent" in again.output
    assert len(smtp.received) == 1


def test_an_unreachable_mail_server_costs_one_attempt_per_round_not_one_per_receipt(
    smtp: LocalSMTP, case: Any, cast: dict[str, Any], playbooks: dict[str, Any]
) -> None:
    from offboard.cases.services import open_case

    client, contract = case.client, case.contracts.get()
    other = open_case(
        actor=cast["alice"],
        client=client,
        contracts=[contract],
        trigger="breach",
        trigger_date=dt.date(2026, 11, 3),
        owner_id=cast["alice"].user.pk,
        playbook_version=playbooks["marketing_agency"],
        allow_duplicate=True,
    )
    first, second = closed(case, cast), closed(other, cast)
    smtp.down()

    assert receipts.process_pending() == {"certificates": 1, "sent": 0, "failed": 1, "skipped": 1}
    assert (receipt_of(first).state, receipt_of(first).attempts) == ("failed", 1)
    assert (receipt_of(second).state, receipt_of(second).attempts) == ("pending", 0)

    smtp.up()  # the next round takes the one left waiting
    assert receipts.process_pending() == {"certificates": 1, "sent": 1, "failed": 0, "skipped": 0}
    assert receipt_of(second).state == "sent"
    assert [r.message["Subject"].strip()[-13:] for r in smtp.received] == [f"({second.ref})"]


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("reject", "answered 451 4.3.0 The test server is not accepting mail right now"),
        (
            "refuse_recipients",
            "refused every recipient: Nina North <nina@northwind.example> (550 5.1.1 No such user",
        ),
    ],
)
def test_a_mail_server_that_refuses_leaves_the_receipt_failed_with_its_reply(
    smtp: LocalSMTP, case: Any, cast: dict[str, Any], mode: Any, says: str
) -> None:
    case = closed(case, cast)
    smtp.mode = mode
    assert receipts.process_pending()["failed"] == 1
    receipt = receipt_of(case)
    assert receipt.state == "failed"
    assert says in receipt.last_error
    assert smtp.received == []
    assert not events(case, "case.receipt_sent")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_a_refused_login_is_reported_without_the_password(
    settings: Any, case: Any, cast: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = LocalSMTP(login=("offboard", "the-right-one"))
    server.up()
    try:
        server.configure(settings)
        settings.EMAIL_HOST_USER = "offboard"
        settings.EMAIL_HOST_PASSWORD = "s3cret-Wrong-pw"
        case = closed(case, cast)
        assert receipts.process_pending()["failed"] == 1
        receipt = receipt_of(case)
        assert "refused the login as 'offboard': 535" in receipt.last_error
        assert "s3cret-Wrong-pw" not in receipt.last_error
        assert "s3cret-Wrong-pw" not in caplog.text
        assert "s3cret-Wrong-pw" not in page(cast["alice"], case)

        settings.EMAIL_HOST_PASSWORD = "the-right-one"
        ClosureReceipt.objects.filter(pk=receipt.pk).update(next_attempt_at=clock.now())
        assert receipts.process_pending()["sent"] == 1
        assert [r.rcpt_tos for r in server.received] == [["nina@northwind.example"]]
    finally:
        server.down()


def test_a_closure_never_waits_for_a_hanging_mail_server_and_holds_no_lock(
    transactional_db: Any, smtp: LocalSMTP, case: Any, cast: dict[str, Any], settings: Any
) -> None:
    """After commit the receipt goes out in a background thread, outside any transaction."""
    settings.OFFBOARD_RECEIPT_ON_COMMIT = "thread"
    smtp.configure(settings, timeout=3.0)
    smtp.mode = "hang"
    smtp.hang_seconds = 5.0
    case = settle_everything(case, cast)
    try:
        started = time.monotonic()
        case = close_with_approvals(case, cast)
        assert time.monotonic() - started < 5  # the approvals and the closure, no mail
        assert fresh(case).state == "closed"
        deadline = time.monotonic() + 30
        while smtp.data_attempts == 0:  # the thread rendered the certificate and is sending
            assert time.monotonic() < deadline, "the background thread never sent"
            time.sleep(0.02)
        started = time.monotonic()
        from offboard.cases.services import add_addendum

        add_addendum(actor=cast["alice"], case=case, text="Written while the mail server hangs.")
        assert time.monotonic() - started < 2  # well inside the 3 s the send is stuck
    finally:
        receipts.wait_for_background(30)
    receipt = receipt_of(case)
    assert (receipt.state, receipt.attempts) == ("failed", 1)
    assert receipt.last_error == f"SMTP server 127.0.0.1:{smtp.port} did not answer within 3 s"
    assert len(events(case, "case.certificate_issued")) == 1


def test_after_commit_the_receipt_goes_out_in_the_background(
    transactional_db: Any, smtp: LocalSMTP, case: Any, cast: dict[str, Any], settings: Any
) -> None:
    settings.OFFBOARD_RECEIPT_ON_COMMIT = "thread"
    try:
        case = closed(case, cast)
    finally:
        receipts.wait_for_background(60)
    assert receipt_of(case).state == "sent"
    assert [r.rcpt_tos for r in smtp.received] == [["nina@northwind.example"]]
    assert not [t for t in threading.enumerate() if t.name.startswith(receipts.THREAD_PREFIX)]


# --- one worker at a time ----------------------------------------------------------------------


def test_a_receipt_claimed_by_one_worker_is_left_alone_by_the_others(
    smtp: LocalSMTP, case: Any, cast: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = closed(case, cast)
    receipt = receipt_of(case)
    claimed = receipts._claim(receipt.pk, clock.now())  # worker A holds it …
    assert claimed is not None and claimed.attempts == 1
    # … so worker B, and a "retry now", find nothing to do while A's lease runs.
    assert receipts.process_pending() == {"certificates": 0, "sent": 0, "failed": 0, "skipped": 0}
    from offboard.notifications.services import retry_closure_receipt

    retry_closure_receipt(actor=cast["alice"], case=case)
    assert receipts.process_pending()["sent"] == 0
    assert smtp.received == []
    # A crashed worker's lease runs out: another one takes the receipt over.
    later(monkeypatch, receipts.lease() + dt.timedelta(seconds=1))
    assert receipts.process_pending() == {"certificates": 1, "sent": 1, "failed": 0, "skipped": 0}
    assert len(smtp.received) == 1
    assert receipt_of(case).attempts == 2


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3",
    reason="needs PostgreSQL: the in-memory SQLite test database refuses concurrent writers "
    "outright (`make test` runs this file again on PostgreSQL)",
)
def test_concurrent_workers_send_one_email(
    transactional_db: Any, smtp: LocalSMTP, case: Any, cast: dict[str, Any]
) -> None:
    case = closed(case, cast)
    count = 4
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = receipts.process_pending()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r["sent"] for r in results) == 1
    assert sum(r["certificates"] for r in results) == 1
    assert len(smtp.received) == 1
    assert len(events(case, "case.certificate_issued")) == 1
    assert len(events(case, "case.receipt_sent")) == 1
    assert receipt_of(case).attempts == 1


# --- retry now, timestamps, the demo -----------------------------------------------------------


def test_the_cli_shows_a_failed_receipt_and_retries_it_now(
    smtp: LocalSMTP, case: Any, cast: dict[str, Any]
) -> None:
    case = closed(case, cast)
    smtp.down()
    receipts.process_pending()
    runner = CliRunner()

    shown = runner.invoke(
        offboard_app, ["case", "receipt", case.ref, "--org", "acme", "--as", "erin"]
    )
    assert shown.exit_code == 1, shown.output
    assert f"Closure receipt of {case.ref}: failed" in shown.output
    assert "did not answer" in shown.output and "next attempt at" in shown.output

    refused = runner.invoke(
        offboard_app, ["case", "receipt", case.ref, "--retry", "--org", "acme", "--as", "erin"]
    )
    assert refused.exit_code == 1
    assert "Your role 'auditor' may not do this (cases.transition)" in refused.output

    smtp.up()  # fixed: retry now rather than at the next attempt time
    retried = runner.invoke(
        offboard_app, ["case", "receipt", case.ref, "--retry", "--org", "acme", "--as", "bob"]
    )
    assert retried.exit_code == 0, retried.output
    assert f"Closure receipt of {case.ref}: sent" in retried.output
    assert "to Nina North <nina@northwind.example>" in retried.output
    assert len(smtp.received) == 1

    done = runner.invoke(
        offboard_app, ["case", "receipt", case.ref, "--retry", "--org", "acme", "--as", "bob"]
    )
    assert done.exit_code == 1
    assert "has nothing left to do: Sent" in done.output
    assert len(smtp.received) == 1


def test_the_cli_writes_the_receipt_the_client_was_sent(
    smtp: LocalSMTP, case: Any, cast: dict[str, Any], tmp_path: Any
) -> None:
    case = closed(case, cast)
    receipts.process_pending()
    (received,) = smtp.received
    sent = received.attachments()[f"{case.ref}-closure-receipt.txt"].get_payload(decode=True)
    out = tmp_path / "again.txt"
    done = CliRunner().invoke(
        offboard_app,
        ["case", "receipt", case.ref, "--out", str(out), "--org", "acme", "--as", "erin"],
    )
    assert done.exit_code == 0, done.output
    assert out.read_bytes() == sent  # the same bytes: made from what never changes
    assert f"--receipt {case.ref}-closure-receipt.txt" in done.output


def test_the_certificate_shows_the_closure_checkpoint_s_timestamp(
    smtp: LocalSMTP, tsa: LocalTSA, settings: Any, case: Any, cast: dict[str, Any]
) -> None:
    """Pending timestamps of the closure checkpoint get one chance before rendering."""
    settings.OFFBOARD_TSA_URLS = [tsa.url]
    settings.OFFBOARD_TSA_ROOTS = tsa.ca_pem_path
    settings.OFFBOARD_TSA_TIMEOUT = 5.0
    case = closed(case, cast)
    closure = Checkpoint.objects.get(case=case, reason="case_closed")
    assert closure.timestamps.get().status == "pending"

    assert receipts.process_pending()["sent"] == 1

    stamp = closure.timestamps.get()
    assert stamp.status == "granted"
    words = pdf_text(stored_bytes(receipt_of(case).certificate))
    assert "timestamped by 1 independent authority" in words
    assert f"Timestamped by {tsa.url} at" in smtp.received[0].text()


def test_the_demo_s_closed_case_has_its_certificate_and_receipt_before_its_addendum(
    db: Any,
) -> None:
    from offboard.cases.models import OffboardingCase
    from offboard.demo import load_demo

    load_demo()

    case = OffboardingCase.objects.get(org__slug="brightline", state="closed")
    receipt = receipt_of(case)
    assert receipt.state == "sent"
    # locmem in tests; never SMTP in the demo. The demo's client also got a portal link and the
    # confirmation of their acknowledgement through it (demo_cases.client_answers), before.
    *portal, message = mail.outbox
    assert len(portal) == 2 and all("/portal/" in m.body or "acknowledg" in m.body for m in portal)
    assert message.to == [formatted(r) for r in receipt.recipients]
    assert {r["role"] for r in receipt.recipients} == {"primary", "legal"}
    types = [e.type for e in LedgerEntry.objects.filter(case=case).order_by("index")]
    assert types[-4:] == [
        "case.closed",
        "case.certificate_issued",
        "case.receipt_sent",
        "case.addendum",
    ]
    assert LedgerEntry.objects.get(case=case, type="case.receipt_sent").data["via"] == "locmem"


def formatted(recipient: dict[str, str]) -> str:
    return f"{recipient['name']} <{recipient['email']}>"
