"""The workspace's client-portal actions: send a link, remind, revoke, deem accepted.

Each calls one service of `offboard.portal` through the workspace's `act`, so refusals show
next to the form that caused them and every success is answered like any workspace action.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST

from offboard.cases.models import OffboardingCase
from offboard.core.actor import Actor
from offboard.core.errors import NotFound, ValidationFailed
from offboard.portal import selectors, services
from offboard.portal.models import PortalLink
from offboard.web.workspace import act, require_confirmation


def _days(request: HttpRequest, name: str) -> int | None:
    """A whole number of days from the form; blank means the service's default."""
    raw = request.POST.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationFailed({name: [f"'{raw}' is not a whole number of days"]})
    return int(raw)


def _link(case: OffboardingCase, actor: Actor, link_id: int) -> PortalLink:
    link = selectors.get_link(actor.org, link_id)
    if link.case_id != case.pk:
        raise NotFound(f"No portal link {link_id} on case {case.ref}.")
    return link


@require_POST
@login_required
def send_link(request: HttpRequest, ref: str) -> HttpResponse:
    def do(actor: Actor, case: OffboardingCase) -> services.IssuedLink:
        raw = request.POST.get("contact_id", "")
        if not raw.isdigit():
            raise ValidationFailed({"contact_id": ["choose the contact to send the link to"]})
        contact = selectors.case_contact(case, contact_id=int(raw))
        days = _days(request, "days")
        return services.issue_portal_link(
            actor=actor,
            case=case,
            contact=contact,
            base_url=services.base_url_for(request.build_absolute_uri("/")),
            days=services.LINK_DAYS if days is None else days,
            respond_days=_days(request, "respond_days"),
        )

    return act(
        request, ref, form="portal-send", target="portal", anchor="portal", do=do, show="issued"
    )


@require_POST
@login_required
def remind(request: HttpRequest, ref: str, link_id: int) -> HttpResponse:
    def do(actor: Actor, case: OffboardingCase) -> None:
        services.send_reminder(actor=actor, link=_link(case, actor, link_id))

    return act(
        request, ref, form=f"portal-{link_id}-remind", target="portal", anchor="portal", do=do
    )


@require_POST
@login_required
def revoke(request: HttpRequest, ref: str, link_id: int) -> HttpResponse:
    def do(actor: Actor, case: OffboardingCase) -> None:
        link = _link(case, actor, link_id)
        require_confirmation(
            request,
            "revoke",
            f"The portal link of {link.contact.name} was not revoked: revoking is final, so it "
            "needs your confirmation. Confirm it, or keep the link.",
            allowed=services.may_manage_links(actor, case),
        )
        services.revoke_portal_link(actor=actor, link=link, reason=request.POST.get("reason", ""))

    return act(
        request, ref, form=f"portal-{link_id}-revoke", target="portal", anchor="portal", do=do
    )


@require_POST
@login_required
def deem_accepted(request: HttpRequest, ref: str, link_id: int) -> HttpResponse:
    """Changes deliverables too: a plain post, answered with the whole page."""

    def do(actor: Actor, case: OffboardingCase) -> None:
        services.mark_deemed_accepted(actor=actor, link=_link(case, actor, link_id))

    return act(request, ref, form=f"portal-{link_id}-deem", target="portal", anchor="portal", do=do)


urlpatterns = [
    path("cases/<str:ref>/portal/links", send_link, name="ws-portal-send"),
    path("cases/<str:ref>/portal/links/<int:link_id>/remind", remind, name="ws-portal-remind"),
    path("cases/<str:ref>/portal/links/<int:link_id>/revoke", revoke, name="ws-portal-revoke"),
    path(
        "cases/<str:ref>/portal/links/<int:link_id>/deem",
        deem_accepted,
        name="ws-portal-deem",
    ),
]
