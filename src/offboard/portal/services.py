"""Portal links and what happens through them: issue, revoke, remind, acknowledge, dispute,
and deem accepted. One function per action, one transaction, one ledger event.

Emails go out outside the transaction: the link's email after it is issued (a failure is
kept on the link; staff can still copy the URL), the contact's confirmation after their
response is recorded, and a reminder *before* it is recorded — a reminder the mail server
did not accept was never sent, so it is not logged and never counts towards deemed
acceptance.
"""

import datetime as dt
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction

from offboard.cases.models import Deliverable, HandoverItem, OffboardingCase, Source
from offboard.cases.services.common import ensure_open, ensure_started, lock_case, record_change
from offboard.cases.services.linked_steps import (
    complete_settled_steps,
    completing_data,
    note_completing_event,
)
from offboard.clients.models import Contact
from offboard.core import clock
from offboard.core.actor import Actor, ContactActor
from offboard.core.errors import CaseClosed, Conflict, NotFound, OffboardError
from offboard.core.permissions import AUDITOR, can, require
from offboard.core.validation import Errors
from offboard.ledger.recorder import record_event
from offboard.notifications.receipts import backend_label
from offboard.portal import emails
from offboard.portal.models import PortalLink, PortalReminder, PortalResponse
from offboard.portal.selectors import (
    MODELS,
    Entry,
    entries,
    manifest,
    manifest_digest,
    pick,
    reminders,
    token_hash,
)

LINK_DAYS, MIN_LINK_DAYS, MAX_LINK_DAYS = 30, 1, 90
RESPOND_DAYS = 14
# Deemed acceptance needs this many logged reminders to the contact covering the item.
REMINDERS_FOR_DEEMED_ACCEPTANCE = 2
MAX_COMMENT = 5000
PORTAL_PATH = "/portal/{token}/"


class EmailFailed(OffboardError):
    """The mail server did not accept a message the action depends on."""

    status = 502
    code = "email_failed"


@dataclass(frozen=True)
class IssuedLink:
    link: PortalLink
    url: str  # carries the token: shown once, never stored
    emailed: bool
    email_error: str


def _contact(contact: Contact) -> dict[str, Any]:
    return {"id": contact.pk, "name": contact.name, "email": contact.email}


# What a response through the portal writes on each item besides its status: the client's
# own word is the source (decision 0008), naming the contact, the name they typed (empty for
# a dispute, which is not signed) and the digest of the list they were shown.
PROVENANCE_FIELDS = ["source", "source_detail", "recorded_at", "recorded_by"]


def _client_said(obj: Any, contact: Contact, typed_name: str, digest: str, now: Any) -> None:
    obj.source = Source.CLIENT_PORTAL
    obj.source_detail = {
        "contact": _contact(contact),
        "typed_name": typed_name,
        "manifest_sha256": digest,
    }
    obj.recorded_at = now
    obj.recorded_by = None


def may_manage_links(actor: Actor, case: OffboardingCase) -> bool:
    """The case owner (unless an auditor), a manager or an admin issues, revokes and reminds."""
    return (actor.user.pk == case.owner_id and actor.role != AUDITOR) or can(actor, "portal.links")


def _may_manage_links(actor: Actor, case: OffboardingCase) -> None:
    if not may_manage_links(actor, case):
        require(actor, "portal.links")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def base_url_for(request_base: str) -> str:
    """Where links point: `OFFBOARD_BASE_URL` when set (behind a proxy the address a request
    came to can be an internal one), else that address."""
    return str(settings.OFFBOARD_BASE_URL or request_base)


