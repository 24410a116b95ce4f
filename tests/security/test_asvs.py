"""The OWASP ASVS 4.0 level 2 walk, V2 (authentication) and V3 (session management).

`docs/security.md` has the table: one row per item, `met` with the test that shows it, or
`not met` / `n/a` with the reason. `test_every_met_row_names_a_test_that_exists` keeps the
table honest: a row that points at a missing test fails here, and so does a `test_v…` below
that no row names. Add rows (and tests, here or anywhere in tests/) as parts land.
"""

import ast
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client

from offboard.core import clock
from offboard.security.signals import SIGNED_IN_AT
from tests.security.conftest import PASSWORD, browser, sign_in

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
SECTION = "## OWASP ASVS 4.0 level 2, V2 (authentication) and V3 (session management)"
ROW = re.compile(
    r"^\|\s*(V\d+\.\d+\.\d+|extra)\s*\|(.+)\|\s*(met|not met|n/a|partly)\s*\|(.*)\|\s*$"
)


def asvs_rows() -> list[tuple[str, str, str, str]]:
    """(item, requirement, status, test id or reason) for each row of the doc's table."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOC} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            rows.append(tuple(part.strip() for part in m.groups()))
    return rows  # type: ignore[return-value]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_every_met_row_names_a_test_that_exists():
    rows = asvs_rows()
    assert len(rows) >= 20
    for item, _, status, where in rows:
        if status in ("met", "partly"):
            ids = re.findall(r"`(tests/[\w/]+\.py::\w+)`", where)
            assert ids, f"{item}: a met row names its test as `tests/…py::test_…`"
            for test_id in ids:
                path, name = test_id.split("::")
                assert (ROOT / path).exists(), f"{item}: no file {path}"
                assert name in _test_names(ROOT / path), f"{item}: no test {test_id}"
        else:
            assert len(where) > 10, f"{item}: say why it is {status}"


def test_every_asvs_test_here_has_its_row():
    named = " ".join(where for *_, where in asvs_rows())
    mine = {n for n in _test_names(Path(__file__)) if n.startswith("test_v")}
    missing = {n for n in mine if f"test_asvs.py::{n}`" not in named}
    assert not missing, f"tests without a row in {DOC.name}: {sorted(missing)}"


# --- V2.1 password security ---------------------------------------------------------------


def _set_password(c: Client, old: str, new: str):
    return c.post(
        "/settings/password/",
        {"old_password": old, "new_password1": new, "new_password2": new},
    )


def test_v2_1_2_and_v2_1_3_a_128_character_passphrase_is_kept_whole(cast):
    long_one = "correct horse battery staple " * 4 + "x" * 12  # 128 characters
    assert len(long_one) == 128
    c = browser()
    sign_in(c, "bob")
    assert _set_password(c, PASSWORD, long_one).status_code == 302
    assert sign_in(browser(), "bob", long_one).status_code == 302
    # no truncation: the same passphrase with its last character changed is refused
    assert sign_in(browser(), "bob", long_one[:-1] + "y").status_code == 200


def test_v2_1_4_any_printable_unicode_is_a_password_character(cast):
    c = browser()
    sign_in(c, "carol")
    unicode_one = "grüße aus Köln 🔑 パスワード"
    assert _set_password(c, PASSWORD, unicode_one).status_code == 302
    assert sign_in(browser(), "carol", unicode_one).status_code == 302


def test_v2_1_6_changing_the_password_needs_the_current_one(cast):
    c = browser()
    sign_in(c, "dave")
    refused = _set_password(c, "not my password", "a brand new passphrase 9")
    assert refused.status_code == 200 and "old password was entered incorrectly" in (
        refused.content.decode()
    )
    assert sign_in(browser(), "dave", PASSWORD).status_code == 302


def test_v2_1_9_no_composition_rules(cast):
    c = browser()
    sign_in(c, "erin")
    lowercase_only = "plainlowercasewordsonly"
    assert _set_password(c, PASSWORD, lowercase_only).status_code == 302


def test_v2_2_1_repeated_failures_lock_the_account_from_that_address(throttled, cast):
    c = browser()
    for _ in range(5):
        sign_in(c, "oscar", "wrong")
    locked = sign_in(c, "oscar", PASSWORD)
    assert locked.status_code == 429 and "Too many failed log-ins" in locked.content.decode()


def test_v2_4_1_passwords_are_stored_with_argon2():
    import offboard.settings as production  # the module, not the tests' faster override

    assert production.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


# --- V2.5 credential recovery -------------------------------------------------------------


def test_v2_5_3_recovery_never_reveals_the_current_password(smtp, settings, cast):
    settings.OFFBOARD_PASSWORD_RESET_SEND = "inline"
    browser().post("/password-reset/", {"identifier": "bob"})
    [message] = smtp.received
    assert PASSWORD not in message.raw.decode(errors="replace")
    assert "/password-reset/" in message.text()


def test_v2_5_6_the_reset_token_is_random_hashed_single_use_and_expiring(smtp, settings, cast):
    import hashlib

    from offboard.security.models import PasswordResetToken

    settings.OFFBOARD_PASSWORD_RESET_SEND = "inline"
    start = clock.now()
    with clock.pinned(start) as timeline:
        browser().post("/password-reset/", {"identifier": "bob"})
        browser().post("/password-reset/", {"identifier": "carol"})
        links = [
            re.search(r"/password-reset/([A-Za-z0-9_-]+)/", m.text()).group(1)  # type: ignore[union-attr]
            for m in smtp.received
        ]
        assert len(set(links)) == 2 and all(len(t) >= 43 for t in links)  # 256 random bits
        stored = set(PasswordResetToken.objects.values_list("token_hash", flat=True))
        assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in links}
        new = {
            "new_password1": "a brand new passphrase 9",
            "new_password2": "a brand new passphrase 9",
        }
        assert browser().post(f"/password-reset/{links[0]}/", new).status_code == 200
        assert browser().post(f"/password-reset/{links[0]}/", new).status_code == 404  # used
        timeline.advance(minutes=settings.OFFBOARD_PASSWORD_RESET_MINUTES, seconds=1)
        assert browser().get(f"/password-reset/{links[1]}/").status_code == 404  # expired


def test_v2_5_extra_the_reset_answer_does_not_say_whether_an_account_exists(smtp, cast):
    def page(identifier: str) -> str:
        body = browser().post("/password-reset/", {"identifier": identifier}).content.decode()
        return re.sub(r'"X-CSRFToken": "[^"]*"', "", body)

    assert page("bob@acme.example") == page("nobody@nowhere.example") == page("no-such-user")


def test_v2_extra_a_failed_sign_in_says_the_same_for_an_unknown_user_and_a_wrong_password(cast):
    def answer(username: str, password: str) -> str:
        body = sign_in(browser(), username, password).content.decode()
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"|"X-CSRFToken": "[^"]*"', "", body)

    wrong_password = answer("alice", "wrong password")
    unknown_user = answer("nobody-here", "wrong password")
    assert "didn&#x27;t match" in wrong_password or "didn't match" in wrong_password
    assert wrong_password.replace("alice", "") == unknown_user.replace("nobody-here", "")


# --- V3 session management ----------------------------------------------------------------


def test_v3_1_1_the_session_token_never_travels_in_a_url(cast):
    c = browser()
    response = sign_in(c, "alice")
    key = c.cookies["sessionid"].value
    assert key not in response["Location"]
    for url in ("/", "/settings/", "/settings/security/"):
        assert key not in c.get(url).content.decode()


def test_v3_2_1_signing_in_issues_a_new_session_token(cast):
    c = browser()
    c.get("/password-reset/")  # an anonymous session? make sure there is one to replace
    before = c.session.session_key
    sign_in(c, "bob")
    after = c.cookies["sessionid"].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()


def test_v3_2_2_session_tokens_have_at_least_64_bits_of_entropy(cast):
    keys = set()
    for _ in range(5):
        c = browser()
        sign_in(c, "carol")
        keys.add(c.cookies["sessionid"].value)
    assert len(keys) == 5
    for key in keys:
        # Django: 32 characters of [a-z0-9] from `secrets` — log2(36) * 32 ≈ 165 bits
        assert re.fullmatch(r"[a-z0-9]{32}", key)


def _production_settings(tmp_path: Path) -> dict[str, str]:
    code = (
        "import offboard.settings as s; print(s.SESSION_COOKIE_NAME, s.SESSION_COOKIE_SECURE, "
        "s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, s.SESSION_COOKIE_AGE, "
        "s.OFFBOARD_SESSION_MAX_HOURS, s.CSRF_COOKIE_SECURE)"
    )
    import os

    env = {
        **os.environ,
        "OFFBOARD_DEBUG": "false",
        "OFFBOARD_SECRET_KEY": "x" * 50,
        "OFFBOARD_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    keys = ["name", "secure", "httponly", "samesite", "idle", "max_hours", "csrf_secure"]
    return dict(zip(keys, out, strict=True))


def test_v3_4_1_to_v3_4_4_the_session_cookie_is_secure_httponly_samesite_and_host_only(tmp_path):
    production = _production_settings(tmp_path)
    assert production["name"] == "__Host-sessionid"  # V3.4.4: Secure, path /, no Domain
    assert production["secure"] == "True" and production["csrf_secure"] == "True"  # V3.4.1
    assert production["httponly"] == "True"  # V3.4.2
    assert production["samesite"] == "Lax"  # V3.4.3


def test_v3_4_5_the_cookie_is_scoped_to_the_whole_site_and_no_wider(cast):
    c = browser()
    response = sign_in(c, "dave")
    cookie = response.cookies["sessionid"]
    assert cookie["path"] == "/" and not cookie["domain"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_v3_3_1_signing_out_invalidates_the_session_token(cast):
    c = browser()
    sign_in(c, "erin")
    key = c.cookies["sessionid"].value
    c.post("/logout/")
    replay = browser()
    replay.cookies["sessionid"] = key
    assert replay.get("/settings/security/").status_code == 302
    assert not Session.objects.filter(session_key=key).exists()


def test_v3_3_2_sessions_end_after_the_idle_and_absolute_limits(cast, tmp_path, settings):
    production = _production_settings(tmp_path)
    assert int(production["idle"]) <= 30 * 60 and int(production["max_hours"]) <= 12
    c = browser()
    sign_in(c, "oscar")
    assert c.get("/settings/security/").status_code == 200
    # The absolute limit runs on the wall clock: the session says it began 12 h 1 min ago.
    store = SessionStore(c.cookies["sessionid"].value)
    store[SIGNED_IN_AT] -= settings.OFFBOARD_SESSION_MAX_HOURS * 3600 + 60
    store.save()
    assert c.get("/settings/security/").status_code == 302  # sign in again
    # idle: Django's store drops the session SESSION_COOKIE_AGE after its last save
    c = browser()
    sign_in(c, "oscar")
    Session.objects.filter(session_key=c.cookies["sessionid"].value).update(
        expire_date=clock.now() - dt.timedelta(seconds=1)
    )
    assert c.get("/settings/security/").status_code == 302


def test_v3_3_3_a_password_change_can_end_every_other_session(cast):
    here, there = browser(), browser(ip="192.0.2.33")
    sign_in(here, "bob")
    sign_in(there, "bob")
    assert _set_password(here, PASSWORD, "a brand new passphrase 9").status_code == 302
    assert here.get("/settings/security/").status_code == 200
    assert there.get("/settings/security/").status_code == 302


def test_v3_3_4_members_see_their_sessions_and_sign_any_out(cast):
    from offboard.security.models import MemberSession

    here, there = browser(), browser(ip="192.0.2.44")
    sign_in(here, "carol")
    sign_in(there, "carol")
    page = here.get("/settings/security/").content.decode()
    assert "192.0.2.44" in page and "this session" in page
    other = MemberSession.objects.get(user=cast["carol"].user, ip="192.0.2.44")
    here.post(f"/settings/security/sessions/{other.pk}/end")
    assert there.get("/settings/security/").status_code == 302


def test_v3_3_extra_deactivation_ends_every_session(cast, org, alice):
    from offboard.accounts.selectors import get_member
    from offboard.accounts.services import deactivate_member

    c = browser()
    sign_in(c, "oscar")
    deactivate_member(actor=alice, membership=get_member(org, cast["oscar"].user.pk))
    assert c.get("/settings/security/").status_code == 302


@pytest.mark.parametrize("flag", ["HttpOnly"])
def test_v3_4_2_the_session_cookie_is_not_readable_by_scripts(cast, flag):
    response = sign_in(browser(), "alice")
    assert flag in response.cookies["sessionid"].output()
