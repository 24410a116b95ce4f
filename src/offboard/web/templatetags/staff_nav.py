"""Which section of the staff app a page belongs to, for the top navigation."""

from django import template
from django.http import HttpRequest

register = template.Library()

_SECTIONS = ("clients", "playbooks", "settings", "cases")


@register.simple_tag
def nav_section(request: HttpRequest) -> str:
    path = request.path
    if path == "/":
        return "dashboard"
    for section in _SECTIONS:
        if path.startswith(f"/{section}/"):
            return section
    return ""
