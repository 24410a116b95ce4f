"""Importing clients from a CSV file (admins): upload, see what would be added or every
problem with its line and column, confirm; and the template to start from (docs/import.md).

Between the preview and the confirmation the file travels in the page itself (base64 in a
hidden field), not in the session or on disk: any web process can take the confirmation,
and the confirmation checks the file again against the organization as it then stands.
"""

import base64
import binascii
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from offboard.accounts.models import Membership
from offboard.clients import csvfile
from offboard.clients.imports import ClientImport, ImportInvalid, preview_clients_csv
from offboard.clients.services import import_clients_csv
from offboard.core.permissions import can
from offboard.web.pages.common import actor_of, forbidden, staff_page
from offboard.web.uploads import members_who_may, takes_files

IMPORT_REFUSED = "Your role '{role}' may not import clients from a file; an admin can."
TEMPLATE_NAME = "offboard-clients-template.csv"
SHOWN_PROBLEMS = 300  # a page of problems; the count says how many there are in all


def _page(
    request: HttpRequest, membership: Membership, status: int = 200, **context: Any
) -> HttpResponse:
    problems = context.get("problems") or []
    return render(
        request,
        "web/clients/import.html",
        {
            "membership": membership,
            "columns": [
                (name, f"{' or '.join(records)} rows" if len(records) < 3 else "every row", what)
                for name, (records, what) in csvfile.COLUMNS.items()
            ],
            "max_rows": csvfile.MAX_ROWS,
            "max_bytes": csvfile.MAX_BYTES,
            "shown_problems": problems[:SHOWN_PROBLEMS],
            "more_problems": max(0, len(problems) - SHOWN_PROBLEMS),
            **context,
        },
        status=status,
    )


def _sent_file(request: HttpRequest) -> tuple[bytes | None, str]:
    """The file's bytes (at most one byte past the import's limit, enough to know it is too
    large) and name: uploaded, or carried back by the preview's confirmation."""
    upload = request.FILES.get("file")
    if upload is not None:
        return upload.read(csvfile.MAX_BYTES + 1), upload.name or "the file"
    carried = request.POST.get("source")
    if carried is None:
        return None, ""
    try:
        source = base64.b64decode(carried, validate=True)
    except (binascii.Error, ValueError):
        source = None
    return source, request.POST.get("file_name", "")[:200] or "the file"


# The role is checked before the file is read (web/uploads.py).
@takes_files(members_who_may("clients.import", refusal=IMPORT_REFUSED))
@staff_page
def client_import(request: HttpRequest, membership: Membership) -> HttpResponse:
    """GET: the form. POST a file: its preview, or its problems (422). POST with
    `confirm=import` (the preview's button, carrying the file back; or a file sent with it):
    the import, then the clients list."""
    actor = actor_of(request, membership)
    if not can(actor, "clients.import"):
        return forbidden(request, IMPORT_REFUSED.format(role=membership.role), membership)
    if request.method != "POST":
        return _page(request, membership)
    source, name = _sent_file(request)
    if not source:
        problem = "Choose the CSV file to import." if source is None else f"{name} is empty."
        return _page(request, membership, 422, choose=problem)
    if request.POST.get("confirm") == "import":
        try:
            done = import_clients_csv(actor=actor, source=source, file_name=name)
        except ImportInvalid as exc:
            return _page(request, membership, 422, problems=exc.problems, file_name=name)
        messages.success(request, f"Imported {done.summary()} from {name}.")
        return redirect("web:client-list")
    plan: ClientImport = preview_clients_csv(actor=actor, source=source)
    if not plan.ok:
        return _page(request, membership, 422, problems=plan.problems, file_name=name)
    return _page(
        request,
        membership,
        plan=plan,
        file_name=name,
        source=base64.b64encode(source).decode("ascii"),
    )


@staff_page
def client_import_template(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The template to fill in: the columns and example rows (a download, for any member)."""
    response = HttpResponse(
        csvfile.template_csv().encode("utf-8"), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{TEMPLATE_NAME}"'
    return response