def portal_url(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + PORTAL_PATH.format(token=token)


# --- staff: issue, revoke, remind, deem accepted --------------------------------------------


def issue_portal_link(
    *,
    actor: Actor,
    case: OffboardingCase,
    contact: Contact,
    base_url: str,
    days: int = LINK_DAYS,
    respond_days: int | None = None,
    send_email: bool = True,
) -> IssuedLink:
    """A link for one contact of the case's client to this case alone. The URL is returned
    once (only the token's SHA-256 is kept) and, unless `send_email` is off, emailed."""
    _may_manage_links(actor, case)
    errors = Errors()
    errors.integer("days", days, minimum=MIN_LINK_DAYS, maximum=MAX_LINK_DAYS)
    if respond_days is None:
        respond_days = min(RESPOND_DAYS, days) if isinstance(days, int) else RESPOND_DAYS
    longest = days if isinstance(days, int) and MIN_LINK_DAYS <= days <= MAX_LINK_DAYS else 90
    errors.integer("respond_days", respond_days, minimum=1, maximum=longest)
    if contact.org_id != actor.org.pk or contact.client_id != case.client_id:
        errors.add("contact", f"is not a contact of {case.client.name}")
    elif not contact.email.strip():
        errors.add("contact", f"{contact.name} has no email address")
    if not base_url.startswith(("https://", "http://")):
        errors.add("base_url", f"'{base_url}' is not an http(s) URL")
    errors.raise_if_any()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = lock_case(case)
        ensure_open(locked)
        ensure_started(locked)
        now = clock.now()
        link = PortalLink.objects.create(
            org=actor.org,
            case=locked,
            contact=contact,
            token_hash=token_hash(token),
            created_by=actor.user,
            created_at=now,
            expires_at=now + dt.timedelta(days=days),
            respond_by=now + dt.timedelta(days=respond_days),
        )
        record_event(
            actor=actor,
            type="portal_link.issued",
            case=locked,
            data={
                "title": f"Portal link for {contact.name}",
                "link_id": link.pk,
                "contact": _contact(contact),
                "expires_at": link.expires_at,
                "respond_by": link.respond_by,
                "email": send_email,
            },
        )
    url = portal_url(base_url, token)
    error = ""
    if send_email:
        error = emails.send(emails.link_message(link=link, url=url)) or ""
        if error:
            link.email_error = error
        else:
            link.emailed_at = clock.now()
        PortalLink.objects.filter(pk=link.pk).update(
            emailed_at=link.emailed_at, email_error=link.email_error
        )
    return IssuedLink(link=link, url=url, emailed=send_email and not error, email_error=error)


def revoke_portal_link(*, actor: Actor, link: PortalLink, reason: str = "") -> PortalLink:
    """The link stops working at once. Allowed on closed cases too: access is always revocable."""
    _may_manage_links(actor, link.case)
    errors = Errors()
    reason = errors.text("reason", reason, max_length=MAX_COMMENT, required=False)
    errors.raise_if_any()
    with transaction.atomic():
        locked = (
            PortalLink.objects.select_for_update(of=("self",))
            .select_related("contact")
            .get(pk=link.pk)
        )
        if locked.revoked_at is not None:
            raise Conflict(
                f"Portal link {locked.pk} for {locked.contact.name} was already revoked "
                f"on {emails.when(locked.revoked_at)}.",
                code="already_revoked",
            )
        locked.revoked_at = clock.now()
        locked.revoked_by = actor.user
        locked.revoke_reason = reason
        locked.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        record_event(
            actor=actor,
            type="portal_link.revoked",
            case=link.case,
            data={
                "title": f"Portal link for {locked.contact.name}",
                "link_id": locked.pk,
                "contact": _contact(locked.contact),
                "reason": reason,
            },
        )
    return locked


def _ensure_usable(link: PortalLink, case: OffboardingCase) -> None:
    ensure_open(case)
    ensure_started(case)
    status = link.status_at(clock.now())
    if status != "active":
        raise Conflict(
            f"Portal link {link.pk} for {link.contact.name} is {status}; issue a new link first.",
            code="link_not_active",
        )


def send_reminder(*, actor: Actor, link: PortalLink) -> PortalReminder:
    """Remind the contact of the items still awaiting their response. Emailed first, logged
    only once the mail server accepted it."""
    case = link.case
    _may_manage_links(actor, case)
    _ensure_usable(link, case)
    awaited = [e.as_ref() for e in entries(manifest(case)) if e.awaiting]
    if not awaited:
        raise Conflict(
            f"Nothing on case {case.ref} awaits a response from {link.contact.name}: every "
            "deliverable and handover item is either not delivered yet or already answered.",
            code="nothing_awaited",
        )
    message_id = emails.new_message_id()
    error = emails.send(emails.reminder_message(link=link, items=awaited, message_id=message_id))
    if error:
        raise EmailFailed(
            f"Could not send the reminder to {link.contact.email}: {error}. Nothing was "
            "recorded; send it again once the mail server accepts mail."
        )
    with transaction.atomic():
        locked_case = lock_case(case)
        locked = (
            PortalLink.objects.select_for_update(of=("self",))
            .select_related("contact")
            .get(pk=link.pk)
        )
        _ensure_usable(locked, locked_case)
        now = clock.now()
        event = record_event(
            actor=actor,
            type="portal_link.reminder_sent",
            case=locked_case,
            data={
                "title": f"Reminder to {locked.contact.name} about {_plural(len(awaited), 'item')}",
                "link_id": locked.pk,
                "contact": _contact(locked.contact),
                "items": awaited,
                "respond_by": locked.respond_by,
                "message_id": message_id,
                "via": backend_label(get_connection()),
            },
        )
        return PortalReminder.objects.create(
            org=locked.org,
            link=locked,
            case=locked_case,
            contact=locked.contact,
            sent_by=actor.user,
            sent_at=now,
            items=awaited,
            message_id=message_id,
            event_index=event.index,
        )


def mark_deemed_accepted(
    *, actor: Actor, link: PortalLink, deliverable_ids: Sequence[int] | None = None
) -> list[Deliverable]:
    """The contact stayed silent past the link's deadline after logged reminders: mark the
    delivered deliverables they were reminded of as deemed accepted, citing the reminders.

    Only deliverables have a deemed status; a handover item the client never acknowledged
    stays handed over, which already meets its gate. Without ids, every delivered
    deliverable of the case is meant, and each must qualify."""
    require(actor, "portal.deem")
    with transaction.atomic():
        case = lock_case(link.case)
        ensure_open(case)
        ensure_started(case)
        link = PortalLink.objects.select_related("contact").get(pk=link.pk)
        contact = link.contact
        now = clock.now()
        if now <= link.respond_by:
            raise Conflict(
                f"{contact.name} has until {emails.when(link.respond_by)} to respond through "
                f"portal link {link.pk}; deemed acceptance is possible only after that.",
                code="deadline_not_passed",
                details={"respond_by": link.respond_by.isoformat()},
            )
        if link.revoked_at is not None and link.revoked_at < link.respond_by:
            raise Conflict(
                f"Portal link {link.pk} was revoked on {emails.when(link.revoked_at)}, before its "
                f"deadline: {contact.name} could not respond. Issue a new link with a new deadline.",
                code="link_revoked_early",
            )
        delivered = {
            d.pk: d
            for d in Deliverable.objects.select_for_update()
            .filter(case=case)
            .prefetch_related("evidence")
            .order_by("id")
        }
        if deliverable_ids is None:
            chosen = [d for d in delivered.values() if d.status == Deliverable.Status.DELIVERED]
            if not chosen:
                raise Conflict(
                    f"No deliverable of case {case.ref} is delivered and awaiting a response.",
                    code="nothing_awaited",
                )
        else:
            errors = Errors()
            chosen = []
            for pk in dict.fromkeys(deliverable_ids):
                d = delivered.get(pk)
                if d is None:
                    errors.add("deliverable_ids", f"no deliverable {pk} in case {case.ref}")
                elif d.status != Deliverable.Status.DELIVERED:
                    errors.add(
                        "deliverable_ids",
                        f"'{d.title}' is {d.status}; only a delivered deliverable awaiting the "
                        "client's response can be deemed accepted",
                    )
                else:
                    chosen.append(d)
            if not chosen and not errors.fields:
                errors.add("deliverable_ids", "name at least one deliverable")
            errors.raise_if_any()
        logged = list(reminders(case, contact.pk).order_by("sent_at", "id"))
        cited: dict[int, list[PortalReminder]] = {
            d.pk: [
                r
                for r in logged
                if any(i.get("register") == "deliverables" and i.get("id") == d.pk for i in r.items)
            ]
            for d in chosen
        }
        short = [d for d in chosen if len(cited[d.pk]) < REMINDERS_FOR_DEEMED_ACCEPTANCE]
        if short:
            listed = "; ".join(
                f"'{d.title}': {_plural(len(cited[d.pk]), 'reminder')}" for d in short
            )
            raise Conflict(
                f"Deemed acceptance needs at least {REMINDERS_FOR_DEEMED_ACCEPTANCE} logged "
                f"reminders to {contact.name} covering each deliverable; {listed}. Send "
                "reminders first (each is logged once the mail server accepts it).",
                code="too_few_reminders",
                details={"required": REMINDERS_FOR_DEEMED_ACCEPTANCE},
            )
        indices = sorted({r.event_index for d in chosen for r in cited[d.pk]})
        items = []
        for d in chosen:
            numbers = ", ".join(f"#{r.event_index}" for r in cited[d.pk])
            d.status = Deliverable.Status.DEEMED_ACCEPTED
            d.accepted_at = now
            # Staff decide it, citing the reminders: the client said nothing (decision 0008).
            d.source = Source.STAFF
            d.source_detail = {
                "name": actor.display_name,
                "deemed": True,
                "reminder_events": [r.event_index for r in cited[d.pk]],
            }
            d.recorded_at, d.recorded_by = now, actor.user
            d.acceptance_note = (
                f"Deemed accepted: {contact.name} <{contact.email}> did not respond by "
                f"{emails.when(link.respond_by)} after {_plural(len(cited[d.pk]), 'logged reminder')} "
                f"(events {numbers}) through portal link {link.pk}."
            )
            d.updated_at = now
            d.save(
                update_fields=[
                    "status",
                    "accepted_at",
                    "acceptance_note",
                    "updated_at",
                    *PROVENANCE_FIELDS,
                ]
            )
            items.append(
                {
                    "register": "deliverables",
                    "id": d.pk,
                    "label": d.title,
                    "old_status": Deliverable.Status.DELIVERED,
                    "status": d.status,
                    "reminder_events": [r.event_index for r in cited[d.pk]],
                }
            )
        completed = complete_settled_steps(actor=actor, case=case)
        effects = record_change(case)
        event = record_event(
            actor=actor,
            type="portal.deemed_accepted",
            case=case,
            data={
                "title": f"{_plural(len(chosen), 'deliverable')} deemed accepted "
                f"after {contact.name}'s silence",
                "link_id": link.pk,
                "contact": _contact(contact),
                "respond_by": link.respond_by,
                "reminders_required": REMINDERS_FOR_DEEMED_ACCEPTANCE,
                "reminder_events": indices,
                "items": items,
                **effects,
                **completing_data(completed),
            },
            files=[f for d in chosen for f in d.evidence.all()],
        )
        note_completing_event(case, completed, event)
    return chosen


# --- the client contact: acknowledge, dispute -----------------------------------------------


def note_use(link: PortalLink) -> None:
    """Bookkeeping, not an event: when the link was last opened (at most once a minute)."""
    now = clock.now()
    if link.last_used_at is None or (now - link.last_used_at).total_seconds() > 60:
        PortalLink.objects.filter(pk=link.pk).update(last_used_at=now)
        link.last_used_at = now


def record_download(*, link: PortalLink, file: Any, ip: str | None, user_agent: str | None) -> None:
    """The contact downloaded one of the case's files: evidence that it reached them
    (what was handed over, question 2), so it is a ledger event naming the file's sha256 —
    written before the bytes are sent, so no download goes unrecorded."""
    with transaction.atomic():
        live = _live(link)
        record_event(
            actor=_contact_actor(live, ip, user_agent),
            type="portal.file_downloaded",
            case=link.case,
            data={
                "title": f"{live.contact.name} downloaded {file.original_name}",
                "link_id": live.pk,
                "contact": _contact(live.contact),
                "file": {"sha256": file.sha256, "name": file.original_name, "size": file.size},
            },
            files=[file],
        )


def normal_name(name: str) -> str:
    """Names compare case-insensitively, whitespace collapsed, compatibility forms folded."""
    return " ".join(unicodedata.normalize("NFKC", name or "").split()).casefold()


def _contact_actor(link: PortalLink, ip: str | None, user_agent: str | None) -> ContactActor:
    return ContactActor(
        org=link.org,
        contact_id=link.contact.pk,
        name=link.contact.name,
        email=link.contact.email,
        ip=ip or None,
        user_agent=(user_agent or "")[:300] or None,
    )


def _live(link: PortalLink) -> PortalLink:
    """The link re-read under lock: revoked or expired since the page was shown is no link."""
    locked = (
        # The link's row only: FOR UPDATE of the joined organization blocked every other
        # action's foreign-key check at commit while this one waited for the log head — a
        # deadlock (the fleet test found it).
        PortalLink.objects.select_for_update(of=("self",))
        .select_related("org", "contact")
        .filter(pk=link.pk)
        .first()
    )
    if locked is None or not locked.is_live(clock.now()):
        raise NotFound("This link is no longer valid.")
    return locked


def _ensure_answerable(case: OffboardingCase) -> None:
    if not case.is_open:
        raise CaseClosed(
            f"Case {case.ref} is {case.state}: its record is final and no longer takes responses.",
            details={"state": case.state},
        )
    ensure_started(case)


def _current(case: OffboardingCase, seen: str) -> tuple[dict[str, Any], str]:
    value = manifest(case)
    current = manifest_digest(value)
    if (seen or "").strip().lower() != current:
        raise Conflict(
            "The list of items changed since you opened this page, so your response was not "
            "recorded. Reload the page, review the current list and respond again.",
            code="manifest_changed",
            details={"current_manifest_sha256": current},
        )
    return value, current


def _locked_item(case: OffboardingCase, entry: Entry) -> Any:
    model = MODELS[entry.register]
    return (
        model.objects.select_for_update()
        .prefetch_related("evidence")
        .get(case=case, pk=entry.data["id"])
    )


def _files_by_item(value: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {f"{e.register}:{e.data['id']}": e.data["files"] for e in entries(value)}


def _confirm(response: PortalResponse, link: PortalLink, value: dict[str, Any]) -> None:
    error = emails.send(
        emails.confirmation_message(response=response, link=link, files=_files_by_item(value))
    )
    if error:
        response.confirmation_error = error
    else:
        response.confirmation_sent_at = clock.now()
    PortalResponse.objects.filter(pk=response.pk).update(
        confirmation_sent_at=response.confirmation_sent_at,
        confirmation_error=response.confirmation_error,
    )


def acknowledge_items(
    *,
    link: PortalLink,
    items: Sequence[str] = (),
    all_awaiting: bool = False,
    typed_name: str,
    confirmed: bool,
    manifest_sha256: str,
    ip: str | None,
    user_agent: str | None,
) -> PortalResponse:
    """The contact acknowledges items (`deliverable:12`, `handover_item:3`, or every item
    awaiting a response), signing with their typed full name and an explicit confirmation,
    for exactly the manifest they were shown (its digest)."""
    errors = Errors()
    typed = errors.text("typed_name", typed_name, max_length=200)
    if typed and normal_name(typed) != normal_name(link.contact.name):
        errors.add(
            "typed_name",
            f"does not match the name we have for you; type your full name: {link.contact.name}",
        )
    if confirmed is not True:
        errors.add("confirm", "tick the box to confirm that you received these items")
    errors.raise_if_any()
    with transaction.atomic():
        case = lock_case(link.case)
        link = _live(link)
        _ensure_answerable(case)
        value, digest = _current(case, manifest_sha256)
        keys = [e.key for e in entries(value) if e.awaiting] if all_awaiting else list(items)
        chosen = pick(value, keys, acknowledging=True)
        contact, now = link.contact, clock.now()
        refs, files = [], []
        for entry in chosen:
            obj = _locked_item(case, entry)
            old = obj.status
            if isinstance(obj, Deliverable):
                obj.status = Deliverable.Status.ACCEPTED
                obj.accepted_at = now
                obj.acceptance_note = (
                    f"Acknowledged by {contact.name} <{contact.email}> through the client portal "
                    f"(manifest sha256 {digest})."
                )
                fields = ["status", "accepted_at", "acceptance_note", "updated_at"]
            else:
                obj.status = HandoverItem.Status.ACKNOWLEDGED
                obj.acknowledged_at = now
                fields = ["status", "acknowledged_at", "updated_at"]
            _client_said(obj, contact, typed, digest, now)
            obj.updated_at = now
            obj.save(update_fields=[*fields, *PROVENANCE_FIELDS])
            files += list(obj.evidence.all())
            refs.append({**entry.as_ref(), "old_status": old, "status": obj.status})
        # The client's acknowledgement may settle the last item a step is about: the step is
        # then done with this acknowledgement as its evidence (client_ack), in this event.
        actor = _contact_actor(link, ip, user_agent)
        completed = complete_settled_steps(actor=actor, case=case)
        effects = record_change(case)
        event = record_event(
            actor=actor,
            type="portal.acknowledged",
            case=case,
            data={
                "title": f"{_plural(len(refs), 'item')} acknowledged by {contact.name}",
                "link_id": link.pk,
                "contact": _contact(contact),
                "typed_name": typed,
                "confirmed": True,
                "items": refs,
                "manifest_sha256": digest,
                "manifest": value,
                **effects,
                **completing_data(completed),
            },
            files=files,
        )
        note_completing_event(case, completed, event)
        response = _response(
            link,
            PortalResponse.Kind.ACKNOWLEDGED,
            [{k: r[k] for k in ("register", "id", "label")} for r in refs],
            digest,
            ip,
            user_agent,
            now,
            event.index,
            typed_name=typed,
        )
    link.case = case
    _confirm(response, link, value)
    return response


def _response(
    link: PortalLink,
    kind: str,
    items: list[dict[str, Any]],
    digest: str,
    ip: str | None,
    user_agent: str | None,
    at: Any,
    event_index: int,
    **text: str,
) -> PortalResponse:
    """The index row of one acknowledgement or dispute (the ledger event holds the record)."""
    return PortalResponse.objects.create(
        org=link.org,
        link=link,
        case=link.case,
        contact=link.contact,
        kind=kind,
        items=items,
        manifest_sha256=digest,
        ip=ip or "",
        user_agent=(user_agent or "")[:300],
        at=at,
        event_index=event_index,
        **text,
    )


def dispute_item(
    *,
    link: PortalLink,
    item: str,
    comment: str,
    manifest_sha256: str,
    ip: str | None,
    user_agent: str | None,
) -> PortalResponse:
    """The contact disputes one item awaiting their response, saying what is wrong. The item
    no longer meets its closure gate until the dispute is resolved."""
    errors = Errors()
    comment = errors.text("comment", comment, max_length=MAX_COMMENT)
    errors.raise_if_any()
    with transaction.atomic():
        case = lock_case(link.case)
        link = _live(link)
        _ensure_answerable(case)
        value, digest = _current(case, manifest_sha256)
        (entry,) = pick(value, [item], acknowledging=False)
        contact, now = link.contact, clock.now()
        obj = _locked_item(case, entry)
        old = obj.status
        if isinstance(obj, Deliverable):
            obj.status = Deliverable.Status.REJECTED
            obj.accepted_at = now  # the time of the client's answer, whichever it was
            obj.acceptance_note = f"Disputed by {contact.name} through the client portal: {comment}"
            fields = ["status", "accepted_at", "acceptance_note", "updated_at"]
        else:
            obj.status = HandoverItem.Status.DISPUTED
            fields = ["status", "updated_at"]
        _client_said(obj, contact, "", digest, now)
        obj.updated_at = now
        obj.save(update_fields=[*fields, *PROVENANCE_FIELDS])
        effects = record_change(case)
        ref = {**entry.as_ref(), "old_status": old, "status": obj.status}
        event = record_event(
            actor=_contact_actor(link, ip, user_agent),
            type="portal.disputed",
            case=case,
            data={
                "title": f"{entry.label} disputed by {contact.name}",
                "link_id": link.pk,
                "contact": _contact(contact),
                "items": [ref],
                "comment": comment,
                "manifest_sha256": digest,
                "manifest": value,
                **effects,
            },
            files=list(obj.evidence.all()),
        )
        response = _response(
            link,
            PortalResponse.Kind.DISPUTED,
            [entry.as_ref()],
            digest,
            ip,
            user_agent,
            now,
            event.index,
            comment=comment,
        )
    link.case = case
    _confirm(response, link, value)
    return response
