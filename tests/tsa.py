"""A real RFC 3161 time-stamping authority on loopback, built from OpenSSL's `ts` command
(docs/timestamps.md, ../shared/design/TESTING.md "A local RFC 3161 time-stamping authority").

`LocalTSA.start(directory)` writes the OpenSSL config, makes a P-256 root CA and a TSA
certificate signed by it (critical timeStamping EKU), and serves HTTP on 127.0.0.1 at a free
port: POST application/timestamp-query → `openssl ts -reply` → application/timestamp-reply.

The fixtures `tsa` and `second_tsa` (session-scoped, each with its own CA) are defined here;
a conftest makes them available with `from tests.tsa import second_tsa, tsa`. A test that
switches a TSA `.down()` gets it back `.up()` by `reset_tsas` (tests/ledger/conftest.py).

Without `openssl` the fixtures skip with the reason, or fail when OFFBOARD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest

Mode = Literal["up", "503", "close", "hang", "garbage", "reject"]
POLICY = "1.3.6.1.4.1.99999.1.1"

CONFIG = """\
# A test TSA (tests/tsa.py). No `certs =` line: with it OpenSSL embeds an unsorted
# certificate SET that rfc3161-client refuses to parse.
[ req ]
distinguished_name = req_dn

[ req_dn ]

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_tsa ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
serial = {dir}/tsaserial
crypto_device = builtin
signer_cert = {dir}/tsa.crt
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = {policy}
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_alg = sha256
"""


def _der(tag: int, content: bytes) -> bytes:
    assert len(content) < 128
    return bytes([tag, len(content)]) + content


# A TimeStampResp with PKIStatus rejection (2) and a reason, as a TSA refusing would send it.
REJECTION = _der(
    0x30, _der(0x30, _der(0x02, b"\x02") + _der(0x30, _der(0x0C, b"the test TSA refuses")))
)


def openssl_path() -> str:
    """The `openssl` binary, or a skip (a failure under OFFBOARD_REQUIRE_SERVICES=1)."""
    found = shutil.which("openssl")
    if found is None:
        reason = "openssl is not installed: the local RFC 3161 TSA cannot run"
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return found


def _run(*args: str, cwd: Path, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(args, cwd=cwd, input=input, capture_output=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
        )
    return done


class LocalTSA:
    """A running test TSA. `.url` to ask it, `.ca_crt`/`.ca_pem_path` to trust it,
    `.down(mode)`/`.up()` to break and mend it, `.served`/`.received` to count requests."""

    def __init__(self, directory: Path, openssl: str, name: str) -> None:
        self.dir = directory
        self.openssl = openssl
        self.name = name
        self.config = directory / "tsa.cnf"
        self.ca_crt = directory / "ca.crt"  # the root CA (PEM): OFFBOARD_TSA_ROOTS, -CAfile
        self.ca_pem_path = str(self.ca_crt)
        self.tsa_crt = directory / "tsa.crt"  # the TSA's signing certificate (PEM)
        self.mode: Mode = "up"
        self.hang_seconds = 2.0
        self.served = 0  # tokens issued
        self.received = 0  # POSTs received, answered or not
        self._lock = threading.Lock()  # `openssl ts -reply` reads and bumps the serial file
        self._server: http.server.ThreadingHTTPServer | None = None
        self.url = ""

    # --- set-up -----------------------------------------------------------------------------

    def _make_pki(self) -> None:
        """The recipe of TESTING.md: a P-256 root CA, and a TSA certificate it signs."""
        self.config.write_text(CONFIG.format(dir=self.dir, policy=POLICY))
        ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        self._openssl(
            f"req -x509 -new {ec} -keyout ca.key -out ca.crt -days 3650 -config tsa.cnf "
            "-extensions v3_ca",
            "-subj",
            f"/CN={self.name} Root",
        )
        self._openssl(
            f"req -new {ec} -keyout tsa.key -out tsa.csr -config tsa.cnf",
            "-subj",
            f"/CN={self.name}",
        )
        self._openssl(
            "x509 -req -in tsa.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tsa.crt "
            "-days 825 -extfile tsa.cnf -extensions v3_tsa"
        )
        (self.dir / "tsaserial").write_text("01\n")

    def _openssl(self, args: str, *more: str) -> None:
        """`openssl ARGS MORE…` in the TSA's directory (ARGS: words without spaces)."""
        _run(self.openssl, *args.split(), *more, cwd=self.dir)

    def _serve(self) -> None:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                query = self.rfile.read(length)
                with tsa._lock:
                    tsa.received += 1
                    mode = tsa.mode
                if mode == "close":
                    self.close_connection = True  # hang up without a status line
                    return
                if mode == "hang":
                    time.sleep(tsa.hang_seconds)
                    self.close_connection = True
                    return
                if mode == "503":
                    self._answer(503, b"down for maintenance\n", "text/plain")
                    return
                if mode == "reject":
                    self._answer(200, REJECTION, "application/timestamp-reply")
                    return
                if mode == "garbage":
                    self._answer(
                        200, b"\x30\x03\x02\x01\x00 not a reply", "application/timestamp-reply"
                    )
                    return
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self._answer(415, b"expected application/timestamp-query\n", "text/plain")
                    return
                try:
                    reply = tsa.reply(query)
                except RuntimeError as exc:
                    self._answer(500, str(exc).encode(), "text/plain")
                    return
                self._answer(200, reply, "application/timestamp-reply")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows failures, not every request

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}/tsa"
        threading.Thread(target=self._server.serve_forever, name=f"tsa-{port}", daemon=True).start()

    @classmethod
    @contextmanager
    def start(cls, directory: Path, *, name: str = "Test TSA") -> Iterator[LocalTSA]:
        tsa = cls(directory, openssl_path(), name)
        tsa._make_pki()
        tsa._serve()
        try:
            yield tsa
        finally:
            tsa.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- behaviour --------------------------------------------------------------------------

    def reply(self, query: bytes) -> bytes:
        """`openssl ts -reply` for one DER query; the DER reply."""
        name = uuid.uuid4().hex
        tsq, tsr = self.dir / f"{name}.tsq", self.dir / f"{name}.tsr"
        tsq.write_bytes(query)
        try:
            with self._lock:
                self._openssl(f"ts -reply -config tsa.cnf -queryfile {tsq.name} -out {tsr.name}")
                self.served += 1
            return tsr.read_bytes()
        finally:
            tsq.unlink(missing_ok=True)
            tsr.unlink(missing_ok=True)

    def down(self, mode: Mode = "503") -> None:
        """Stop answering properly: "503" (HTTP 503), "close" (hang up), "hang" (say nothing
        for `hang_seconds`, then hang up), "garbage" (200 with bytes that are no reply) or
        "reject" (a well-formed reply refusing, PKI status 2)."""
        self.mode = mode

    def up(self) -> None:
        self.mode = "up"

    def openssl_verify(self, data: bytes, reply: bytes) -> subprocess.CompletedProcess[str]:
        """The independent second opinion: `openssl ts -verify -data … -in … -CAfile ca.crt`."""
        name = uuid.uuid4().hex
        data_file, reply_file = self.dir / f"{name}.data", self.dir / f"{name}.tsr"
        data_file.write_bytes(data)
        reply_file.write_bytes(reply)
        try:
            return subprocess.run(
                [
                    self.openssl,
                    *f"ts -verify -data {name}.data -in {name}.tsr -CAfile ca.crt".split(),
                ],
                cwd=self.dir,
                capture_output=True,
                text=True,
                timeout=30,
            )
        finally:
            data_file.unlink(missing_ok=True)
            reply_file.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    """A local TSA for the whole session (its own root CA)."""
    with LocalTSA.start(tmp_path_factory.mktemp("tsa"), name="Test TSA") as running:
        yield running


@pytest.fixture(scope="session")
def second_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    """Another, independent TSA with another root CA."""
    with LocalTSA.start(tmp_path_factory.mktemp("tsa2"), name="Second TSA") as running:
        yield running
