"""No path changes a user's credentials or membership except the services, each with its
event: no installation superuser for an organization's admin, Django's own commands refuse,
and passwords change through `change_password` (web, CLI) with `member.password_changed`."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from typer.testing import CliRunner

from offboard.accounts.models import Membership, User
from offboard.cli import app
from offboard.core.errors import PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry


def _events(type_: str) -> list[dict]:
    return [e.event for e in LedgerEntry.objects.filter(type=type_).order_by("index")]


def test_an_organizations_admin_is_never_an_installation_superuser(org, alice):
    from offboard.accounts.services import create_user

    with pytest.warns(DeprecationWarning, match="is_superuser"):
        m = create_user(
            actor=alice,
            org=org,
            username="root-wannabe",
            role="admin",
            password="correct horse 1",
            is_superuser=True,
        )

    user = User.objects.get(pk=m.user_id)
    assert (user.is_superuser, user.is_staff) == (False, False)


@pytest.mark.parametrize(
    ("command", "args"),
    [("changepassword", ["alice"]), ("createsuperuser", ["--username", "root", "--noinput"])],
)
def test_djangos_user_commands_refuse_and_name_ours(cast, command, args):
    before = list(User.objects.values_list("username", "password", "is_superuser"))

    with pytest.raises(CommandError) as refused:
        call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())

    assert "offboard user" in str(refused.value)
    assert list(User.objects.values_list("username", "password", "is_superuser")) == before


def test_an_admin_sets_a_members_password_with_an_event(cast):
    from offboard.accounts.services import change_password

    bob = Membership.objects.get(user__username="bob")
    change_password(actor=cast["alice"], membership=bob, password="a new long secret 9")

    assert User.objects.get(username="bob").check_password("a new long secret 9")
    (event,) = _events("member.password_changed")
    assert event["data"] == {
        "user_id": bob.user_id,
        "username": "bob",
        "own": False,
        "sessions_ended": [],  # bob was signed in nowhere (offboard.security)
    }
    assert "a new long secret" not in str(event)


def test_a_member_changes_only_their_own_password(cast):
    from offboard.accounts.services import change_password

    alice = Membership.objects.get(user__username="alice")
    with pytest.raises(PermissionDenied):
        change_password(actor=cast["bob"], membership=alice, password="a new long secret 9")
    change_password(
        actor=cast["bob"],
        membership=Membership.objects.get(user__username="bob"),
        password="a new long secret 9",
    )

    assert User.objects.get(username="alice").check_password("correct horse 1")
    assert [e["data"]["own"] for e in _events("member.password_changed")] == [True]


def test_another_organizations_member_is_not_found(cast, mallory):
    from offboard.accounts.services import change_password
    from offboard.core.errors import NotFound

    with pytest.raises(NotFound):
        change_password(
            actor=mallory,
            membership=Membership.objects.get(user__username="bob"),
            password="a new long secret 9",
        )


def test_a_weak_password_is_refused_naming_the_field(cast):
    from offboard.accounts.services import change_password

    bob = Membership.objects.get(user__username="bob")
    with pytest.raises(ValidationFailed) as refused:
        change_password(actor=cast["alice"], membership=bob, password="password")

    assert "password" in refused.value.errors
    assert not _events("member.password_changed")


def test_the_web_password_change_is_recorded(cast):
    web = Client()
    web.force_login(cast["bob"].user)

    response = web.post(
        "/settings/password/",
        {
            "old_password": "correct horse 1",
            "new_password1": "a new long secret 9",
            "new_password2": "a new long secret 9",
        },
    )

    assert response.status_code == 302
    assert User.objects.get(username="bob").check_password("a new long secret 9")
    (event,) = _events("member.password_changed")
    assert event["data"]["username"] == "bob" and event["data"]["own"] is True
    assert event["actor"]["auth"] == "session"
    assert web.get("/").status_code == 200  # still signed in


def test_offboard_user_set_password_is_recorded(cast):
    result = CliRunner().invoke(
        app,
        ["user", "set-password", "bob", "--org", "acme", "--as", "alice"],
        input="a new long secret 9\na new long secret 9\n",
    )

    assert result.exit_code == 0, result.output
    assert User.objects.get(username="bob").check_password("a new long secret 9")
    (event,) = _events("member.password_changed")
    assert event["data"]["username"] == "bob"
