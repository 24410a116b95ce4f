"""Portal links in the REST API: issue (the URL answered once), list, revoke, remind, and
mark deemed acceptance. Mounted at /api/v1/ beside the case routes."""

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from offboard.cases.selectors import get_case
from offboard.core import clock
from offboard.core.api import actor_of
from offboard.core.schemas import Input, UserRef, error_responses, paginated
from offboard.core.scopes import scope
from offboard.portal import selectors, services

router = Router(tags=["portal"])

WRITE_ERRORS = error_responses(403, 404, 409, 422)


class PortalLinkIn(Input):
    contact_id: int | None = Field(None, description="The contact's id (one of the client's).")
    contact_email: str | None = Field(
        None, max_length=254, description="Or the contact's email address."
    )
    days: int = Field(
        services.LINK_DAYS,
        description=f"Days the link works: {services.MIN_LINK_DAYS}-{services.MAX_LINK_DAYS}.",
    )
    respond_days: int | None = Field(
        None,
        description=f"Days the contact is given to respond (default {services.RESPOND_DAYS}, "
        "at most `days`); deemed acceptance waits for this deadline.",
    )
    send_email: bool = Field(True, description="Email the link to the contact.")


class ContactOut(Schema):
    id: int
    name: str
    email: str
    role: str


class PortalLinkOut(Schema):
    id: int
    case: str = Field(description="The case reference.")
    contact: ContactOut
    status: str = Field(description="active, expired or revoked.")
    created_at: dt.datetime
    created_by: UserRef
    expires_at: dt.datetime
    respond_by: dt.datetime = Field(description="The deadline given to the contact.")
    revoked_at: dt.datetime | None
    revoked_by: UserRef | None
    revoke_reason: str
    last_used_at: dt.datetime | None = Field(description="When the link was last opened.")
    emailed_at: dt.datetime | None = Field(description="When the mail server took the link.")
    email_error: str = Field(description="Why emailing the link failed, if it did.")
    reminders: int = Field(description="Reminders logged on this link.")
    responses: int = Field(description="Acknowledgements and disputes made through it.")

    @staticmethod
    def resolve_case(obj: Any) -> str:
        return str(obj.case.ref)

    @staticmethod
    def resolve_status(obj: Any) -> str:
        return str(obj.status_at(clock.now()))

    @staticmethod
    def resolve_reminders(obj: Any) -> int:
        return int(getattr(obj, "reminder_count", 0))

    @staticmethod
    def resolve_responses(obj: Any) -> int:
        return int(getattr(obj, "response_count", 0))


class PortalLinkIssuedOut(PortalLinkOut):
    url: str = Field(description="The portal URL with its token: shown this once, never stored.")
    emailed: bool = Field(description="Whether the mail server accepted the link's email.")


class RevokeIn(Input):
    reason: str = Field("", max_length=5000, description="Why; kept in the record.")


class ItemRef(Schema):
    kind: str = Field(description="deliverable or handover_item.")
    id: int
    label: str

    @staticmethod
    def resolve_kind(obj: Any) -> str:
        return "deliverable" if obj["register"] == "deliverables" else "handover_item"


class ReminderOut(Schema):
    id: int
    link_id: int
    contact: ContactOut
    sent_at: dt.datetime
    items: list[ItemRef] = Field(description="The items the reminder named as awaited.")
    message_id: str
    event_index: int = Field(description="The reminder's event in the ledger.")


class DeemedIn(Input):
    deliverable_ids: list[int] | None = Field(
        None,
        max_length=500,
        description="Deliverables to deem accepted; default: every delivered one, each of "
        "which must qualify.",
    )


class DeemedItemOut(Schema):
    id: int
    title: str
    status: str
    accepted_at: dt.datetime | None
    acceptance_note: str


class DeemedOut(Schema):
    items: list[DeemedItemOut]


