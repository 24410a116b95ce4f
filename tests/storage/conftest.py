"""Evidence storage in S3: one moto_server per test process (tests/s3server.py), a bucket of
its own per test, and Offboard pointed at it through the same environment contract an
operator uses (settings.evidence_storage)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from offboard.settings import evidence_storage
from tests.portal.conftest import BASE, deliver_work, token_of, upload_files
from tests.s3server import client, new_bucket, s3_env, s3_server
from tests.storage.faultproxy import FaultyProxy

__all__ = ["s3_server"]


@dataclass
class Bucket:
    url: str  # where Offboard talks to the store (moto, or the proxy in front of it)
    name: str
    prefix: str
    bare: Any  # a boto3 client straight to moto, for looking and tampering

    def key(self, storage_name: str) -> str:
        return f"{self.prefix}/{storage_name}" if self.prefix else storage_name

    def objects(self) -> list[str]:
        listed = self.bare.list_objects_v2(Bucket=self.name)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def get(self, storage_name: str) -> bytes:
        return bytes(
            self.bare.get_object(Bucket=self.name, Key=self.key(storage_name))["Body"].read()
        )

    def tamper(self, storage_name: str, content: bytes) -> None:
        """Overwrite the object behind Offboard's back, as someone with bucket access could."""
        self.bare.put_object(Bucket=self.name, Key=self.key(storage_name), Body=content)

    def checksum(self, storage_name: str) -> str:
        head = self.bare.head_object(
            Bucket=self.name, Key=self.key(storage_name), ChecksumMode="ENABLED"
        )
        return str(head.get("ChecksumSHA256", ""))

    def pending_uploads(self) -> list[str]:
        listed = self.bare.list_multipart_uploads(Bucket=self.name)
        return [u["Key"] for u in listed.get("Uploads", [])]


def b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def use_store(
    settings: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **options: Any
) -> None:
    """Point Offboard's default storage at the store `env` describes (as settings.py would)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, env[name])
    backend = evidence_storage(env)
    backend["OPTIONS"].update(options)
    settings.STORAGES = {**settings.STORAGES, "default": backend}


def reconfigure(settings: Any, **options: Any) -> None:
    """Change the S3 backend's options (a new backend is made, as at a process start)."""
    default = settings.STORAGES["default"]
    changed = {**default, "OPTIONS": {**default["OPTIONS"], **options}}
    settings.STORAGES = {**settings.STORAGES, "default": changed}


@pytest.fixture
def s3(s3_server: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """Offboard's evidence in a new bucket, under a key prefix; retries kept short."""
    bucket = Bucket(s3_server, new_bucket(s3_server), "offboard", client(s3_server))
    env = s3_env(s3_server, bucket.name, prefix="/offboard/")
    use_store(settings, monkeypatch, env, max_attempts=2, connect_timeout=2, read_timeout=10)
    return bucket


@pytest.fixture
def proxy(s3_server: str) -> Iterator[FaultyProxy]:
    port = int(s3_server.rsplit(":", 1)[1])
    faulty = FaultyProxy(("127.0.0.1", port))
    yield faulty
    faulty.stop()


@pytest.fixture
def s3_behind_proxy(
    s3_server: str, proxy: FaultyProxy, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Bucket:
    """Like `s3`, through a proxy that can break uploads; small parts so that a multipart
    upload needs only a few MiB (S3's smallest part is 5 MiB)."""
    bucket = Bucket(proxy.url, new_bucket(s3_server), "", client(s3_server))
    use_store(
        settings,
        monkeypatch,
        s3_env(proxy.url, bucket.name),
        max_attempts=2,
        connect_timeout=2,
        read_timeout=10,
        multipart_threshold=5 * 2**20,
        multipart_chunksize=5 * 2**20,
    )
    return bucket


@pytest.fixture
def portal(s3: Any, case: Any, cast: dict[str, Any], client_contract: Any) -> dict[str, Any]:
    """tests/portal's case, its files in the bucket, and Nina's portal link."""
    from offboard.portal.services import issue_portal_link

    files = upload_files(cast["alice"])
    portal_case = deliver_work(case, cast, files)
    nina = client_contract[0].contacts.get(email="nina@northwind.example")
    link = issue_portal_link(actor=cast["alice"], case=portal_case, contact=nina, base_url=BASE)
    return {"case": portal_case, "files": files, "token": token_of(link.url)}
