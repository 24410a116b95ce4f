"""`offboard serve --prod` (issue 16): gunicorn with several worker processes, debug off,
static files collected and served by the app under hashed names with a year's cache — a real
server on a free port, reached over a real socket."""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.error import HTTPError

import pytest

OFFBOARD = str(Path(sys.executable).with_name("offboard"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path("/proc").iterdir():
        if task.name.isdigit():
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(task.name))
    return found


@pytest.mark.offline  # the server's own database is a file of its own: once is enough
def test_serve_prod_runs_gunicorn_workers_and_serves_hashed_static_files(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "OFFBOARD_DEBUG": "false",
        "OFFBOARD_SECRET_KEY": secrets.token_urlsafe(50),
        "OFFBOARD_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'offboard.sqlite3'}",
        "OFFBOARD_WEB_WORKERS": "2",
        "OFFBOARD_ADMIN_PASSWORD": "a long enough passphrase 1",
        "OFFBOARD_HSTS_SECONDS": "60",  # sent on secure requests only: shows what is secure
    }
    subprocess.run(
        [OFFBOARD, "init", "--org", "acme", "--org-name", "Acme"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [OFFBOARD, "serve", "--prod", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180  # the first start compresses every static file
        while True:
            try:
                if _get(f"{base}/health/live")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the server did not answer within 180 s"
            time.sleep(0.3)
        assert len(_children(server.pid)) == 2  # gunicorn's master has exec'd in our place

        status, _, _ = _get(f"{base}/health/ready")
        assert status == 200
        status, headers, body = _get(f"{base}/login/")
        assert status == 200
        assert headers.get("Content-Security-Policy")
        login_request_id = headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", login_request_id)
        html = body.decode()
        hashed = re.search(r'href="(/static/web/app\.[0-9a-f]{12}\.css)"', html)
        assert hashed, "the login page links app.css under its content-hashed name"
        status, headers, css = _get(base + hashed.group(1))
        assert status == 200 and b"{" in css
        assert "max-age=315360000" in headers["Cache-Control"]
        assert "immutable" in headers["Cache-Control"]
        status, headers, _ = _get(f"{base}/static/web/app.css")  # the plain name: short cache
        assert status == 200 and "immutable" not in headers.get("Cache-Control", "")
        assert _get(f"{base}/static/web/no-such-file.css")[0] == 404
        assert b"Traceback" not in _get(f"{base}/no/such/page/")[2]  # debug is off
        # Behind the TLS-terminating proxy on 127.0.0.1 (trusted by default): the request is
        # secure and comes from the client the proxy names.
        behind = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        status, headers, _ = _get(f"{base}/health/live", behind)
        assert status == 200 and headers.get("Strict-Transport-Security") == "max-age=60"
        assert "Strict-Transport-Security" not in _get(f"{base}/health/live")[1]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0
    log = server.stdout.read().decode()  # type: ignore[union-attr]
    assert "with 2 gunicorn workers (debug off)" in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    login = [e for e in lines if e.get("route") == "web:login" and e["status"] == 200]
    assert login and login[0]["logger"] == "offboard.request" and login[0]["method"] == "GET"
    # The id the response carried is the one on the request's log line.
    assert [e["request_id"] for e in login] == [login_request_id]
    assert login[0]["remote_addr"] == "127.0.0.1"
    proxied = [
        e for e in lines if e.get("route") == "health-live" and e["remote_addr"] != "127.0.0.1"
    ]
    assert [e["remote_addr"] for e in proxied] == ["203.0.113.7"]


def test_serve_prod_refuses_the_in_process_worker():
    result = subprocess.run(
        [OFFBOARD, "serve", "--prod", "--worker"],
        capture_output=True,
        text=True,
        env={**os.environ, "OFFBOARD_DEBUG": "true"},
        timeout=60,
    )
    assert result.returncode == 1
    assert "run `offboard worker` beside the server instead" in result.stderr
