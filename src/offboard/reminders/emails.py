"""Reminder emails: plain text and HTML from the same context, one message per notice.

Every message names the organization, says why it was sent and how to change what one
receives (Settings → Reminders), and carries a one-click unsubscribe link for its kind of
email (RFC 8058: `List-Unsubscribe` with an https/http URL and `List-Unsubscribe-Post:
List-Unsubscribe=One-Click`), plus `Auto-Submitted: auto-generated` (RFC 3834) so that
auto-responders stay quiet.
"""

import datetime as dt
from collections import defaultdict
from email.utils import formataddr, make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from offboard.cases.risks import MY_STEPS_HORIZON_DAYS
from offboard.reminders.models import ASSIGNMENT, DEADLINE, DIGEST, ESCALATION
from offboard.reminders.tokens import unsubscribe_token

DEFAULT_BASE_URL = "http://127.0.0.1:8000"  # `make run`; set OFFBOARD_BASE_URL in production

CHANNEL_WORDS = {
    ASSIGNMENT: "emails when steps are assigned to you",
    DIGEST: "the daily digest of your steps",
    DEADLINE: "reminders before your cases' deadlines",
    ESCALATION: "escalations of late work",
}

REASONS = {
    "step_overdue": "Steps overdue on cases you own",
    "step_overdue_managers": "Steps overdue for a while, escalated to the managers",
    "approval_waiting": "Closures waiting for your approval",
    "access_after_end": "Access still live after the end date",
    "receipt_failed": "Closure receipts not sent",
    "access_back": "Access back after the case closed",
}
REASON_ORDER = list(REASONS)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def base_url() -> str:
    return str(settings.OFFBOARD_BASE_URL or DEFAULT_BASE_URL).rstrip("/")


def new_message_id(kind: str) -> str:
    return make_msgid(f"reminder-{kind}", domain=settings.SITE_HOST)


