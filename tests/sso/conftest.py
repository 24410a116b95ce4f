"""A real OpenID Connect provider on loopback (`oidc-provider` from npm, run by
tests/sso/oidc/provider.mjs) and the organization set up to sign in through it.

The provider holds signing keys the test made (so a test can sign a token with the very key
the provider's JWKS serves, or restart it with another key: a rotation). Its login step signs
in whichever account the test chose last (`provider.choose(...)`); `provider.authorize(url)`
follows the redirects from the authorization request to our callback, as a browser would.
Without node or the npm package the tests skip saying why (fail under
OFFBOARD_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from offboard.sso import oidc

HERE = Path(__file__).parent / "oidc"
SCRIPT = HERE / "provider.mjs"
CLIENT_ID = "offboard-test"
CLIENT_SECRET = "sso-client-secret-d7f3a9c2e1b8"  # tests look for it everywhere it must not be
CALLBACK = "http://testserver/login/sso/callback/"


def _unavailable(reason: str) -> None:
    if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class OidcProvider:
    def __init__(self, workdir: Path, callback: str = CALLBACK) -> None:
        self.workdir = workdir
        self.callback = callback
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.keys = [new_key("key-1")]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = {
            "issuer": self.issuer,
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [self.callback],
                    "grant_types": ["authorization_code"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            ],
            "jwks": {"keys": [k.as_dict(private=True) for k in self.keys]},
        }
        path = self.workdir / "provider.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            ["node", str(SCRIPT), str(self.port), str(path)],
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("ready"):
            err = self.process.stderr.read().decode() if self.process.stderr else ""
            raise RuntimeError(f"the OpenID provider did not start: {line}{err[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def rotate(self, kid: str) -> RSAKey:
        """Restart with a new signing key only (the old one is gone from the JWKS)."""
        self.stop()
        self.keys = [new_key(kid)]
        self.start()
        return self.keys[0]

    def choose(self, sub: str, amr: list[str] | None = None, **claims: Any) -> None:
        """The account the provider's next login signs in, and its claims."""
        body = json.dumps({"accountId": sub, "claims": claims, "amr": amr}).encode()
        request = urllib.request.Request(
            f"{self.issuer}/test/next", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def authorize(self, url: str) -> str:
        """Follow the authorization request's redirects to our callback: its path and query."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
        for _ in range(10):
            if url.startswith(self.callback):
                parts = urllib.parse.urlsplit(url)
                return f"{parts.path}?{parts.query}"
            try:
                with opener.open(url, timeout=10) as response:
                    raise AssertionError(f"the provider answered {response.status} at {url}")
            except urllib.error.HTTPError as exc:
                if exc.code not in (302, 303):
                    raise AssertionError(f"{exc.code} at {url}: {exc.read()[:500]!r}") from None
                url = urllib.parse.urljoin(url, exc.headers["Location"])
        raise AssertionError("too many redirects")


def _node_ready() -> None:
    if shutil.which("node") is None:
        _unavailable("node is not installed: the single sign-on tests need a real OpenID provider")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        _unavailable(
            "oidc-provider is not installed: run `npm ci` in tests/sso/oidc (make test does)"
        )


def node_ready() -> None:
    _node_ready()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    _node_ready()
    provider = OidcProvider(tmp_path_factory.mktemp("oidc"))
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def provider(oidc_provider: OidcProvider) -> Iterator[OidcProvider]:
    oidc.clear_cache()
    if oidc_provider.process is None or oidc_provider.process.poll() is not None:
        oidc_provider.start()
    yield oidc_provider
    oidc.clear_cache()


@pytest.fixture
def sso_config(provider: OidcProvider, alice: Any) -> Any:
    from offboard.sso.services import configure_sso

    return configure_sso(
        actor=alice,
        issuer=provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        allowed_domains="acme.example",
        group_roles="offboard-admins = admin\nofficers = operator\nauditors = auditor",
    )


def wait_until(check: Any, seconds: float = 5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")
