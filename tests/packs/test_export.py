"""Exporting: who may, which checkpoint the pack uses, the event it records, streaming with
bounded memory, and the API and web downloads."""

import hashlib
import io
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from offboard.core.errors import Conflict, PermissionDenied
from offboard.ledger.models import Checkpoint, LedgerEntry
from offboard.packs import export as pack
from offboard.packs.export import iter_pack, start_export
from offboard.packs.verify import parse_key, verify_pack
from tests.api.conftest import Api, token_for
from tests.factories import close_with_approvals, settle_everything, upload


def closed(case: Any, cast: dict[str, Any]) -> Any:
    return close_with_approvals(settle_everything(case, cast), cast)


def write(plan: Any, path: Path) -> Path:
    path.write_bytes(b"".join(iter_pack(plan)))
    return path


def exported_events(case: Any) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(case=case, type="case.exported").order_by("index"))


# --- who may export -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["oscar", "dave"])
def test_operators_and_finance_may_not_export(case: Any, cast: dict[str, Any], who: str) -> None:
    with pytest.raises(PermissionDenied) as refused:
        start_export(actor=cast[who], case=case)
    assert "may not do this (cases.export)" in refused.value.message
    assert "admin, auditor, manager" in refused.value.message
    assert not exported_events(case)
    assert not Checkpoint.objects.filter(reason="export").exists()


@pytest.mark.parametrize("who", ["erin", "bob", "alice"])
def test_auditors_managers_and_admins_export_and_the_export_is_an_event(
    case: Any, cast: dict[str, Any], who: str
) -> None:
    plan = start_export(actor=cast[who], case=case)
    (event,) = exported_events(case)
    assert event.actor["username"] == who
    # Inside the pack it describes: the last event of the case and the checkpoint's last leaf.
    assert plan.event_indices[-1] == event.index == plan.checkpoint.size - 1
    assert plan.checkpoint.reason == "export" and plan.checkpoint.case_id == case.pk
    assert event.data["events"] == len(plan.event_indices) == event.case_seq
    assert event.data["state_digest"] == plan.state_digest
    assert event.data["case_state"] == "active"
    # It commits to the exact bytes of case.json and the README.
    assert event.data["case_json_sha256"] == hashlib.sha256(plan.case_json).hexdigest()
    assert event.data["readme_sha256"] == hashlib.sha256(plan.readme).hexdigest()
    assert event.data["certificate_sha256"] is None  # an open case: an interim report
    assert plan.event_indices == list(
        LedgerEntry.objects.filter(case=case).order_by("index").values_list("index", flat=True)
    )


def test_a_closed_case_pack_holds_every_event_and_proves_it_extends_the_closure_checkpoint(
    case: Any, cast: dict[str, Any]
) -> None:
    case = closed(case, cast)
    closure = Checkpoint.objects.get(case=case, reason="case_closed")
    plan = start_export(actor=cast["erin"], case=case)
    assert plan.checkpoint.size > closure.size
    assert plan.earlier_sizes[closure.size] == bytes(closure.root)  # a consistency proof
    # Every event of the case: the closure, the certificate issued for it, the export.
    assert plan.event_indices == list(
        LedgerEntry.objects.filter(case=case).order_by("index").values_list("index", flat=True)
    )
    types = list(
        LedgerEntry.objects.filter(index__in=plan.event_indices[-3:], org=case.org)
        .order_by("index")
        .values_list("type", flat=True)
    )
    assert types == ["case.closed", "case.certificate_issued", "case.exported"]
    (event,) = exported_events(case)
    assert event.data["case_state"] == "closed"
    assert event.data["certificate_sha256"] == plan.certificate.sha256  # type: ignore[union-attr]
    case.refresh_from_db()
    assert case.state == "closed"


