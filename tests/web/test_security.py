"""Staff-side security: login throttling (django-axes), security headers, no inline script,
CSRF on forms, and secure cookies in production settings."""

import datetime as dt
import os
import re
import subprocess
import sys

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
