"""The shared cast: organization Acme with alice (admin, case owner), bob and carol (managers),
dave (finance), erin (auditor), oscar (operator); Globex is another tenant with mallory."""

import datetime as dt
import os
from typing import Any

import pytest
from django.core.cache import caches

from offboard.core.actor import Actor

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CAST = {
    "alice": "admin",
    "bob": "manager",
    "carol": "manager",
    "dave": "finance",
    "erin": "auditor",
    "oscar": "operator",
}


BROWSER_TESTS = os.path.join("tests", "browser", "")
# The longest tests start first, so that neither worker is left running one alone at the end.
SLOW_FIRST = (os.path.join("tests", "browser", "test_phone.py"),)


def _on_postgresql() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def _runs_once(item: pytest.Item) -> bool:
    """What the PostgreSQL pass leaves to the SQLite pass: tests marked `offline` (the offline
    verifier, pure formats), and the browser tests — what Chromium renders, lays out and runs
    does not depend on the backend, and every view's queries also run under tests/web, which
    both passes run."""
    return bool(item.get_closest_marker("offline")) or BROWSER_TESTS in str(item.path)


def _belongs_to_the_other_pass(item: pytest.Item, postgresql: bool) -> bool:
    """`@pytest.mark.one_pass("sqlite" | "postgresql")`: a test that runs in one pass only (the
    API fuzzing is split between the two: each token's run on one database)."""
    marker = item.get_closest_marker("one_pass")
    return marker is not None and marker.args[0] != ("postgresql" if postgresql else "sqlite")


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    """`make test` runs the suite twice, on SQLite and on PostgreSQL; what cannot change with
    the database runs once (`_runs_once`), and what is split between the passes runs in its
    own (`one_pass`)."""
    postgresql = _on_postgresql()
    other = [
        item
        for item in items
        if (postgresql and _runs_once(item)) or _belongs_to_the_other_pass(item, postgresql)
    ]
    if other:
        config.hook.pytest_deselected(items=other)
        dropped = set(map(id, other))
        items[:] = [item for item in items if id(item) not in dropped]
    items.sort(key=lambda item: not any(path in str(item.path) for path in SLOW_FIRST))


@pytest.fixture(autouse=True)
def _test_settings(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "files")
    # Argon2 is the production hasher; tests create many users and need speed, not strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Login throttling needs the request in authenticate(), which Client.login() does not
    # pass; tests/web/test_security.py turns it on to test it.
    settings.AXES_ENABLED = False
    # Kept workspace pages are keyed by what they show, not by settings a test may change.
    caches["pages"].clear()


@pytest.fixture
def org(db: Any) -> Any:
    from offboard.accounts.services import create_organization

    return create_organization(slug="acme", name="Acme Digital")


@pytest.fixture
def other_org(db: Any) -> Any:
    from offboard.accounts.services import create_organization

    return create_organization(slug="globex", name="Globex Partners")


@pytest.fixture
def cast(org: Any) -> dict[str, Actor]:
    from offboard.accounts.services import create_user

    actors = {}
    for name, role in CAST.items():
        m = create_user(
            actor=None,
            org=org,
            username=name,
            role=role,
            password="correct horse 1",
            email=f"{name}@acme.example",
            first_name=name.capitalize(),
        )
        actors[name] = Actor.from_membership(m, auth_method="test")
    return actors


@pytest.fixture
def mallory(other_org: Any) -> Actor:
    from offboard.accounts.services import create_user

    m = create_user(
        actor=None, org=other_org, username="mallory", role="admin", password="correct horse 1"
    )
    return Actor.from_membership(m, auth_method="test")


@pytest.fixture
def alice(cast: dict[str, Actor]) -> Actor:
    return cast["alice"]


@pytest.fixture
def playbooks(alice: Actor) -> dict[str, Any]:
    from offboard.playbooks.services import install_builtin_playbooks

    return {v.playbook.service_type: v for v in install_builtin_playbooks(actor=alice)}


@pytest.fixture
def client_contract(alice: Actor) -> tuple[Any, Any]:
    from offboard.clients.services import add_contact, create_client, create_contract

    client = create_client(actor=alice, name="Northwind Traders")
    add_contact(
        actor=alice,
        client=client,
        name="Nina North",
        email="nina@northwind.example",
        role="primary",
    )
    contract = create_contract(
        actor=alice,
        client=client,
        reference="NW-2025-01",
        service_type="marketing_agency",
        fee_type="retainer",
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2026, 12, 31),
        notice_period_days=30,
        data_return_window_days=30,
    )
    return client, contract


@pytest.fixture
def case(alice: Actor, playbooks: dict[str, Any], client_contract: tuple[Any, Any]) -> Any:
    from offboard.cases.services import open_case

    client, contract = client_contract
    return open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="non_renewal",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"],
    )


@pytest.fixture(autouse=True)
def _ledger_settings(settings: Any, tmp_path: Any) -> None:
    settings.OFFBOARD_KEY_DIR = tmp_path / "keys"
    settings.OFFBOARD_TSA_URLS = []
    settings.OFFBOARD_TSA_ON_COMMIT = "off"


@pytest.fixture(autouse=True)
def _mail_settings(settings: Any) -> None:
    """No real mail and no background sending: tests read `mail.outbox` or a local SMTP
    server (tests/smtp.py) and run the receipt outbox themselves."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_HOST_PASSWORD = ""
    settings.OFFBOARD_RECEIPT_ON_COMMIT = "off"
