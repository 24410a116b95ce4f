"""Template helpers for the case workspace."""

from typing import Any

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.safestring import SafeString

from offboard.web import fragments
from offboard.web.workspace_page import REGIONS, ItemRow, RegisterView, StepRow

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


STEP_ROW = (
    "web/partials/ws_step_row.html",
    "web/partials/ws_step_items.html",
    "web/partials/ws_file.html",
    "web/partials/ws_dropzone.html",
)
ITEM_ROW = (
    "web/partials/ws_item_row.html",
    "web/partials/ws_fact_fields.html",
    "web/partials/ws_verify_fields.html",
    "web/partials/ws_field.html",
    "web/partials/ws_file.html",
    "web/partials/ws_dropzone.html",
)


def _row(
    context: template.Context,
    names: tuple[str, ...],
    row: StepRow | ItemRow,
    own: dict[str, Any],
    *facts: Any,
) -> SafeString:
    """A row rendered once per content (web/fragments.py): its fingerprint, the case, whether
    the viewer reads files, and the `facts` of its section; a row showing a failed form
    carries what was typed, so it is rendered afresh."""
    case, may = context["case"], context["may"]
    own = {**own, "row": row, "case": case, "may": may}
    if row.failure is not None:
        return fragments.render_afresh(context["request"], names[0], own)
    fingerprint = (case.ref, bool(may.get("read_files")), *facts, row.fingerprint())
    return fragments.render(context["request"], names, fingerprint, own)


@register.simple_tag(takes_context=True)
def step_row(context: template.Context, row: StepRow) -> SafeString:
    """A step's row (`_row`)."""
    return _row(context, STEP_ROW, row, {})


@register.simple_tag(takes_context=True)
def item_row(context: template.Context, reg: RegisterView, row: ItemRow) -> SafeString:
    """A register item's row (`_row`), which also shows its register's key and whether the
    viewer may edit it."""
    return _row(context, ITEM_ROW, row, {"reg": reg}, reg.key, reg.may_edit)


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
