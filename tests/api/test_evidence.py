"""Evidence files: upload by content, read metadata, download the stored bytes."""

import hashlib

from offboard.evidence.models import EvidenceFile
from offboard.ledger.models import LedgerEntry

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_an_upload_is_stored_by_its_sha256_with_a_sniffed_type(api):
    response = api("oscar").upload("/evidence", PNG, "screenshot.pdf")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert (body["size"], body["media_type"], body["name"]) == (
        len(PNG),
        "image/png",
        "screenshot.pdf",
    )
    stored = EvidenceFile.objects.get(sha256=body["sha256"])
    assert stored.uploaded_by.username == "oscar"
    assert LedgerEntry.objects.filter(type="evidence_file.stored").count() == 1


def test_the_same_bytes_uploaded_twice_are_one_file(api):
    first = api("alice").upload("/evidence", b"same bytes", "a.txt").json()
    second = api("bob").upload("/evidence", b"same bytes", "b.txt").json()

    assert first["sha256"] == second["sha256"]
    assert second["name"] == "a.txt"
    assert EvidenceFile.objects.count() == 1


def test_an_empty_upload_is_refused(api):
    response = api("alice").upload("/evidence", b"", "empty.txt")

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"] == {"file": ["is empty"]}
    assert EvidenceFile.objects.count() == 0


def test_an_upload_over_the_size_limit_is_413_naming_the_file(api, settings):
    """Cut off as it is read (core/bodies.py), not after it was spooled whole."""
    settings.OFFBOARD_MAX_UPLOAD_BYTES = 1024 * 1024

    response = api("alice").upload("/evidence", b"x" * (1024 * 1024 + 1), "big.bin")

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert error["details"]["fields"] == {"file": ["is larger than the 1 MiB upload limit"]}
    assert EvidenceFile.objects.count() == 0


def test_metadata_is_read_by_sha256(api):
    sha = api("alice").upload("/evidence", b"%PDF-1.4 certificate", "cert.pdf").json()["sha256"]

    response = api("erin").get(f"/evidence/{sha.upper()}")

    assert response.status_code == 200
    assert response.json()["name"] == "cert.pdf"
    assert response.json()["uploaded_by_id"] == EvidenceFile.objects.get().uploaded_by_id


def test_the_content_downloads_as_an_attachment(api):
    content = b"%PDF-1.4 deletion certificate\n"
    sha = api("alice").upload("/evidence", content, "deletion certificate.pdf").json()["sha256"]

    response = api("erin").get(f"/evidence/{sha}/content")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "deletion certificate.pdf" in response["Content-Disposition"]


def test_an_unknown_sha256_is_not_found(api):
    response = api("alice").get(f"/evidence/{'0' * 64}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
