"""The case workspace kept whole, by the rows it shows (docs/decisions/0036-workspace-page.md).

A big case's workspace costs about a tenth of a second to build: the case is loaded with every
step, item and file as model instances, its digest and gates are computed, and a few hundred
rows are put together. Most of its answers are to people reading a case nobody changed since
the last answer. So the body of the page (all but the frame: menu, messages) is kept under a
key that is a digest of the rows themselves, read as plain values, never as model instances:
the case, its client, contacts and contracts, playbook, steps, registers, waivers, approvals,
addenda, portal links, reminders and responses, closure receipt and its checkpoint, every file
linked to any of them, the organization, its members and every user any row names, and the
case's ledger (its size, last index and redactions: entries are otherwise never changed). On
SQLite that is a statement a source; on PostgreSQL one prepared statement for all but the
case's row (one round trip, one snapshot; about 3 ms for a case of 200 steps). With them: who
is looking (user and role), what was asked (`?events=all`), today's date, the time zone and
language, and the templates' source.

So an entry is never stale for a change in the database, made through the services or behind
their back: a changed row is a new key. Two things need more than a key:

- Time. The page compares the present with instants in those rows (a waiver expires, a link
  runs out, an answer is due) and with today's date (overdue steps, days left). An entry is
  used only before the earliest instant in its rows still to come and before the local
  midnight after it was made; and never longer than `OFFBOARD_PAGE_CACHE_SECONDS`.
- A change while the page is built. The key is read again after the build and the body kept
  only if the key is the same. Every change made through the services records an event, whose
  index is in the key: a body kept was built from the state its key names.

Each web process keeps its own entries (`CACHES["pages"]`, local memory, bounded); the CSRF
token is rendered as a placeholder and put in on the way out, as for the rows
(`web/fragments.py`). `OFFBOARD_PAGE_CACHE=false` builds every page afresh.
"""

# Every statement here is built from table and column names of the models, quoted by the
# database's own quoting; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.db.models import DateTimeField, Model
from django.template import engines
from django.utils import timezone, translation

from offboard.accounts.models import Membership, Organization
from offboard.cases.models import Addendum, Approval, OffboardingCase, Step, Waiver
from offboard.cases.registers import REGISTERS
from offboard.clients.models import Client, Contact
from offboard.core import clock
from offboard.evidence.models import EvidenceFile
from offboard.ledger.models import Checkpoint, LedgerEntry
from offboard.notifications.models import ClosureReceipt
from offboard.playbooks.models import Playbook, PlaybookVersion
from offboard.portal.models import PortalLink, PortalReminder, PortalResponse
from offboard.web import fragments

ALIAS = "pages"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Every model whose rows belong to a case through a `case` column, in the order read.
CASE_MODELS: tuple[type[Model], ...] = (
    Step,
    *(spec.model for spec in REGISTERS.values()),
    Waiver,
    Approval,
    Addendum,
    PortalLink,
    PortalReminder,
    PortalResponse,
    ClosureReceipt,
)
# Columns of user rows that no page shows and that change without any change to a case.
USER_COLUMNS_LEFT_OUT = ("password", "last_login")

# Tables whose rows make the key; a test checks that building the page reads no other
# (tests/web/test_page_cache.py), so a new query on the page without a new source here fails.
WITH_CASE: tuple[type[Model], ...] = (OffboardingCase, *CASE_MODELS)
KEY_MODELS: tuple[type[Model], ...] = (
    *WITH_CASE,
    Client,
    Contact,
    Organization,
    Membership,
    get_user_model(),
    PlaybookVersion,
    Playbook,
    EvidenceFile,
    LedgerEntry,
    Checkpoint,
)


def _linked_tables(field: Any) -> tuple[str, str]:
    """A many-to-many field's link table and the table it links to."""
    return field.remote_field.through._meta.db_table, field.remote_field.model._meta.db_table


TABLES = frozenset(m._meta.db_table for m in KEY_MODELS) | frozenset(
    table for m in WITH_CASE for f in m._meta.local_many_to_many for table in _linked_tables(f)
)


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _name(model: type[Model], field: str) -> str:
    """The column of `model`'s `field`, unquoted."""
    return str(getattr(model._meta.get_field(field), "column"))  # noqa: B009 (any field kind)


def _column(model: type[Model], name: str) -> str:
    return connection.ops.quote_name(_name(model, name))


