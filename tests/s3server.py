"""An S3-compatible server on loopback for tests and benchmarks: moto's standalone server
(`moto_server`, from `moto[server]`; ../shared/design/TESTING.md, "AWS IAM and S3").

    with moto_server(tmp_path) as url:          # http://127.0.0.1:PORT, any access key
        bucket = new_bucket(url)                # a fresh bucket of its own
        env = s3_env(url, bucket)               # OFFBOARD_STORAGE=s3 ... for a subprocess

`s3_server` is the same as a session fixture. Without `moto_server` it skips with the reason
(a failure under OFFBOARD_REQUIRE_SERVICES=1). moto accepts any key: `s3_env` sets dummy
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, which is how boto3's standard chain finds them.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.moto import MOTO_SERVER, require_moto
from tests.smtp import free_port

REGION = "us-east-1"
ACCESS_KEY = "AKIAOFFBOARDTEST0000"
SECRET_KEY = "offboard-test-secret"


@contextlib.contextmanager
def moto_server(tmp_path: Path | None = None) -> Iterator[str]:
    """`moto_server -H 127.0.0.1 -p PORT` until the block ends; yields its URL. Its output goes
    to `tmp_path/moto_server.log` when a directory is given."""
    require_moto()
    port = free_port()
    log: Any = subprocess.DEVNULL
    if tmp_path is not None:
        log = open(Path(tmp_path) / "moto_server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    try:
        wait_until_up(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if log is not subprocess.DEVNULL:
            log.close()


def wait_until_up(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/moto-api/data.json")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.05)


def client(url: str, **config: Any) -> Any:
    """A bare boto3 S3 client on the server (path-style addressing, one attempt)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    ).client(
        "s3",
        endpoint_url=url,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": 1},
            **config,
        ),
    )


def new_bucket(url: str, name: str = "") -> str:
    """A new, empty bucket (one per test: the server is shared)."""
    name = name or f"offboard-{uuid.uuid4().hex[:12]}"
    client(url).create_bucket(Bucket=name)
    return name


def s3_env(url: str, bucket: str, prefix: str = "") -> dict[str, str]:
    """The environment that points Offboard at the bucket (docs/deploy.md, "Storage")."""
    env = {
        "OFFBOARD_STORAGE": "s3",
        "OFFBOARD_S3_BUCKET": bucket,
        "OFFBOARD_S3_ENDPOINT_URL": url,
        "OFFBOARD_S3_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    if prefix:
        env["OFFBOARD_S3_PREFIX"] = prefix
    return env


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto_server for the test session (per xdist worker): its URL."""
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url