@router.post(
    "/cases/{ref}/portal-links",
    response={201: PortalLinkIssuedOut, **WRITE_ERRORS},
    summary="Issue a portal link to a client contact (the URL is answered once)",
    description="The case owner, a manager or an admin. The link opens `/portal/<token>/` for "
    "this contact and this case only; only the token's SHA-256 is stored, so `url` is in "
    "this answer and the contact's email, nowhere else. The case must be active or closing. "
    "Recorded as `portal_link.issued`. See docs/portal.md.",
)
@scope("cases:write")
def issue_link(request: HttpRequest, ref: str, payload: PortalLinkIn) -> Any:
    actor = actor_of(request)
    case = get_case(actor.org, ref)
    contact = selectors.case_contact(
        case, contact_id=payload.contact_id, email=payload.contact_email
    )
    issued = services.issue_portal_link(
        actor=actor,
        case=case,
        contact=contact,
        base_url=services.base_url_for(request.build_absolute_uri("/")),
        days=payload.days,
        respond_days=payload.respond_days,
        send_email=payload.send_email,
    )
    link: Any = selectors.links_with_counts(case).get(pk=issued.link.pk)
    link.url, link.emailed = issued.url, issued.emailed
    return Status(201, link)


@router.get(
    "/cases/{ref}/portal-links",
    response={200: list[PortalLinkOut], **error_responses(404)},
    summary="The case's portal links, newest first",
)
@paginated
def list_links(request: HttpRequest, ref: str) -> Any:
    case = get_case(actor_of(request).org, ref)
    return selectors.links_with_counts(case)


@router.post(
    "/portal-links/{link_id}/revoke",
    response={200: PortalLinkOut, **WRITE_ERRORS},
    summary="Revoke a portal link: it stops working at once",
    description="The case owner, a manager or an admin; also on closed cases. Recorded as "
    "`portal_link.revoked`; a second revocation is 409 `already_revoked`.",
)
@scope("cases:write")
def revoke_link(request: HttpRequest, link_id: int, payload: RevokeIn) -> Any:
    actor = actor_of(request)
    link = selectors.get_link(actor.org, link_id)
    services.revoke_portal_link(actor=actor, link=link, reason=payload.reason)
    return selectors.links_with_counts(link.case).get(pk=link.pk)


@router.post(
    "/portal-links/{link_id}/reminders",
    response={201: ReminderOut, **error_responses(403, 404, 409, 422, 502)},
    summary="Email the contact a reminder of the items awaiting their response",
    description="The case owner, a manager or an admin; the link must be active. The reminder "
    "is emailed first and recorded (`portal_link.reminder_sent`) only once the mail server "
    "accepted it; otherwise 502 `email_failed` and nothing is recorded.",
)
@scope("cases:write")
def remind(request: HttpRequest, link_id: int) -> Any:
    actor = actor_of(request)
    link = selectors.get_link(actor.org, link_id)
    reminder = services.send_reminder(actor=actor, link=link)
    reminder.contact = link.contact
    return Status(201, reminder)


@router.post(
    "/portal-links/{link_id}/deemed-acceptance",
    response={200: DeemedOut, **WRITE_ERRORS},
    summary="Mark delivered deliverables deemed accepted after the contact's silence",
    description="Managers and admins. Only after the link's `respond_by` has passed, and for "
    f"deliverables named in at least {services.REMINDERS_FOR_DEEMED_ACCEPTANCE} logged "
    "reminders to the contact (409 `deadline_not_passed` / `too_few_reminders` otherwise). "
    "Recorded as `portal.deemed_accepted`, citing the reminders' event indices.",
)
@scope("cases:write")
def deem_accepted(request: HttpRequest, link_id: int, payload: DeemedIn) -> Any:
    actor = actor_of(request)
    link = selectors.get_link(actor.org, link_id)
    items = services.mark_deemed_accepted(
        actor=actor, link=link, deliverable_ids=payload.deliverable_ids
    )
    return {"items": items}