def unsubscribe_url(*, org_id: int, user_id: int, channel: str) -> str:
    token = unsubscribe_token(org_id=org_id, user_id=user_id, channel=channel)
    return base_url() + reverse("reminders:unsubscribe", args=[token])


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def _date(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def _when(due: dt.date, today: dt.date) -> str:
    left = (due - today).days
    if left < 0:
        return f"due {_date(due)}, {_days(-left)} ago"
    if left == 0:
        return "due today"
    return f"due {_date(due)}, in {_days(left)}"


def _in(date: dt.date, today: dt.date) -> str:
    left = (date - today).days
    return "today" if left == 0 else f"in {_days(left)}"


def _shown(item: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """An item as a line of the message: what, on which case, when, and where to act."""
    date = dt.date.fromisoformat(item["date"])
    path = reverse("web:case-detail", args=[item["ref"]])
    anchor = f"#{item['anchor']}" if item.get("anchor") else ""
    if item["type"] == "step":
        when = _when(date, today)
        if item.get("step_owner"):
            when += f"; owned by {item['step_owner']}"
    elif item["type"] == "deadline":
        when = f"{_date(date)}, {_in(date, today)}"
    elif item["type"] == "approval":
        when = f"closing since {_date(date)}, {_days((today - date).days)} ago"
    elif item["type"] == "grant":
        when = f"the case ended {_date(date)}, {_days((today - date).days)} ago"
    elif item["type"] == "access_back":
        when = item.get("detail") or f"read present {_date(date)}, after the case closed"
    else:
        when = item.get("detail") or "the mail server refused it"
    return {
        "title": item["title"],
        "ref": item["ref"],
        "client": item["client"],
        "when": when,
        "url": f"{base_url()}{path}{anchor}",
        "late": item["type"] == "step" and date < today,
    }


def _sections(kind: str, items: list[dict[str, Any]], today: dt.date) -> list[dict[str, Any]]:
    if kind == DIGEST:
        overdue = [i for i in items if dt.date.fromisoformat(i["date"]) < today]
        soon = [i for i in items if dt.date.fromisoformat(i["date"]) >= today]
        parts = [
            ("Overdue", overdue),
            (f"Due in the next {_days(MY_STEPS_HORIZON_DAYS)}", soon),
        ]
    elif kind == ESCALATION:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            grouped[item.get("reason", "")].append(item)
        parts = [(REASONS.get(r, r), grouped[r]) for r in REASON_ORDER if grouped.get(r)]
    elif kind == ASSIGNMENT:
        parts = [("Your steps", items)]
    else:
        parts = [("Coming up", items)]
    return [
        {"title": title, "items": [_shown(i, today) for i in chosen]}
        for title, chosen in parts
        if chosen
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _subject_and_intro(
    kind: str, items: list[dict[str, Any]], today: dt.date, org_name: str
) -> tuple[str, str]:
    cases = sorted({i["ref"] for i in items})
    if kind == ASSIGNMENT:
        first = items[0]
        return (
            f"{_plural(len(items), 'step')} assigned to you on {first['ref']} ({first['client']})",
            f"{org_name} opened the offboarding of {first['client']} (case {first['ref']}) and "
            f"gave you {_plural(len(items), 'step')}. Each is listed with its due date.",
        )
    if kind == DIGEST:
        late = sum(1 for i in items if dt.date.fromisoformat(i["date"]) < today)
        soon = len(items) - late
        counts = ", ".join(
            p for p in (f"{late} overdue" if late else "", f"{soon} due soon" if soon else "") if p
        )
        return (
            f"Your steps for {_date(today)}: {counts}",
            f"Your open steps on {_plural(len(cases), 'case')} of {org_name}, overdue "
            f"or due within {_days(MY_STEPS_HORIZON_DAYS)}.",
        )
    if kind == DEADLINE:
        first = items[0]
        what = "; ".join(
            f"{i['title'].lower()} on {_date(dt.date.fromisoformat(i['date']))} "
            f"({_in(dt.date.fromisoformat(i['date']), today)})"
            for i in items
        )
        return (
            f"{first['ref']} ({first['client']}): {what}",
            f"A deadline of the offboarding of {first['client']} (case {first['ref']}), which "
            "you own, is coming up.",
        )
    back = [i for i in items if i.get("reason") == "access_back"]
    if back:  # the after-closure re-check read revoked access present again: said first
        others = len(items) - len(back)
        also = f" (and {_plural(others, 'other item')})" if others else ""
        refs = ", ".join(sorted({i["ref"] for i in back}))
        return (
            f"Alert: access came back after closure on {refs}{also}",
            f"A re-check of access revoked on a closed case of {org_name} read it present "
            "again. You are told because you own the case or administer the organization.",
        )
    return (
        f"Escalation: {_plural(len(items), 'item')} need{'s' if len(items) == 1 else ''} "
        f"attention on {', '.join(cases)}",
        f"These are late on {_plural(len(cases), 'case')} of {org_name}, and you are told "
        "because you own the case, manage or administer the organization, or your approval "
        "is awaited.",
    )


def build_message(
    *,
    kind: str,
    items: list[dict[str, Any]],
    today: dt.date,
    org: Any,
    user: Any,
    message_id: str,
    reply_to: str = "",
) -> EmailMultiAlternatives:
    org_name = one_line(org.name)
    subject, intro = _subject_and_intro(kind, items, today, org_name)
    unsubscribe = unsubscribe_url(org_id=org.pk, user_id=user.pk, channel=kind)
    context = {
        "org_name": org_name,
        "name": one_line(user.first_name or user.username),
        "subject": subject,
        "intro": intro,
        "sections": _sections(kind, items, today),
        "unsubscribe_url": unsubscribe,
        "settings_url": base_url() + reverse("web:settings") + "#reminders",
        "channel_words": CHANNEL_WORDS[kind],
    }
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    message = EmailMultiAlternatives(
        subject=one_line(f"[{org_name}] {subject}"),
        body=render_to_string("reminders/email/message.txt", context),
        from_email=formataddr((name or f"Offboard · {org_name}", address)),
        to=[formataddr((one_line(user.get_full_name() or user.username), user.email))],
        reply_to=[reply_to] if reply_to else None,
        headers={
            "Message-ID": message_id,
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(
        render_to_string("reminders/email/message.html", context), "text/html"
    )
    return message
