"""Template helpers for the case workspace."""

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.safestring import SafeString

from offboard.web.workspace_page import REGIONS

register = template.Library()


@register.simple_tag
def hx(region: str) -> SafeString:
    """HTMX attributes of a form that swaps `region` in place and refreshes the shared regions
    (header, closure panel, steps, approvals, tab counts, waivers, timeline) from the same
    answer."""
    # A step's own row is swapped as the target, so the steps around it are not refreshed.
    oob = ",".join(
        f"#{r}"
        for r in REGIONS
        if r != region and not (r == "steps" and region.startswith("step-"))
    )
    return format_html(
        'hx-target="#{0}" hx-select="#{0}" hx-swap="outerHTML" hx-select-oob="{1}" '
        'hx-disabled-elt="find button[type=submit]"',
        region,
        oob,
    )


@register.filter
def filesize(value: int) -> str:
    return str(filesizeformat(value)).replace("\xa0", " ")


@register.filter
def humanize(value: str) -> str:
    """A stored code as words: `deemed_accepted` → `deemed accepted`."""
    return str(value or "").replace("_", " ")


@register.filter
def lookup(mapping: object, key: str) -> object:
    """`mapping|lookup:name`: a value by a key held in a variable ("" when absent)."""
    return mapping.get(key, "") if isinstance(mapping, dict) else ""
