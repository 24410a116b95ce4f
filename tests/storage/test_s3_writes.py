"""Evidence written to S3 (moto_server on loopback): selected by the environment only, stored
under its content address with the store checking a SHA-256 of what it receives, through the
service, the API and the web upload alike."""

import hashlib
import io
import json
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from offboard.evidence.models import EvidenceFile
from offboard.evidence.services import upload_evidence
from offboard.evidence.storage import storage_name_for
from offboard.ledger.models import LedgerEntry
from offboard.settings import evidence_storage
from tests.api.conftest import Api, token_for
from tests.storage.conftest import b64

PDF = b"%PDF-1.4 a signed handover letter\n"


# --- configuration --------------------------------------------------------------------------


@pytest.mark.offline
def test_local_files_are_the_default_and_s3_needs_a_bucket() -> None:
    assert evidence_storage({}) == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert evidence_storage({"OFFBOARD_STORAGE": "local"})["BACKEND"].endswith("FileSystemStorage")
    with pytest.raises(ImproperlyConfigured, match="OFFBOARD_S3_BUCKET must name the bucket"):
        evidence_storage({"OFFBOARD_STORAGE": "s3"})
    with pytest.raises(ImproperlyConfigured, match="OFFBOARD_STORAGE='gcs' is not known"):
        evidence_storage({"OFFBOARD_STORAGE": "gcs"})
    with pytest.raises(ImproperlyConfigured, match="OFFBOARD_S3_MAX_ATTEMPTS='0' must be"):
        evidence_storage(
            {"OFFBOARD_STORAGE": "s3", "OFFBOARD_S3_BUCKET": "b", "OFFBOARD_S3_MAX_ATTEMPTS": "0"}
        )
    options = evidence_storage(
        {"OFFBOARD_STORAGE": "S3", "OFFBOARD_S3_BUCKET": "evidence", "OFFBOARD_S3_PREFIX": "/a/b/"}
    )["OPTIONS"]
    assert options["bucket_name"] == "evidence" and options["location"] == "a/b"
    assert options["region_name"] == "us-east-1" and options["endpoint_url"] is None
    # Credentials come from boto3's chain, never from the settings.
    assert not {k for k in options if "key" in k or "secret" in k or "token" in k}


@pytest.mark.offline
def test_the_settings_module_reads_the_environment_contract(tmp_path) -> None:
    """As a process started by an operator sees it (settings.py, not a test override)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "OFFBOARD_DEBUG": "true",
        "OFFBOARD_VAR_DIR": str(tmp_path),
        "OFFBOARD_STORAGE": "s3",
        "OFFBOARD_S3_BUCKET": "evidence-bucket",
        "OFFBOARD_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "OFFBOARD_S3_REGION": "eu-west-3",
        "OFFBOARD_S3_PREFIX": "acme",
    }
    code = (
        "import django; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "s = storages['default']\n"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.region_name, s.location,"
        " s.object_parameters['ChecksumAlgorithm'], s.client_config.connect_timeout,"
        " s.client_config.retries['total_max_attempts'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [
        "EvidenceS3Storage",
        "evidence-bucket",
        "http://127.0.0.1:9",
        "eu-west-3",
        "acme",
        "SHA256",
        "5.0",
        "3",
    ]
    missing = {k: v for k, v in env.items() if k != "OFFBOARD_S3_BUCKET"}
    failed = subprocess.run(
        [sys.executable, "-c", code], env=missing, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "OFFBOARD_S3_BUCKET must name the bucket when OFFBOARD_STORAGE=s3" in failed.stderr


# --- writes ---------------------------------------------------------------------------------


def test_an_upload_is_stored_under_its_hash_with_the_store_s_sha256_checksum(s3, alice) -> None:
    evidence = upload_evidence(actor=alice, stream=io.BytesIO(PDF), name="letter.pdf")
    sha = hashlib.sha256(PDF).hexdigest()
    assert evidence.sha256 == sha
    assert evidence.storage_name == storage_name_for(alice.org.pk, sha)
    assert s3.objects() == [f"offboard/evidence/{alice.org.pk}/{sha[:2]}/{sha}"]
    assert s3.get(evidence.storage_name) == PDF
    # The store was sent a SHA-256 and checked the bytes against it; it keeps it.
    assert s3.checksum(evidence.storage_name) == b64(sha)
    # The same bytes again: the same row, no second object, nothing overwritten.
    again = upload_evidence(actor=alice, stream=io.BytesIO(PDF), name="copy.pdf")
    assert again.pk == evidence.pk and len(s3.objects()) == 1


@pytest.mark.offline
def test_a_large_file_goes_up_in_parts_each_checked_by_the_store(s3_behind_proxy, alice) -> None:
    content = os.urandom(11 * 2**20)  # three parts of 5, 5 and 1 MiB
    evidence = upload_evidence(actor=alice, stream=io.BytesIO(content), name="dump.bin")
    assert s3_behind_proxy.get(evidence.storage_name) == content
    # A multipart object's checksum is the SHA-256 of its parts' SHA-256s (AWS appends "-3"
    # for 3 parts; moto does not): each part was checked by the store as it arrived.
    part_size = 5 * 2**20
    parts = [content[i : i + part_size] for i in range(0, len(content), part_size)]
    composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).hexdigest()
    assert s3_behind_proxy.checksum(evidence.storage_name).split("-")[0] == b64(composite)
    assert s3_behind_proxy.pending_uploads() == []


@pytest.mark.offline
def test_the_api_and_the_web_drop_zone_store_into_the_bucket(s3, cast, case) -> None:
    api = Api(token_for(cast["alice"]))
    response = api.upload(content=PDF, name="letter.pdf")
    assert response.status_code == 201, response.content
    sha = response.json()["sha256"]
    browser = Client()
    browser.force_login(cast["alice"].user)
    other = b"%PDF-1.4 the client's acceptance\n"
    dropped = browser.post(
        f"/cases/{case.ref}/evidence/upload", {"file": SimpleUploadedFile("accept.pdf", other)}
    )
    assert dropped.status_code == 201, dropped.content
    other_sha = dropped.json()["sha256"]
    for digest, content in ((sha, PDF), (other_sha, other)):
        row = EvidenceFile.objects.get(org=cast["alice"].org, sha256=digest)
        assert s3.get(row.storage_name) == content
        assert s3.checksum(row.storage_name) == b64(digest)
        assert [digest] in stored_events_files()


def stored_events_files() -> list[list[str]]:
    bodies = LedgerEntry.objects.filter(type="evidence_file.stored").values_list("body", flat=True)
    return [json.loads(bytes(body))["files"] for body in bodies]
