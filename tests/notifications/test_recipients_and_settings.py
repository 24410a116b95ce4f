"""Who receives the closure receipt, and the mail settings read from the environment."""

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from offboard.clients.services import add_contact, create_client
from offboard.notifications.services import closure_recipients


def test_the_primary_and_legal_contacts_receive_it_once_per_address(alice: Any) -> None:
    client = create_client(actor=alice, name="Contoso")
    for name, email, role in (
        ("Tom Tech", "tom@contoso.example", "technical"),
        ("Lena Legal", "lena@contoso.example", "legal"),
        ("Fay Finance", "fay@contoso.example", "finance"),
        ("Paul Primary", "paul@contoso.example", "primary"),
        ("Paul again", "PAUL@contoso.example", "legal"),  # the same mailbox, another role
    ):
        add_contact(actor=alice, client=client, name=name, email=email, role=role)

    assert closure_recipients(alice.org, client) == [
        {"name": "Paul Primary", "email": "paul@contoso.example", "role": "primary"},
        {"name": "Lena Legal", "email": "lena@contoso.example", "role": "legal"},
    ]


def test_a_client_without_primary_or_legal_contact_gets_it_at_every_contact(alice: Any) -> None:
    client = create_client(actor=alice, name="Fabrikam")
    add_contact(
        actor=alice, client=client, name="Fay", email="fay@fabrikam.example", role="finance"
    )
    add_contact(
        actor=alice, client=client, name="Tom", email="tom@fabrikam.example", role="technical"
    )
    assert [r["email"] for r in closure_recipients(alice.org, client)] == [
        "fay@fabrikam.example",
        "tom@fabrikam.example",
    ]
    assert closure_recipients(alice.org, create_client(actor=alice, name="Nobody Inc")) == []


def test_another_organizations_contacts_are_never_recipients(alice: Any, mallory: Any) -> None:
    ours = create_client(actor=alice, name="Shared Name Ltd")
    theirs = create_client(actor=mallory, name="Shared Name Ltd")
    add_contact(actor=mallory, client=theirs, name="M", email="m@globex.example", role="primary")
    assert closure_recipients(alice.org, ours) == []


SHOW = (
    "import json, django; from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k) for k in ('EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', "
    "'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', 'EMAIL_USE_TLS', 'EMAIL_USE_SSL', "
    "'EMAIL_TIMEOUT', 'DEFAULT_FROM_EMAIL', 'EMAIL_FILE_PATH', 'OFFBOARD_RECEIPT_ON_COMMIT')}))"
)


def settings_with(tmp_path: Any, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OFFBOARD_")}
    clean.update(
        DJANGO_SETTINGS_MODULE="offboard.settings",
        OFFBOARD_VAR_DIR=str(tmp_path),
        OFFBOARD_DEBUG="true",  # a developer's machine, unless the test says production
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", SHOW], env=clean, capture_output=True, text=True, timeout=60
    )


def test_development_writes_mail_to_files_and_production_defaults_to_smtp(tmp_path: Any) -> None:
    dev = json.loads(settings_with(tmp_path).stdout)
    assert dev["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert dev["EMAIL_FILE_PATH"] == str(tmp_path / "mail")
    assert dev["DEFAULT_FROM_EMAIL"] == "offboard@offboard.localhost"
    assert (dev["EMAIL_HOST"], dev["EMAIL_PORT"], dev["EMAIL_TIMEOUT"]) == ("localhost", 25, 30.0)
    assert dev["OFFBOARD_RECEIPT_ON_COMMIT"] == "thread"

    prod = json.loads(
        settings_with(tmp_path, OFFBOARD_DEBUG="false", OFFBOARD_SECRET_KEY="k" * 50).stdout
    )
    assert prod["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"


def test_the_smtp_settings_map_to_django_s(tmp_path: Any) -> None:
    shown = settings_with(
        tmp_path,
        OFFBOARD_EMAIL_BACKEND="smtp",
        OFFBOARD_SMTP_HOST="mail.example.net",
        OFFBOARD_SMTP_STARTTLS="true",
        OFFBOARD_SMTP_USER="offboard",
        OFFBOARD_SMTP_PASSWORD="pw",
        OFFBOARD_SMTP_TIMEOUT="12.5",
        OFFBOARD_EMAIL_FROM="Acme Offboarding <exit@acme.example>",
        OFFBOARD_RECEIPT_ON_COMMIT="off",
    )
    values = json.loads(shown.stdout)
    assert values == {
        **values,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "mail.example.net",
        "EMAIL_PORT": 587,  # the submission port, with STARTTLS
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_HOST_USER": "offboard",
        "EMAIL_HOST_PASSWORD": "pw",
        "EMAIL_TIMEOUT": 12.5,
        "DEFAULT_FROM_EMAIL": "Acme Offboarding <exit@acme.example>",
        "OFFBOARD_RECEIPT_ON_COMMIT": "off",
    }
    ssl = json.loads(settings_with(tmp_path, OFFBOARD_SMTP_SSL="1").stdout)
    assert (ssl["EMAIL_PORT"], ssl["EMAIL_USE_SSL"]) == (465, True)
    explicit = json.loads(settings_with(tmp_path, OFFBOARD_SMTP_PORT="2525").stdout)
    assert explicit["EMAIL_PORT"] == 2525


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OFFBOARD_SMTP_STARTTLS": "1", "OFFBOARD_SMTP_SSL": "1"}, "not both"),
        ({"OFFBOARD_EMAIL_BACKEND": "carrier-pigeon"}, "use smtp, file, console, locmem"),
    ],
)
def test_contradictory_or_unknown_mail_settings_stop_the_start(
    tmp_path: Any, env: dict[str, str], says: str
) -> None:
    shown = settings_with(tmp_path, **env)
    assert shown.returncode != 0
    assert says in shown.stderr