def _pk(model: type[Model]) -> str:
    return connection.ops.quote_name(_name(model, model._meta.pk.name))


@dataclass(frozen=True)
class _Source:
    """One statement of the key: `sql` with `params`, and the columns of its rows that hold
    instants (compared with the present by the page)."""

    label: str
    sql: str
    params: tuple[Any, ...]
    instants: tuple[str, ...] = ()


@functools.cache
def _columns(model: type[Model], prefix: str = "") -> str:
    """The model's columns by name: those this code knows, so that a statement prepared before
    a migration adds a column keeps its shape."""
    return ", ".join(
        prefix + connection.ops.quote_name(f.column) for f in model._meta.concrete_fields
    )


@functools.cache
def _instants(model: type[Model]) -> tuple[str, ...]:
    return tuple(f.column for f in model._meta.concrete_fields if isinstance(f, DateTimeField))


def _case_source(org_id: int, ref: str) -> _Source:
    """The case's own row, read first: the other statements name it by its id."""
    where = f"{_column(OffboardingCase, 'org')} = %s AND {_column(OffboardingCase, 'ref')} = %s"
    sql = f"SELECT {_columns(OffboardingCase)} FROM {_table(OffboardingCase)} WHERE {where}"
    return _Source("OffboardingCase", sql, (org_id, ref), _instants(OffboardingCase))


def _sources(org_id: int, case: dict[str, Any]) -> list[_Source]:
    """Every statement of the key after the case's row (`case`, by column)."""
    q = connection.ops.quote_name
    of_case = (case[_name(OffboardingCase, "id")],)
    case_id = "%s"  # the case's id, a parameter (`of_case`)

    def column(name: str) -> tuple[Any, ...]:
        return (case[_name(OffboardingCase, name)],)

    def rows(model: type[Model], where: str, params: tuple[Any, ...]) -> _Source:
        sql = f"SELECT {_columns(model)} FROM {_table(model)} WHERE {where} ORDER BY {_pk(model)}"
        return _Source(model.__name__, sql, params, _instants(model))

    def linked(model: type[Model], field: Any, owners: str) -> _Source:
        through, target = field.remote_field.through, field.remote_field.model
        source, other = q(field.m2m_column_name()), q(field.m2m_reverse_name())
        sql = (
            f"SELECT l.{source}, {_columns(target, 't.')} FROM {_table(through)} l "
            f"JOIN {_table(target)} t "
            f"ON t.{_pk(target)} = l.{other} WHERE l.{source} IN ({owners}) "
            f"ORDER BY l.{_pk(through)}"
        )
        return _Source(f"{model.__name__}.{field.name}", sql, of_case, _instants(target))

    ledger = f"{_table(LedgerEntry)} WHERE {_column(LedgerEntry, 'org')} = %s AND "
    ledger += f"{_column(LedgerEntry, 'case')} = {case_id}"
    redacted = _column(LedgerEntry, "redacted")
    found = [
        _Source(
            "ledger",
            f"SELECT COUNT(*), MAX({_column(LedgerEntry, 'index')}), "
            f"SUM(CASE WHEN {redacted} THEN 1 ELSE 0 END) FROM {ledger}",
            (org_id, *of_case),
        ),
        rows(Organization, f"{_pk(Organization)} = %s", (org_id,)),
        rows(Client, f"{_pk(Client)} = %s", column("client")),
        rows(Contact, f"{_column(Contact, 'client')} = %s", column("client")),
        rows(PlaybookVersion, f"{_pk(PlaybookVersion)} = %s", column("playbook_version")),
        rows(
            Playbook,
            f"{_pk(Playbook)} IN (SELECT {_column(PlaybookVersion, 'playbook')} FROM "
            f"{_table(PlaybookVersion)} WHERE {_pk(PlaybookVersion)} = %s)",
            column("playbook_version"),
        ),
        *(linked(OffboardingCase, f, case_id) for f in OffboardingCase._meta.local_many_to_many),
    ]
    for model in CASE_MODELS:
        where = f"{_column(model, 'case')} = {case_id}"
        found.append(rows(model, where, of_case))
        owners = f"SELECT {_pk(model)} FROM {_table(model)} WHERE {where}"
        found += [linked(model, f, owners) for f in model._meta.local_many_to_many]
    for model, points_to in ((Checkpoint, "checkpoint"), (EvidenceFile, "certificate")):
        receipt = f"SELECT {_column(ClosureReceipt, points_to)} FROM {_table(ClosureReceipt)} "
        receipt += f"WHERE {_column(ClosureReceipt, 'case')} = {case_id}"
        found.append(rows(model, f"{_pk(model)} IN ({receipt})", of_case))
    found.append(rows(Membership, f"{_column(Membership, 'org')} = %s", (org_id,)))
    named, params = _users_named(case_id, org_id, of_case)
    user_model = get_user_model()
    columns = ", ".join(
        q(f.column)
        for f in user_model._meta.concrete_fields
        if f.column not in USER_COLUMNS_LEFT_OUT
    )
    found.append(
        _Source(
            "User",
            f"SELECT {columns} FROM {_table(user_model)} WHERE {_pk(user_model)} IN ({named}) "
            f"ORDER BY {_pk(user_model)}",
            params,
        )
    )
    return found


