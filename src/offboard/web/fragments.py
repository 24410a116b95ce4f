"""Rendered fragments kept by what they show (docs/decisions/0035-fragment-cache.md).

A big case's workspace is mostly step rows, each a template with three small forms; Django's
template engine spends about half a millisecond on each. The workspace is re-rendered after
every action (the steps region is refreshed from the same answer), and every viewer of a case
renders the same rows. So a row is rendered once per *content*: its cache key is a digest of
everything the row's template reads (`StepRow.fingerprint`) and of the templates' own source,
never an id or a version number. A changed step has a new key and is rendered afresh; an entry
can never be stale, so nothing is ever invalidated and each process may keep its own cache
(`CACHES["fragments"]`, local memory, bounded). The one per-request part of a row, its CSRF
token, is rendered as a placeholder and put in on the way out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.middleware.csrf import get_token
from django.template.loader import get_template
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe

# Rendered in place of the request's CSRF token; no token can look like it (tokens are
# alphanumeric).
PLACEHOLDER = "__offboard-csrf-token__"
ALIAS = "fragments"

_sources: dict[str, str] = {}


def _templates_digest(names: tuple[str, ...]) -> str:
    """The source of `names` and of the templates they include (for a row: the row itself,
    its items, file chips and drop zone), so that a deploy that changes one renders afresh;
    read once per process, or on every use with debug on."""
    key = "\0".join(names)
    if key not in _sources or settings.DEBUG:  # debug (`make run`): an edit shows at once
        h = hashlib.sha256()
        for name in names:
            origin = get_template(name).origin.name  # type: ignore[attr-defined]
            h.update(Path(origin).read_bytes())
        _sources[key] = h.hexdigest()
    return _sources[key]


def _token(request: Any) -> str:
    """The request's CSRF token, masked once for all its rows (`get_token` masks afresh, with
    32 random characters, on every call)."""
    token = getattr(request, "_offboard_csrf_token", None)
    if token is None:
        token = get_token(request)
        request._offboard_csrf_token = token
    return str(token)


def render(
    request: Any,
    names: tuple[str, ...],
    fingerprint: tuple[Any, ...],
    context: dict[str, Any],
) -> SafeString:
    """`names[0]` rendered with `context`, or the same fragment rendered earlier for an equal
    `fingerprint`. The fingerprint must name everything the template reads from `context`
    (and the time zone and language are added here); `context` must hold no per-request value
    other than the CSRF token."""
    if not settings.OFFBOARD_FRAGMENT_CACHE:
        return render_afresh(request, names[0], context)
    material = repr(
        (
            _templates_digest(names),
            timezone.get_current_timezone_name(),
            translation.get_language(),
            fingerprint,
        )
    )
    key = "frag:" + hashlib.sha256(material.encode()).hexdigest()
    cache = caches[ALIAS]
    html = cache.get(key)
    if html is None:
        html = get_template(names[0]).render({**context, "csrf_token": PLACEHOLDER})
        cache.set(key, html)
    return with_token(request, html)


def with_token(request: Any, html: str) -> SafeString:
    """`html` rendered with the placeholder, with the request's CSRF token in its place."""
    return mark_safe(html.replace(PLACEHOLDER, _token(request)))  # noqa: S308 (escaped output)


def render_afresh(request: Any, name: str, context: dict[str, Any]) -> SafeString:
    """`name` rendered with `context` and the request's CSRF token, kept nowhere."""
    html = get_template(name).render({**context, "csrf_token": _token(request)})
    return mark_safe(html)  # noqa: S308 (a template's escaped output)
