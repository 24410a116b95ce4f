"""moto's standalone server (`moto_server`, from `moto[server]`) on loopback as the AWS IAM
peer of the AWS IAM connector's tests (../shared/design/TESTING.md, "AWS IAM and S3").

By default moto accepts any access key. `MotoServer.start()` turns its IAM authentication on:
the first three calls (unauthenticated) create an admin user with an allow-everything inline
policy and an access key, then `POST /moto-api/reset-auth 0` makes moto check every request's
signature and the caller's policies from then on — so a wrong secret is a real
SignatureDoesNotMatch, an unknown key a real InvalidClientTokenId and a missing permission a
real AccessDenied. Without `moto_server` the fixtures skip with the reason, or fail when
OFFBOARD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.smtp import free_port

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def require_moto() -> None:
    """A skip (a failure under OFFBOARD_REQUIRE_SERVICES=1) without moto_server or boto3."""
    reason = ""
    try:
        import boto3  # noqa: F401
    except ImportError:
        reason = "boto3 is not installed (make .venv/.installed-test)"
    if not reason and not MOTO_SERVER.exists():
        reason = f"{MOTO_SERVER} is not installed (moto[server], make .venv/.installed-test)"
    if reason:
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)


def iam_client(url: str, key_id: str, secret: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
    ).client(
        "iam",
        endpoint_url=url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


class MotoServer:
    """`moto_server -H 127.0.0.1 -p PORT`, IAM authentication on, and an admin key."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.key_id = ""
        self.secret = ""  # the admin's secret access key: what the tests search for
        self._admin: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _post(self, path: str, body: bytes) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"moto {path}: {resp.status} {data!r}")
        return data

    def start(self) -> MotoServer:
        require_moto()
        self.process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/moto-api/data.json")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.05)
        # Unauthenticated bootstrap (moto counts these three), then authentication on.
        anyone = iam_client(self.url, "AKIABOOTSTRAP0000000", "bootstrap-secret")
        anyone.create_user(UserName="offboard-admin")
        anyone.put_user_policy(
            UserName="offboard-admin", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL)
        )
        key = anyone.create_access_key(UserName="offboard-admin")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self._post("/moto-api/reset-auth", b"0")
        self._admin = iam_client(self.url, self.key_id, self.secret)
        self._admin.get_user()  # authentication works for the admin
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None

    def kill(self) -> None:
        """Down at once, as in a crash (SIGKILL)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    @property
    def iam(self) -> Any:
        """An admin IAM client (boto3), for seeding and looking."""
        return self._admin

    # --- seeding ---------------------------------------------------------------------------

    def scope(self) -> str:
        """A path of its own per test: the server is shared by the session."""
        return f"/t{uuid.uuid4().hex[:10]}/"

    def group(self, name: str, path: str = "/") -> str:
        self.iam.create_group(GroupName=name, Path=path)
        return name

    def policy(self, name: str) -> str:
        doc = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
        return str(
            self.iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
        )

    def user(
        self,
        name: str,
        path: str,
        *,
        email: str = "",
        groups: tuple[str, ...] = (),
        keys: int = 0,
        password: bool = False,
        mfa: bool = False,
        certificate: bool = False,
        ssh_key: bool = False,
        managed: tuple[str, ...] = (),
        inline: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """An IAM user with what it is given; returns its UserId, access keys and MFA serial."""
        iam = self.iam
        user = iam.create_user(
            UserName=name,
            Path=path,
            **({"Tags": [{"Key": "email", "Value": email}]} if email else {}),
        )["User"]
        out: dict[str, Any] = {"name": name, "id": user["UserId"], "keys": [], "secrets": []}
        for _ in range(keys):
            key = iam.create_access_key(UserName=name)["AccessKey"]
            out["keys"].append(key["AccessKeyId"])
            out["secrets"].append(key["SecretAccessKey"])
        if password:
            iam.create_login_profile(UserName=name, Password="Correct-Horse-1-battery")
        if mfa:
            serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{name}-mfa")[
                "VirtualMFADevice"
            ]["SerialNumber"]
            iam.enable_mfa_device(
                UserName=name,
                SerialNumber=serial,
                AuthenticationCode1="123456",
                AuthenticationCode2="654321",
            )
            out["mfa"] = serial
        if certificate:
            iam.upload_signing_certificate(UserName=name, CertificateBody=_certificate(name))
        if ssh_key:
            iam.upload_ssh_public_key(UserName=name, SSHPublicKeyBody=_ssh_key())
        for arn in managed:
            iam.attach_user_policy(UserName=name, PolicyArn=arn)
        for policy in inline:
            iam.put_user_policy(
                UserName=name, PolicyName=policy, PolicyDocument=json.dumps(ALLOW_ALL)
            )
        for group in groups:
            iam.add_user_to_group(GroupName=group, UserName=name)
        return out

    def exists(self, name: str) -> bool:
        try:
            self.iam.get_user(UserName=name)
        except self.iam.exceptions.NoSuchEntityException:
            return False
        return True


def _certificate(name: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ssh_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
