"""A store that is down, or that breaks an upload half-way (a proxy in front of moto_server cuts
the connection or answers 500 after some bytes of a PUT): the action fails with a message
saying what to do, and nothing is recorded as stored that is not — no evidence row, no ledger
event, no object, no multipart upload left open."""

import hashlib
import io
import os
from typing import Any

import pytest
from django.test import Client

from offboard.evidence.models import EvidenceFile
from offboard.evidence.services import atomic_with_files, store_file, upload_evidence
from offboard.evidence.storage import StorageUnavailable
from offboard.ledger.models import LedgerEntry
from offboard.ledger.recorder import record_event
from tests.api.conftest import Api, token_for
from tests.s3server import s3_env
from tests.smtp import free_port
from tests.storage.conftest import use_store

PDF = b"%PDF-1.4 the data-return certificate\n" * 2000  # 74 KB: one PUT


def nothing_recorded(org: Any) -> bool:
    return (
        not EvidenceFile.objects.filter(org=org).exists()
        and not LedgerEntry.objects.filter(org=org, type="evidence_file.stored").exists()
    )


@pytest.fixture
def store_down(settings: Any, monkeypatch: pytest.MonkeyPatch, db: Any) -> None:
    """Offboard pointed at a port where nothing listens."""
    down = f"http://127.0.0.1:{free_port()}"
    use_store(settings, monkeypatch, s3_env(down, "evidence"), max_attempts=2, connect_timeout=1)


def test_an_upload_to_a_store_that_is_down_fails_and_records_nothing(store_down, cast) -> None:
    alice = cast["alice"]
    with pytest.raises(StorageUnavailable) as failed:
        upload_evidence(actor=alice, stream=io.BytesIO(PDF), name="certificate.pdf")
    assert failed.value.message.startswith(
        "Evidence storage is unavailable (storing a file failed: EndpointConnectionError). "
    )
    response = Api(token_for(alice)).upload(content=PDF, name="certificate.pdf")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "storage_unavailable"
    assert "ask your administrator to check the storage" in error["message"]
    assert nothing_recorded(alice.org)
    ready = Client().get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage"]["problem"] == "storage is unavailable"


@pytest.mark.offline
def test_downloads_from_a_store_that_is_down_answer_503_saying_so(
    portal, s3, settings, monkeypatch, cast
) -> None:
    case, file = portal["case"], portal["files"]["report"]
    use_store(settings, monkeypatch, s3_env(f"http://127.0.0.1:{free_port()}", s3.name))
    browser = Client()
    browser.force_login(cast["erin"].user)
    page = browser.get(f"/cases/{case.ref}/files/{file.sha256}")
    assert page.status_code == 503
    assert "Evidence storage is unavailable (reading a file failed" in page.content.decode()
    api = Api(token_for(cast["erin"])).get(f"/evidence/{file.sha256}/content")
    assert api.status_code == 503 and api.json()["error"]["code"] == "storage_unavailable"
    visitor = Client(HTTP_USER_AGENT="Mozilla/5.0")
    portal_page = visitor.get(f"/portal/{portal['token']}/files/{file.sha256}")
    assert portal_page.status_code == 503
    assert "cannot be downloaded right now" in portal_page.content.decode()
    # A download the store could not serve is not recorded as the client's.
    assert not LedgerEntry.objects.filter(case=case, type__contains="download").exists()


@pytest.mark.parametrize("mode", ["cut", "500"])
def test_a_store_that_breaks_a_single_upload_leaves_nothing(
    s3_behind_proxy, proxy, alice, mode
) -> None:
    proxy.mode, proxy.after = mode, 4096
    with pytest.raises(StorageUnavailable) as failed:
        upload_evidence(actor=alice, stream=io.BytesIO(PDF), name="certificate.pdf")
    assert "storing a file failed" in failed.value.message
    assert "The file was not stored and nothing was recorded: send it again later." in (
        failed.value.message
    )
    assert proxy.faults == 2  # tried twice (OFFBOARD_S3_MAX_ATTEMPTS in the fixture)
    assert nothing_recorded(alice.org)
    assert s3_behind_proxy.objects() == []
    # Once the store works again, the same upload goes through.
    proxy.mode = "pass"
    stored = upload_evidence(actor=alice, stream=io.BytesIO(PDF), name="certificate.pdf")
    assert s3_behind_proxy.get(stored.storage_name) == PDF


@pytest.mark.offline
@pytest.mark.parametrize("mode", ["cut", "500"])
def test_a_store_that_breaks_a_multipart_upload_leaves_no_part_behind(
    s3_behind_proxy, proxy, alice, mode
) -> None:
    content = os.urandom(11 * 2**20)  # three parts
    proxy.mode, proxy.after = mode, 2**20
    proxy.only = b"partNumber=2"  # the first part goes in, the second breaks
    with pytest.raises(StorageUnavailable):
        upload_evidence(actor=alice, stream=io.BytesIO(content), name="dump.bin")
    assert proxy.faults >= 2
    assert nothing_recorded(alice.org)
    assert s3_behind_proxy.objects() == []
    assert s3_behind_proxy.pending_uploads() == []  # aborted: no stored part is billed or kept


def test_when_the_second_file_of_an_action_fails_the_first_is_removed(
    s3_behind_proxy, proxy, alice
) -> None:
    first, second = b"%PDF-1.4 first\n", b"%PDF-1.4 second\n" * 400
    second_sha = hashlib.sha256(second).hexdigest()
    proxy.mode, proxy.after, proxy.only = "500", 100, second_sha.encode()

    def action() -> None:
        with atomic_with_files():
            files = [
                store_file(actor=alice, stream=io.BytesIO(first), name="a.pdf"),
                store_file(actor=alice, stream=io.BytesIO(second), name="b.pdf"),
            ]
            record_event(actor=alice, type="evidence_file.stored", data={}, files=files)

    with pytest.raises(StorageUnavailable):
        action()
    assert nothing_recorded(alice.org)
    # The first file's object was written, then removed when the second failed.
    assert s3_behind_proxy.objects() == []