def test_a_closed_case_pack_carries_the_certificate_issued_at_closure_byte_for_byte(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    import zipfile

    from offboard.notifications import receipts
    from offboard.notifications.selectors import receipt_for

    case = closed(case, cast)
    receipts.process_pending()  # the closure job: certificate issued (and the receipt sent)
    issued = receipt_for(case)
    assert issued is not None and issued.certificate is not None
    (event,) = LedgerEntry.objects.filter(case=case, type="case.certificate_issued")
    plan = start_export(actor=cast["erin"], case=case)
    assert event.index in plan.event_indices  # a checkpoint past closure covers it
    path = write(plan, tmp_path / "pack.zip")
    with zipfile.ZipFile(path) as zf:
        pdf = zf.read(f"{plan.base}/data/certificate.pdf")
    assert hashlib.sha256(pdf).hexdigest() == issued.certificate.sha256 == event.files[0]
    report = verify_pack(path)
    assert report.ok
    (check,) = [c for c in report.checks if c.name == "certificate"]
    assert "is the certificate issued at closure" in check.summary

    # A forger who swaps the certificate and rebuilds every manifest is still caught.
    from tests.packs.conftest import members_of, rebag, write_pack

    base, members = members_of(path)
    middle = len(pdf) // 2
    members["data/certificate.pdf"] = pdf[:middle] + bytes([pdf[middle] ^ 1]) + pdf[middle + 1 :]
    forged = write_pack(tmp_path / "forged.zip", base, rebag(members))
    report = verify_pack(forged)
    assert not report.ok
    (check,) = [c for c in report.checks if c.name == "certificate"]
    assert not check.ok and check.problems[0].startswith("data/certificate.pdf has sha256")


def test_a_second_export_signs_a_checkpoint_that_covers_the_first_one(
    case: Any, cast: dict[str, Any]
) -> None:
    case = closed(case, cast)
    first = start_export(actor=cast["erin"], case=case)
    second = start_export(actor=cast["erin"], case=case)
    assert second.checkpoint.reason == "export" and second.checkpoint.case_id == case.pk
    first_event = exported_events(case)[0]
    assert first_event.index in second.event_indices
    assert second.checkpoint.size > first.checkpoint.size
    assert second.earlier_sizes[first.checkpoint.size] == bytes(first.checkpoint.root)


def test_the_export_checkpoint_ends_at_the_export_event_even_while_others_append(
    case: Any, cast: dict[str, Any]
) -> None:
    """Other events of the organization before and after do not come between the export
    event and its checkpoint: both are made under the log's lock."""
    from django.db import transaction

    from offboard.ledger.recorder import record_event

    def org_event() -> None:
        with transaction.atomic():
            record_event(actor=cast["alice"], type="test.org_note", data={})

    org_event()
    plan = start_export(actor=cast["bob"], case=case)
    org_event()
    last = LedgerEntry.objects.get(org=case.org, index=plan.checkpoint.size - 1)
    assert (last.type, last.case_id) == ("case.exported", case.pk)
    assert LedgerEntry.objects.filter(org=case.org).count() == plan.checkpoint.size + 1


def test_a_closed_case_whose_certificate_is_still_queued_gets_it_issued_before_export(
    case: Any, cast: dict[str, Any]
) -> None:
    from offboard.notifications.selectors import receipt_for

    case = closed(case, cast)  # the receipt's job has not run (OFFBOARD_RECEIPT_ON_COMMIT=off)
    receipt = receipt_for(case)
    assert receipt is not None and receipt.certificate_id is None
    plan = start_export(actor=cast["erin"], case=case)
    receipt.refresh_from_db()
    assert receipt.certificate_id is not None and plan.certificate == receipt.certificate
    (issued,) = LedgerEntry.objects.filter(case=case, type="case.certificate_issued")
    assert issued.index in plan.event_indices


def test_a_missing_evidence_file_stops_the_export_before_anything_is_recorded(
    case: Any, cast: dict[str, Any], settings: Any
) -> None:
    case = closed(case, cast)
    stored = Path(settings.MEDIA_ROOT).rglob("*")
    for path in [p for p in stored if p.is_file()]:
        path.unlink()
    with pytest.raises(Conflict) as refused:
        start_export(actor=cast["erin"], case=case)
    assert refused.value.code == "evidence_missing"
    assert "is missing from storage" in refused.value.message
    assert not exported_events(case)


def test_a_corrupted_evidence_file_stops_the_stream(
    case: Any, cast: dict[str, Any], settings: Any
) -> None:
    case = closed(case, cast)
    plan = start_export(actor=cast["erin"], case=case)
    for path in [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]:
        path.write_bytes(b"rotten bits")
    with pytest.raises(Conflict, match="is corrupted in storage"):
        b"".join(iter_pack(plan))


def _opens(monkeypatch: Any) -> list[str]:
    """The names `iter_pack` opens in storage, in order."""
    from offboard.evidence import storage

    opened: list[str] = []
    real = storage.open_stored

    def counting(name: str, **kwargs: Any) -> Any:
        opened.append(name)
        return real(name, **kwargs)

    monkeypatch.setattr(storage, "open_stored", counting)
    return opened


def test_a_file_s_crc_is_recorded_when_stored_and_the_export_reads_it_once(
    case: Any, cast: dict[str, Any], monkeypatch: Any, tmp_path: Path
) -> None:
    import zlib

    content = b"%PDF-1.4 recorded crc\n" * 1000
    proof = upload(cast["alice"], content, "crc.pdf")
    assert proof.crc32 == zlib.crc32(content) and proof.size == len(content)
    case = closed(case, cast)
    plan = start_export(actor=cast["erin"], case=case)
    opened = _opens(monkeypatch)
    path = write(plan, tmp_path / "once.zip")
    # each exactly once (the certificate is a member twice: data/certificate.pdf, and among the
    # files its event names)
    members = [f.storage_name for f in plan.files] + [plan.certificate.storage_name]
    assert sorted(opened) == sorted(members)
    assert verify_pack(path).ok


def test_a_file_stored_before_crcs_were_recorded_is_read_twice_and_exports_the_same(
    case: Any, cast: dict[str, Any], monkeypatch: Any, tmp_path: Path
) -> None:
    from offboard.evidence.models import EvidenceFile

    case = closed(case, cast)
    plan = start_export(actor=cast["erin"], case=case)
    EvidenceFile.objects.filter(org=case.org).update(crc32=None)
    for f in [*plan.files, plan.certificate]:
        f.refresh_from_db()
    opened = _opens(monkeypatch)
    path = write(plan, tmp_path / "twice.zip")
    members = [f.storage_name for f in plan.files] + [plan.certificate.storage_name]
    assert sorted(opened) == sorted(2 * members)
    assert verify_pack(path).ok


def test_a_wrong_recorded_crc_stops_the_stream(case: Any, cast: dict[str, Any]) -> None:
    from offboard.evidence.models import EvidenceFile

    case = closed(case, cast)
    plan = start_export(actor=cast["erin"], case=case)
    first = plan.files[0]
    EvidenceFile.objects.filter(pk=first.pk).update(crc32=(first.crc32 + 1) % 2**32)
    plan.files[0].refresh_from_db()
    with pytest.raises(Conflict, match="changed in storage") as refused:
        b"".join(iter_pack(plan))
    assert refused.value.code == "evidence_corrupted"


# --- streaming ----------------------------------------------------------------------------------


def test_the_pack_streams_in_chunks_with_bounded_memory(case: Any, cast: dict[str, Any]) -> None:
    from offboard.cases.services import update_register_item

    size = 24 * 1024 * 1024
    big = upload(cast["alice"], hashlib.sha256(b"seed").digest() * (size // 32), "big.bin")
    item = case.deliverables.first()
    update_register_item(actor=cast["alice"], item=item, values={}, evidence=[big])
    plan = start_export(actor=cast["erin"], case=case)
    assert big in plan.files

    peak: list[int] = []

    def progress(n: int) -> None:
        if not tracemalloc.is_tracing():  # from the first evidence chunk on
            tracemalloc.start()

    chunks = 0
    largest = 0
    digest = hashlib.sha256()
    for chunk in iter_pack(plan, progress=progress):
        chunks += 1
        largest = max(largest, len(chunk))
        digest.update(chunk)
    peak.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    assert largest <= pack.CHUNK + 64 * 1024
    assert chunks > size // pack.CHUNK
    assert peak[0] < 6 * 1024 * 1024, f"peak {peak[0]:,} bytes while streaming {size:,}"


def test_the_zip_is_written_to_a_stream_that_cannot_seek(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.data += b
            return len(b)

    plan = start_export(actor=cast["erin"], case=case)
    pipe = Pipe()
    for chunk in iter_pack(plan):
        pipe.write(chunk)
    path = tmp_path / "piped.zip"
    path.write_bytes(bytes(pipe.data))
    report = verify_pack(path, key=parse_key(plan.checkpoint.key.verifier_key))
    assert report.ok, [c.as_dict() for c in report.checks if not c.ok]


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
def closed_case(case: Any, cast: dict[str, Any]) -> Any:
    return closed(case, cast)


def test_the_api_streams_the_pack_as_an_attachment(
    closed_case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    response = Api(token_for(cast["erin"])).get(f"/cases/{closed_case.ref}/evidence-pack")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{closed_case.ref}-evidence-pack.zip"'
    )
    path = tmp_path / "download.zip"
    path.write_bytes(b"".join(response.streaming_content))
    cp = Checkpoint.objects.get(size=int(response["X-Offboard-Checkpoint-Size"]))
    report = verify_pack(path, key=parse_key(cp.key.verifier_key))
    assert report.outcome == "verified"
    assert all(a.proven for a in report.answers[:4])
    (event,) = exported_events(closed_case)
    assert (event.actor["username"], event.actor["auth"]) == ("erin", "token")


@pytest.mark.parametrize("who", ["oscar", "dave"])
def test_the_api_refuses_operators_and_finance(
    closed_case: Any, cast: dict[str, Any], who: str
) -> None:
    response = Api(token_for(cast[who])).get(f"/cases/{closed_case.ref}/evidence-pack")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "(cases.export)" in error["message"]
    assert not exported_events(closed_case)


def test_the_api_answers_404_for_another_organizations_case(closed_case: Any, mallory: Any) -> None:
    response = Api(token_for(mallory)).get(f"/cases/{closed_case.ref}/evidence-pack")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not exported_events(closed_case)


def test_the_api_needs_a_token(closed_case: Any) -> None:
    assert Api(None).get(f"/cases/{closed_case.ref}/evidence-pack").status_code == 401


def test_the_route_is_in_the_openapi_document(db: Any) -> None:
    from offboard.api import api

    schema = api.get_openapi_schema()
    operation = schema["paths"]["/api/v1/cases/{ref}/evidence-pack"]["get"]
    assert "application/zip" in operation["responses"]["200"]["content"]
    assert {"403", "404"} <= set(operation["responses"])


# --- the case page ------------------------------------------------------------------------------


def _browser(username: str) -> Client:
    browser = Client()
    assert browser.login(username=username, password="correct horse 1")
    return browser


def test_the_case_page_offers_the_download_to_auditors_and_streams_it(
    closed_case: Any, cast: dict[str, Any]
) -> None:
    browser = _browser("erin")
    page = browser.get(f"/cases/{closed_case.ref}/").content.decode()
    form = f'action="/cases/{closed_case.ref}/evidence-pack" method="post"'
    assert form in page and "Download evidence pack" in page
    # A GET would let another site trigger a recorded export: only a POST (with CSRF) exports.
    assert browser.get(f"/cases/{closed_case.ref}/evidence-pack").status_code == 405
    assert not exported_events(closed_case)
    csrf = Client(enforce_csrf_checks=True)
    assert csrf.login(username="erin", password="correct horse 1")
    assert csrf.post(f"/cases/{closed_case.ref}/evidence-pack").status_code == 403
    assert not exported_events(closed_case)
    response = browser.post(f"/cases/{closed_case.ref}/evidence-pack")
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content)[:4] == b"PK\x03\x04"
    (event,) = exported_events(closed_case)
    assert (event.actor["username"], event.actor["auth"]) == ("erin", "session")


def test_the_case_page_hides_the_download_from_operators_who_are_refused(
    closed_case: Any, cast: dict[str, Any]
) -> None:
    browser = _browser("oscar")
    page = browser.get(f"/cases/{closed_case.ref}/").content.decode()
    assert "Download evidence pack" not in page
    response = browser.post(f"/cases/{closed_case.ref}/evidence-pack")
    assert response.status_code == 403
    assert "(cases.export)" in response.content.decode()
    assert not exported_events(closed_case)


def test_the_download_of_another_organizations_case_is_404(closed_case: Any, mallory: Any) -> None:
    assert _browser("mallory").post(f"/cases/{closed_case.ref}/evidence-pack").status_code == 404


def test_a_redacted_event_is_exported_as_its_leaf_hash_and_still_verifies(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    from offboard.ledger.services import redact_event
    from offboard.packs.verify import layout
    from tests.packs.conftest import members_of

    case = closed(case, cast)
    erased = LedgerEntry.objects.filter(case=case, type="deliverable.accepted").first()
    assert erased is not None
    redact_event(actor=cast["alice"], index=erased.index, reason="Erasure request of 2026-11-30")
    plan = start_export(actor=cast["erin"], case=case)
    path = write(plan, tmp_path / "pack.zip")
    _, members = members_of(path)
    assert layout.event_path(erased.index) not in members
    assert (
        members[layout.redacted_path(erased.index)] == f"{bytes(erased.leaf_hash).hex()}\n".encode()
    )
    report = verify_pack(path, key=parse_key(plan.checkpoint.key.verifier_key))
    assert report.outcome == "verified", [c.as_dict() for c in report.checks if not c.ok]
    (events,) = [c for c in report.checks if c.name == "events"]
    assert "(1 erased)" in events.summary
    # The placeholder is justified by the redaction event of the same case, in the pack.
    (redaction,) = LedgerEntry.objects.filter(case=case, type="ledger.event_redacted")
    assert redaction.index in plan.event_indices
    assert any(f"#{erased.index}" in r for r in report.answers[4].reasons)
    assert report.answers[0].proven  # the closure still binds the registers
