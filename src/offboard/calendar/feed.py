"""What a member's calendar feed says: an all-day event on the due date of each outstanding
step they own, and on the notice date, effective end date and data-return deadline of each
open case they own — each linking to the case workspace. Three queries, whatever the size."""

import datetime as dt

from django.conf import settings
from django.urls import reverse

from offboard.calendar import selectors
from offboard.calendar.ics import AllDayEvent, calendar
from offboard.calendar.models import CalendarFeed
from offboard.cases.models import OffboardingCase, Step
from offboard.labels import label

# (UID suffix, the case's date field, what it is called, what it means)
MILESTONES = (
    (
        "notice",
        "notice_date",
        "Notice received",
        "The date notice was received; the case's other dates count from it.",
    ),
    (
        "end",
        "effective_end_date",
        "Effective end date",
        "The relationship with the client ends: access we planned to revoke or transfer "
        "should be gone by then.",
    ),
    (
        "data-return",
        "data_return_deadline",
        "Data-return deadline",
        "The client's data is to be returned or disposed of by this date.",
    ),
)


def _uid(feed: CalendarFeed, what: str) -> str:
    """Stable for as long as the step or case exists, so an app moves an event, not adds one."""
    return f"offboard-{feed.org.slug}-{what}@{settings.SITE_HOST}"


def case_url(base_url: str, case: OffboardingCase, anchor: str = "") -> str:
    url = base_url.rstrip("/") + reverse("web:case-detail", args=[case.ref])
    return f"{url}#{anchor}" if anchor else url


def _whose(case: OffboardingCase) -> str:
    return f"{case.ref}, {case.client.name}"


def _step_event(feed: CalendarFeed, step: Step, base_url: str) -> AllDayEvent:
    case = step.case
    url = case_url(base_url, case, f"step-{step.pk}")
    phase = step.phase.replace("_", " ")
    return AllDayEvent(
        uid=_uid(feed, f"step-{step.pk}"),
        day=step.due_date,
        summary=f"{step.title} ({_whose(case)})",
        description=(
            f"Step of case {case.ref} for {case.client.name}: "
            + (f"{phase} phase, " if phase else "")
            + f"{label(step.status, 'status')}, {'required' if step.required else 'optional'}."
            + f"\nDue {step.due_date:%-d %b %Y}.\n\nOpen the case: {url}"
        ),
        url=url,
        categories=("Offboard", "Step"),
    )


def _milestones(feed: CalendarFeed, case: OffboardingCase, base_url: str) -> list[AllDayEvent]:
    url = case_url(base_url, case)
    return [
        AllDayEvent(
            uid=_uid(feed, f"case-{case.pk}-{suffix}"),
            day=getattr(case, field),
            summary=f"{name} ({_whose(case)})",
            description=(
                f"Case {case.ref} for {case.client.name} ({label(case.state, 'state')}). "
                f"{meaning}\n\nOpen the case: {url}"
            ),
            url=url,
            categories=("Offboard", "Milestone"),
        )
        for suffix, field, name, meaning in MILESTONES
    ]


def events(feed: CalendarFeed, base_url: str) -> list[AllDayEvent]:
    """The feed's events in date order: steps and milestones together."""
    found = [_step_event(feed, step, base_url) for step in selectors.steps_due(feed)]
    for case in selectors.cases_owned(feed):
        found += _milestones(feed, case, base_url)
    return sorted(found, key=lambda e: (e.day, e.summary, e.uid))


def render(feed: CalendarFeed, *, base_url: str, now: dt.datetime) -> bytes:
    """The whole feed as iCalendar bytes (UTF-8)."""
    person = feed.user.get_full_name() or feed.user.username
    return calendar(
        name=f"Offboard: {person} ({feed.org.name})",
        description=(
            f"Due dates of the steps {person} owns and the milestones of the cases "
            f"{person} owns in {feed.org.name}, on open cases."
        ),
        stamp=now,
        events=events(feed, base_url),
    )
