"""Security headers Django's SecurityMiddleware does not set: a Content-Security-Policy.

The policy is `settings.OFFBOARD_CSP`: scripts from our own origin only (vendored htmx; no
inline script, no eval), nothing may frame our pages, forms post only to us. Inline style
attributes stay allowed: htmx adds its indicator style, and a style attribute runs no code.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "OFFBOARD_CSP", "")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
