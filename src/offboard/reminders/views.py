"""/reminders/unsubscribe/<token>/: stop one kind of reminder email, from the link in it. No
login: the signed token is the credential (reminders/tokens.py).

GET only shows what the link would stop and a button — a link scanner or a prefetching mail
client that follows it changes nothing. POST stops it: the button, or a mail client's RFC 8058
one-click POST (`List-Unsubscribe=One-Click`), which carries no CSRF token, hence
`csrf_exempt`; the token in the address is what authorizes it. An unknown or tampered token is
a plain 404 page that names nothing.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from offboard.accounts.models import Membership
from offboard.core.actor import Actor
from offboard.reminders import emails, selectors, services
from offboard.reminders.tokens import read_unsubscribe_token


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL: never pass it on
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    found = read_unsubscribe_token(token)
    membership = None
    if found is not None:
        org_id, user_id, channel = found
        membership = (
            Membership.objects.filter(org_id=org_id, user_id=user_id)
            .select_related("org", "user")
            .first()
        )
    if found is None or membership is None:
        return _private(render(request, "reminders/unsubscribe_invalid.html", status=404))
    context: dict[str, object] = {
        "org_name": membership.org.name,
        "channel_words": emails.CHANNEL_WORDS[channel],
        "email": membership.user.email,
        "settings_url": reverse("web:settings") + "#reminders",
    }
    if request.method == "POST":
        actor = Actor.from_membership(
            membership,
            auth_method="unsubscribe_link",
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:500] or None,
        )
        services.unsubscribe(actor=actor, membership=membership, channel=channel)
        return _private(render(request, "reminders/unsubscribed.html", context))
    pref = selectors.preference(membership.org, membership.user)
    context["already"] = not pref.receives(channel)
    return _private(render(request, "reminders/unsubscribe.html", context))