def _users_named(
    case_id: str, org_id: int, of_case: tuple[Any, ...]
) -> tuple[str, tuple[Any, ...]]:
    """A subquery of every user a row of the page can name: members of the organization,
    actors of the case's events, and each user column of the case's rows."""
    user_model = get_user_model()
    parts = [
        f"SELECT {_column(Membership, 'user')} FROM {_table(Membership)} WHERE "
        f"{_column(Membership, 'org')} = %s",
        f"SELECT {_column(LedgerEntry, 'actor_user')} FROM {_table(LedgerEntry)} WHERE "
        f"{_column(LedgerEntry, 'org')} = %s AND {_column(LedgerEntry, 'case')} = {case_id}",
    ]
    params: tuple[Any, ...] = (org_id, org_id, *of_case)
    for model in WITH_CASE:
        where = _pk(model) if model is OffboardingCase else _column(model, "case")
        for f in model._meta.concrete_fields:
            if f.is_relation and f.related_model is user_model:
                column = connection.ops.quote_name(f.column)
                parts.append(f"SELECT {column} FROM {_table(model)} WHERE {where} = {case_id}")
                params += of_case
    return " UNION ".join(parts), params


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if timezone.is_naive(value) else value  # SQLite: UTC


def content(org_id: int, ref: str) -> tuple[str, dt.datetime | None] | None:
    """(a digest of every row the case's workspace shows, the earliest instant in them still to
    come), or None when the organization has no case `ref`."""
    now = clock.now()
    h = hashlib.sha256()
    instants: list[dt.datetime] = []
    with connection.cursor() as cursor:
        first = _case_source(org_id, ref)
        cursor.execute(first.sql, list(first.params))
        found = cursor.fetchall()
        if not found:
            return None
        names = [c[0] for c in cursor.description]
        h.update(repr(found).encode())
        instants += (_aware(v) for v in found[0] if isinstance(v, dt.datetime))
        sources = _sources(org_id, dict(zip(names, found[0], strict=True)))
        if connection.vendor == "postgresql":
            texts, soonest = _one_statement(sources, now)
            h.update(repr(texts).encode())
            instants += soonest
        else:
            for source in sources:
                cursor.execute(source.sql, list(source.params))
                rows = cursor.fetchall()
                h.update(repr((source.label, rows)).encode())
                instants += (_aware(v) for row in rows for v in row if isinstance(v, dt.datetime))
    return h.hexdigest(), min((t for t in instants if t > now), default=None)


def _one_statement(sources: list[_Source], now: dt.datetime) -> tuple[list[Any], list[Any]]:
    """PostgreSQL: every source in one statement, so one round trip and one snapshot: each
    source's rows as one text in a fixed order, and the earliest of their instants after
    `now`. The statement is prepared: planning it costs more than running it (~5 ms against
    ~3 ms for a big case), so with persistent connections (`OFFBOARD_DB_CONN_MAX_AGE`) it is
    planned a few times per connection only. Django turns preparing off (for connection
    poolers, docs/deploy.md) and its cursors bind values on the client; this statement alone
    is sent with a cursor of psycopg's own that binds them on the server."""
    import psycopg  # PostgreSQL only

    q = connection.ops.quote_name
    parts: list[str] = []
    params: list[Any] = []
    for source in sources:
        # The rows in the order the source gives them: an order that changed would only
        # make another key.
        text = "string_agg(q::text, E'\\n')"
        if source.instants:
            later = ", ".join(f"CASE WHEN q.{q(c)} > %s THEN q.{q(c)} END" for c in source.instants)
            text = (
                f"{text} || E'\\t' || COALESCE(EXTRACT(EPOCH FROM MIN(LEAST({later})))::text, '')"
            )
            params += [now] * len(source.instants)
        parts.append(f"(SELECT {text} FROM ({source.sql}) q)")
        params += source.params
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = 2**31  # never on its own: only what asks to be prepared
    with psycopg.Cursor(raw) as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params, prepare=True)
        row = cursor.fetchone()
    assert row is not None  # a SELECT of scalars answers one row
    texts: list[Any] = []
    instants = []
    for text, source in zip(row, sources, strict=True):
        if source.instants and text is not None:
            # The rows, then the soonest instant: the key is the rows; the instant says until
            # when an entry may be used (not part of the key, as on SQLite).
            text, _, soonest = text.rpartition("\t")
            if soonest:
                whole, _, fraction = soonest.partition(".")
                micros = int((fraction + "000000")[:6])  # exact: no float in between
                instants.append(EPOCH + dt.timedelta(seconds=int(whole), microseconds=micros))
        texts.append(text)
    return texts, instants


