"""Evidence read back from S3 (moto_server on loopback) by every reader — staff download,
contract document, API, portal, evidence pack export, `offboard ledger verify`, the closure
receipt — each checking the bytes against their SHA-256 as they stream; an object overwritten
in the bucket behind Offboard's back is caught by each of them; and memory stays bounded."""

import hashlib
import io
import os
import tracemalloc
import zipfile
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from typer.testing import CliRunner

from offboard.cli import app
from offboard.clients.services import attach_contract_document
from offboard.core.errors import Conflict
from offboard.evidence.services import upload_evidence
from offboard.evidence.storage import StoredFileCorrupted, open_stored
from offboard.notifications import receipts
from offboard.notifications.models import ClosureReceipt
from offboard.packs.export import iter_pack, start_export
from offboard.packs.verify import parse_key, verify_pack
from tests.api.conftest import Api, token_for
from tests.factories import close_with_approvals, settle_everything
from tests.portal.conftest import UA
from tests.storage.conftest import reconfigure

runner = CliRunner()
REPORT = b"%PDF-1.4 final campaign report\n" * 40  # tests/portal/conftest.py's "report"


def staff(actor: Any) -> Client:
    browser = Client()
    browser.force_login(actor.user)
    return browser


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def cut_short(response: Any) -> bytes:
    """What a client receives of a download whose stream fails: the bytes sent before."""
    received = b""
    with pytest.raises(StoredFileCorrupted):
        for chunk in response.streaming_content:
            received += chunk
    return received


def test_every_download_serves_the_bucket_s_bytes(portal, s3, cast, client_contract) -> None:
    case, report, token = portal["case"], portal["files"]["report"], portal["token"]
    assert s3.get(report.storage_name) == REPORT
    responses = {
        "staff": staff(cast["erin"]).get(f"/cases/{case.ref}/files/{report.sha256}"),
        "api": Api(token_for(cast["erin"])).get(f"/evidence/{report.sha256}/content"),
        "portal": Client(HTTP_USER_AGENT=UA).get(f"/portal/{token}/files/{report.sha256}"),
    }
    client, contract = client_contract
    document = attach_contract_document(
        actor=cast["alice"], contract=contract, stream=io.BytesIO(b"%PDF-1.4 MSA"), name="msa.pdf"
    )
    responses["contract"] = staff(cast["alice"]).get(
        f"/clients/{client.pk}/contracts/{contract.pk}/documents/{document.sha256}"
    )
    for name, response in responses.items():
        expected = b"%PDF-1.4 MSA" if name == "contract" else REPORT
        assert response.status_code == 200, name
        assert response["Content-Length"] == str(len(expected)), name
        assert body_of(response) == expected, name


def test_an_object_overwritten_in_the_bucket_is_never_served_whole(portal, s3, cast) -> None:
    case, report, token = portal["case"], portal["files"]["report"], portal["token"]
    forged = REPORT.replace(b"final", b"FORGED")
    s3.tamper(report.storage_name, forged)
    for response in (
        staff(cast["erin"]).get(f"/cases/{case.ref}/files/{report.sha256}"),
        Api(token_for(cast["erin"])).get(f"/evidence/{report.sha256}/content"),
        Client(HTTP_USER_AGENT=UA).get(f"/portal/{token}/files/{report.sha256}"),
    ):
        assert response.status_code == 200  # the headers went before the bytes were read
        received = cut_short(response)
        # Short of the announced length: the browser reports a failed download.
        assert len(received) < int(response["Content-Length"]) == len(forged)
    # A reader in code gets the reason.
    with pytest.raises(StoredFileCorrupted) as caught, open_stored(report.storage_name) as f:
        f.read()
    assert f"its bytes hash to {hashlib.sha256(forged).hexdigest()}" in str(caught.value)
    # Same size, one byte changed: caught too.
    s3.tamper(report.storage_name, REPORT[:-1] + b"!")
    with pytest.raises(StoredFileCorrupted), open_stored(report.storage_name) as f:
        while f.read(7):
            pass


def test_export_verify_and_receipt_read_from_the_bucket_and_refuse_a_forged_object(
    s3, case, cast, tmp_path
) -> None:
    case = close_with_approvals(settle_everything(case, cast), cast)
    counts = receipts.process_pending()  # the certificate is stored in the bucket, then mailed
    assert counts["sent"] == 1
    receipt = ClosureReceipt.objects.select_related("certificate").get(case=case)
    certificate = receipt.certificate
    attachments = mail.outbox[0].attachments
    (pdf,) = [a[1] for a in attachments if isinstance(a, tuple) and a[0].endswith(".pdf")]
    assert pdf == s3.get(certificate.storage_name)
    # Export: every evidence file and the certificate, from the bucket, verified offline.
    plan = start_export(actor=cast["erin"], case=case)
    pack = b"".join(iter_pack(plan))
    (tmp_path / "pack.zip").write_bytes(pack)
    report = verify_pack(tmp_path / "pack.zip", key=parse_key(plan.checkpoint.key.verifier_key))
    assert report.ok, [c.as_dict() for c in report.checks if not c.ok]
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        for f in plan.files:
            assert zf.read(f"{plan.base}/data/files/{f.sha256}") == s3.get(f.storage_name)
    # `offboard ledger verify` reads every referenced file from the bucket.
    verified = runner.invoke(app, ["ledger", "verify", "--org", "acme"])
    assert verified.exit_code == 0, verified.output

    # Someone with write access to the bucket replaces an evidence file.
    victim = plan.files[0]
    s3.tamper(victim.storage_name, b"%PDF-1.4 a different story\n")
    verified = runner.invoke(app, ["ledger", "verify", "--org", "acme"])
    assert verified.exit_code == 1
    assert f"file {victim.sha256} ({victim.original_name}): stored bytes have another" in (
        verified.stderr
    )
    with pytest.raises(Conflict) as refused:
        b"".join(iter_pack(start_export(actor=cast["erin"], case=case)))
    assert refused.value.code == "evidence_corrupted"
    assert f"Evidence file {victim.sha256} is corrupted in storage" in refused.value.message

    # A forged certificate is never mailed again.
    s3.tamper(certificate.storage_name, pdf.replace(b"%PDF", b"%PDX", 1))
    mail.outbox.clear()
    with pytest.raises(StoredFileCorrupted):
        receipts._send(receipt, None)
    assert mail.outbox == []


