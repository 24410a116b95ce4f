"""GET /calendar/<token>.ics: a member's calendar feed. No login: the token is the credential.

A token that is malformed, unknown or revoked, or whose member was deactivated, gets the same
plain 404, which names nothing. The answer is never cached by anyone but its reader and never
passes its address on.
"""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from offboard.calendar import feed as feeds
from offboard.calendar import selectors, services
from offboard.core import clock


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL: never pass it on
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
def feed(request: HttpRequest, token: str) -> HttpResponse:
    found = selectors.feed_for_token(token)
    if found is None:
        return _private(
            HttpResponse(
                "No such calendar feed.\n", status=404, content_type="text/plain; charset=utf-8"
            )
        )
    services.note_use(found)
    body = feeds.render(
        found,
        base_url=services.base_url_for(request.build_absolute_uri("/")),
        now=clock.now(),
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="offboard.ics"'
    return _private(response)
