"""The one-click unsubscribe links in reminder emails: a token signed with the deployment's
secret key (Django's signing, its own salt), naming the organization, the member and the
channel. No login is needed to use it and nothing about it is stored: whoever holds the email
can stop that one kind of email for that one member, and nothing else — turning it back on
takes a signed-in member on Settings."""

from django.core import signing

from offboard.reminders.models import CHANNELS

SALT = "offboard.reminders.unsubscribe"


def unsubscribe_token(*, org_id: int, user_id: int, channel: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"no reminder channel {channel!r}")
    return signing.dumps([org_id, user_id, channel], salt=SALT, compress=False)


def read_unsubscribe_token(token: str) -> tuple[int, int, str] | None:
    """(org id, user id, channel), or None for a token that was not signed here."""
    try:
        value = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value[:2])
        or value[2] not in CHANNELS
    ):
        return None
    return int(value[0]), int(value[1]), str(value[2])