_templates: list[str] = []


def _templates_digest() -> str:
    """The source of every template of the web app, read once per process (a deploy that
    changes one starts new processes), or on every answer with debug on (`make run`: a
    template edited while the server runs shows at once)."""
    if not _templates or settings.DEBUG:
        root = Path(__file__).parent / "templates"
        h = hashlib.sha256()
        for path in sorted(root.rglob("*.html")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        _templates[:] = [h.hexdigest()]
    return _templates[0]


def _key(request: Any, membership: Membership, ref: str) -> tuple[str, dt.datetime] | None:
    """The entry's key and the instant until which it may be used; None: no such case."""
    now = clock.now()
    found = content(membership.org_id, ref)
    if found is None:
        return None
    digest, next_instant = found
    today = timezone.localdate(now)
    midnight = timezone.make_aware(
        dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min),
        timezone.get_current_timezone(),
    )
    until = min(
        t for t in (next_instant, midnight, now + dt.timedelta(seconds=_seconds())) if t is not None
    )
    material = repr(
        (
            digest,
            request.user.pk,
            membership.pk,
            membership.role,
            request.GET.get("events") == "all",
            today.isoformat(),
            timezone.localdate().isoformat(),  # the page reads both: the clock can be pinned
            timezone.get_current_timezone_name(),
            translation.get_language(),
            _templates_digest(),
        )
    )
    return "page:" + hashlib.sha256(material.encode()).hexdigest(), until


def _seconds() -> int:
    return int(settings.OFFBOARD_PAGE_CACHE_SECONDS)


def body(request: Any, context: dict[str, Any], name: str) -> str:
    """`name` rendered with `context` alone (no context processors: nothing of the request
    but what `context` names), with the CSRF token as a placeholder, rows included."""
    before = getattr(request, "_offboard_csrf_token", None)  # the rows' token (fragments)
    request._offboard_csrf_token = fragments.PLACEHOLDER
    try:
        html = (
            engines["django"]
            .get_template(name)
            .render({**context, "request": request, "csrf_token": fragments.PLACEHOLDER})
        )
    finally:
        request._offboard_csrf_token = before
    return str(html)


def built(request: Any, context: dict[str, Any], name: str) -> tuple[str, str]:
    """(title, body) of the workspace built from `context`, kept nowhere."""
    return title(context), body(request, context, name)


def workspace_body(
    request: Any,
    membership: Membership,
    ref: str,
    build: Callable[[], dict[str, Any]],
    name: str,
) -> tuple[str, str]:
    """(title, body) of the case's workspace: kept, or `build` the context and render `name`
    with it (and keep it when nothing changed meanwhile). The body holds the CSRF placeholder
    (`fragments.with_token` puts the request's token in)."""
    keyed = _key(request, membership, ref) if settings.OFFBOARD_PAGE_CACHE else None
    if keyed is None:  # turned off, or no such case (`build` answers 404)
        return built(request, build(), name)
    key, until = keyed
    cache = caches[ALIAS]
    entry = cache.get(key)
    if entry is not None and clock.now() < entry[0]:
        return entry[1], entry[2]
    named, html = built(request, build(), name)
    again = _key(request, membership, ref)
    if again is not None and again[0] == key:
        cache.set(key, (until, named, html), timeout=_seconds())
    return named, html


def title(context: dict[str, Any]) -> str:
    case = context["case"]
    return f"{case.ref} · {case.client.name}"
