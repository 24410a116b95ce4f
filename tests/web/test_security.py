"""Staff-side security: login throttling (django-axes), security headers, no inline script,
CSRF on forms, and secure cookies in production settings."""

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

PASSWORD = "correct horse 1"


@pytest.fixture
def throttled(settings):
    settings.AXES_ENABLED = True


def attempt(c: Client, username: str, password: str, ip: str = "203.0.113.7"):
    return c.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_five_wrong_passwords_lock_the_username_from_that_address(throttled, cast):
    c = Client()
    for _ in range(4):
        response = attempt(c, "alice", "wrong")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()
    locked = attempt(c, "alice", "wrong")
    assert locked.status_code == 429
    body = locked.content.decode()
    assert "Too many failed log-ins" in body and "locked for 15 minutes" in body
    # even the right password is refused while locked
    assert attempt(c, "alice", PASSWORD).status_code == 429
    assert "_auth_user_id" not in c.session


def test_the_lockout_is_per_username_and_address(throttled, cast):
    for _ in range(5):
        attempt(Client(), "alice", "wrong")
    bob = attempt(Client(), "bob", PASSWORD)
    assert bob.status_code == 302  # another username from the same address
    elsewhere = attempt(Client(), "alice", PASSWORD, ip="198.51.100.9")
    assert elsewhere.status_code == 302  # alice from another address


def test_the_lockout_ends_after_the_cool_off(throttled, cast):
    from axes.models import AccessAttempt

    for _ in range(5):
        attempt(Client(), "alice", "wrong")
    assert attempt(Client(), "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))
    assert attempt(Client(), "alice", PASSWORD).status_code == 302


def test_a_successful_login_lands_on_the_dashboard(throttled, cast):
    c = Client()
    response = attempt(c, "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Dashboard" in c.get("/").content.decode()


def test_pages_carry_the_security_headers(cast):
    c = Client()
    c.force_login(cast["alice"].user)
    for url in ("/", "/login/", "/settings/"):
        response = c.get(url)
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert (
            "frame-ancestors 'none'" in csp
            and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        )
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_no_page_has_an_inline_script(cast, case):
    c = Client()
    c.force_login(cast["alice"].user)
    pages = [
        "/",
        "/cases/",
        f"/cases/{case.ref}/",
        "/cases/new/",
        "/clients/",
        f"/clients/{case.client_id}/",
        "/playbooks/",
        "/settings/",
    ]
    for url in pages:
        body = c.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", body):
            assert "src=" in tag, f"inline script on {url}: {tag}"
        assert not re.search(r"\son(click|load|submit|change)=", body), url


def test_forms_need_the_csrf_token(cast):
    c = Client(enforce_csrf_checks=True)
    c.force_login(cast["alice"].user)
    assert c.post("/settings/tokens/", {"name": "x"}).status_code == 403
    assert c.post("/clients/new/", {"name": "Forged"}).status_code == 403
    assert 'name="csrfmiddlewaretoken"' in c.get("/clients/new/").content.decode()


def _settings_in_a_fresh_process(**env: str) -> dict[str, str]:
    code = (
        "import offboard.settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.AXES_ENABLED, s.DEBUG)"
    )
    environ = {**os.environ, **env}
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    ).stdout.split()
    return dict(zip(["session", "csrf", "httponly", "axes", "debug"], out, strict=True))


def test_production_settings_send_cookies_over_https_only(tmp_path):
    prod = _settings_in_a_fresh_process(
        OFFBOARD_DEBUG="false", OFFBOARD_SECRET_KEY="x" * 50, OFFBOARD_VAR_DIR=str(tmp_path)
    )
    assert prod == {
        "session": "True",
        "csrf": "True",
        "httponly": "True",
        "axes": "True",
        "debug": "False",
    }
    dev = _settings_in_a_fresh_process(OFFBOARD_DEBUG="true", OFFBOARD_VAR_DIR=str(tmp_path))
    assert dev["session"] == "False" and dev["httponly"] == "True"


def test_the_api_docs_load_their_scripts_from_our_static_files(db):
    body = Client().get("/api/v1/docs").content.decode()
    scripts = re.findall(r"<script\b[^>]*>", body)
    assert scripts and all(
        'src="/static/' in tag or 'type="application/json"' in tag for tag in scripts
    ), scripts
    assert "cdn." not in body


# --- production is the default (issue 11, item 9) ----------------------------------------------


def _fresh(args: list[str], tmp_path: Any, **env: str) -> subprocess.CompletedProcess[str]:
    """A new process with none of our settings in its environment but `env`."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("OFFBOARD_", "DJANGO", "DATABASE"))
    }
    clean.update(OFFBOARD_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        args, env=clean, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


SHOW_DEBUG = "import offboard.settings as s; print(s.DEBUG)"


def test_debug_is_off_unless_asked_for(tmp_path):
    shown = _fresh([sys.executable, "-c", SHOW_DEBUG], tmp_path, OFFBOARD_SECRET_KEY="k" * 50)

    assert shown.stdout.split() == ["False"], shown.stderr
    asked = _fresh([sys.executable, "-c", SHOW_DEBUG], tmp_path, OFFBOARD_DEBUG="true")
    assert asked.stdout.split() == ["True"], asked.stderr


def test_production_needs_a_secret_key_and_says_how_to_run_a_demo(tmp_path):
    script = Path(sys.executable).with_name("offboard")
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")

    refused = _fresh([str(script), "case", "list"], tmp_path)

    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "OFFBOARD_SECRET_KEY" in line and "OFFBOARD_DEBUG=true" in line


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_the_development_commands_turn_debug_on_for_themselves(command, monkeypatch):
    """`offboard serve` (Django's development server) and `offboard demo` set OFFBOARD_DEBUG
    before Django reads its settings, unless it is set already."""
    from typer.testing import CliRunner

    from offboard import demo
    from offboard.cli import app, system

    monkeypatch.delenv("OFFBOARD_DEBUG", raising=False)
    monkeypatch.setattr("django.core.management.call_command", lambda *a, **k: None)
    monkeypatch.setattr(demo, "load_demo", lambda **k: (_ for _ in ()).throw(SystemExit(0)))
    monkeypatch.setattr(system, "_migrate", lambda: None)

    CliRunner().invoke(app, [command])

    assert os.environ.get("OFFBOARD_DEBUG") == "true"


def test_make_run_turns_debug_on():
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "OFFBOARD_DEBUG" in run
