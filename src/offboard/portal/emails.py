"""The portal's emails to a client contact: the link, reminders, and the confirmation of what
they acknowledged or disputed. Plain text; sent through Django's mail backend, synchronously,
outside any transaction (a slow mail server holds no database lock)."""

import datetime as dt
from email.utils import formataddr, make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.template.loader import render_to_string

from offboard.notifications.receipts import describe

# Responses as the confirmation email words them.
VERBS = {"acknowledged": "acknowledged", "disputed": "disputed"}


def one_line(text: str) -> str:
    """Names in headers: a newline in a client's name must not become a header of its own."""
    return " ".join(str(text).split())


def when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%d %b %Y %H:%M UTC") if value else "—"


def day(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%d %B %Y") if value else "—"


def sender(org_name: str) -> str:
    """OFFBOARD_EMAIL_FROM, with the organization's name shown when the setting gives none."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return formataddr((name or one_line(org_name), address or settings.DEFAULT_FROM_EMAIL))


def new_message_id() -> str:
    return make_msgid("portal", domain=settings.SITE_HOST)


def _message(link: Any, subject: str, template: str, context: dict[str, Any]) -> EmailMessage:
    case = link.case
    owner = case.owner
    base = {
        "org_name": case.org.name,
        "client_name": case.client.name,
        "ref": case.ref,
        "contact_name": link.contact.name,
        "owner_name": owner.get_full_name() or owner.username,
        "respond_by": day(link.respond_by),
        "expires_at": day(link.expires_at),
        "issued_at": day(link.created_at),
    }
    return EmailMessage(
        subject=one_line(subject),
        body=render_to_string(template, {**base, **context}),
        from_email=sender(case.org.name),
        to=[formataddr((one_line(link.contact.name), link.contact.email))],
        # Replies reach a person: the case owner, as with the closure receipt.
        reply_to=[owner.email] if owner.email else None,
        headers={"Message-ID": context.get("message_id") or new_message_id()},
    )


def link_message(*, link: Any, url: str) -> EmailMessage:
    case = link.case
    return _message(
        link,
        f"{case.org.name}: please review the handover of {case.client.name} ({case.ref})",
        "portal/email/link.txt",
        {"url": url},
    )


def reminder_message(*, link: Any, items: list[dict[str, Any]], message_id: str) -> EmailMessage:
    case = link.case
    return _message(
        link,
        f"Reminder: your response on the handover of {case.client.name} ({case.ref})",
        "portal/email/reminder.txt",
        {"items": items, "message_id": message_id},
    )


def confirmation_message(*, response: Any, link: Any, files: dict[str, Any]) -> EmailMessage:
    """What the contact acknowledged or disputed, with the files' SHA-256 and the digest of
    the manifest they saw: their own copy of what is on our record."""
    case = link.case
    verb = VERBS[response.kind]
    items = [
        {**item, "files": files.get(f"{item['register']}:{item['id']}", [])}
        for item in response.items
    ]
    return _message(
        link,
        f"Confirmation: you {verb} {len(items)} item{'s' if len(items) != 1 else ''} "
        f"of the handover of {case.client.name} ({case.ref})",
        "portal/email/confirmation.txt",
        {
            "verb": verb,
            "items": items,
            "comment": response.comment,
            "typed_name": response.typed_name,
            "at": when(response.at),
            "ip": response.ip,
            "user_agent": response.user_agent,
            "manifest_sha256": response.manifest_sha256,
            "event_index": response.event_index,
        },
    )


def send(message: EmailMessage) -> str | None:
    """Send one message; None when the mail server accepted it, else why not (one line, the
    server named, never a password)."""
    connection = get_connection()
    message.connection = connection
    try:
        message.send()
    except Exception as exc:  # any failure of the backend is reported, not raised
        return str(describe(exc, connection))
    return None