def _exports(case: Any) -> int:
    from offboard.ledger.models import LedgerEntry

    return LedgerEntry.objects.filter(case=case, type="case.exported").count()


def test_an_export_naming_an_object_gone_from_the_bucket_records_nothing(s3, case, cast) -> None:
    """Every file the case's events name is looked up (several at a time) before the export is
    recorded: the one missing is named, with the event that names it."""
    case = close_with_approvals(settle_everything(case, cast), cast)
    plan = start_export(actor=cast["erin"], case=case)  # all there: recorded
    assert _exports(case) == 1
    victim = next(f for f in plan.files if f != plan.certificate)
    s3.bare.delete_object(Bucket=s3.name, Key=s3.key(victim.storage_name))
    with pytest.raises(Conflict) as refused:
        start_export(actor=cast["erin"], case=case)
    assert refused.value.code == "evidence_missing"
    assert f"evidence file {victim.sha256} referenced by event #" in refused.value.message
    assert _exports(case) == 1


def test_an_export_while_the_store_is_down_says_so_and_records_nothing(
    s3_behind_proxy, proxy, case, cast
) -> None:
    from offboard.evidence.storage import StorageUnavailable

    case = close_with_approvals(settle_everything(case, cast), cast)
    start_export(actor=cast["erin"], case=case)  # the certificate is issued and stored
    proxy.stop()
    with pytest.raises(StorageUnavailable) as failed:
        start_export(actor=cast["erin"], case=case)
    assert "looking up files failed" in failed.value.message
    assert _exports(case) == 1


@pytest.mark.offline
def test_a_64_mib_file_goes_up_and_comes_down_in_bounded_memory(s3, alice, settings) -> None:
    """Upload in 5 MiB parts, download from the object's streaming body: the peak of Python
    allocations is a few parts going up (measured: 4 parts whatever the file's size, 16 or 64
    MiB) and about one read chunk coming down."""
    reconfigure(
        settings, multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20, max_concurrency=1
    )
    size = 64 * 2**20
    block = os.urandom(2**20)
    spool = io.BytesIO()  # not traced: made before tracing starts
    for i in range(64):
        spool.write(block[i:] + block[:i])
    digest = hashlib.sha256(spool.getbuffer()).hexdigest()

    class Source(io.RawIOBase):  # an upload as the web server hands it over, chunk by chunk
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            data = spool.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)

    spool.seek(0)
    tracemalloc.start()
    try:
        evidence = upload_evidence(actor=alice, stream=Source(), name="big.bin")
        before, up_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        hasher = hashlib.sha256()
        with open_stored(evidence.storage_name) as stream:
            while chunk := stream.read(2**20):
                hasher.update(chunk)
        _, down_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert evidence.size == size and evidence.sha256 == digest == hasher.hexdigest()
    assert s3.checksum(evidence.storage_name)  # multipart, checked part by part
    assert up_peak < 24 * 2**20, f"upload peak {up_peak / 2**20:.1f} MiB"
    # Reading adds about its 1 MiB chunks to what the upload's client left cached.
    assert down_peak - before < 4 * 2**20, f"download peak {(down_peak - before) / 2**20:.1f} MiB"


def test_readiness_asks_the_bucket(s3, settings, db) -> None:
    ready = Client().get("/health/ready")
    assert ready.json()["checks"]["storage"]["ok"] is True
    assert ready.json()["checks"]["storage"]["kind"] == "s3"
    reconfigure(settings, bucket_name="no-such-bucket")
    missing = Client().get("/health/ready")
    assert missing.status_code == 503
    assert missing.json()["checks"]["storage"] == {
        "ok": False,
        "problem": "storage is unavailable",
        "ms": missing.json()["checks"]["storage"]["ms"],
    }


def test_upload_evidence_then_read_with_the_prefix(s3, alice) -> None:
    """The key prefix isolates Offboard's objects in a shared bucket."""
    stored = upload_evidence(actor=alice, stream=io.BytesIO(b"%PDF-1.4 x"), name="x.pdf")
    assert all(k.startswith("offboard/evidence/") for k in s3.objects())
    with open_stored(stored.storage_name) as f:
        assert f.read() == b"%PDF-1.4 x"
