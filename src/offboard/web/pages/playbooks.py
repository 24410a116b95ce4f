"""Playbooks: the library, each version's steps, uploading a new version (errors shown by
line) and the difference between a version and the one before it."""

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from offboard import labels
from offboard.accounts.models import Membership
from offboard.core.errors import NotFound
from offboard.core.permissions import can
from offboard.playbooks import selectors
from offboard.playbooks.models import PlaybookVersion
from offboard.playbooks.services import import_playbook
from offboard.playbooks.spec import PlaybookInvalid, PlaybookSpec, StepSpec
from offboard.web.pages.common import actor_of, forbidden, staff_page
from offboard.web.uploads import members_who_may, takes_files

UPLOAD_REFUSED = "Your role '{role}' may not upload playbooks; an admin or a manager can."

_COMPARED = (
    "phase",
    "title",
    "guidance",
    "owner_role",
    "due_anchor",
    "due_offset_days",
    "required",
    "evidence",
    "depends_on",
    "category",
    "fee_types",
    "about",
)


@dataclass(frozen=True)
class StepChange:
    key: str
    title: str
    fields: tuple[str, ...] = ()


def step_changes(old: PlaybookVersion, new: PlaybookVersion) -> dict[str, list[StepChange]]:
    """Steps added, removed and changed (with the fields that changed) from old to new."""
    before: dict[str, StepSpec] = {s.key: s for s in old.spec.steps}
    after: dict[str, StepSpec] = {s.key: s for s in new.spec.steps}
    changed = []
    for key, step in after.items():
        if key in before:
            fields = tuple(f for f in _COMPARED if getattr(before[key], f) != getattr(step, f))
            if fields:
                changed.append(StepChange(key, step.title, fields))
    return {
        "added": [StepChange(k, s.title) for k, s in after.items() if k not in before],
        "removed": [StepChange(k, s.title) for k, s in before.items() if k not in after],
        "changed": changed,
    }


def diff_lines(old: PlaybookVersion, new: PlaybookVersion) -> list[tuple[str, str]]:
    """The unified diff of the two YAML texts, each line with its kind (add/del/hunk/ctx)."""
    lines = difflib.unified_diff(
        old.source.splitlines(),
        new.source.splitlines(),
        fromfile=f"v{old.version}",
        tofile=f"v{new.version}",
        lineterm="",
        n=3,
    )
    out = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append((kind, line))
    return out


def fee_limited(spec: PlaybookSpec) -> str:
    """Which of a playbook's steps apply only to some of its fee types — why a case gets
    fewer steps than the playbook has: "2 apply only to retainer contracts, 1 only to fixed
    fee contracts" ("" when every step applies to every fee type)."""
    counts: Counter[str] = Counter(
        labels.labels(s.fee_types, "fee_type", " or ")
        for s in spec.steps
        if s.fee_types is not None and not set(spec.fee_types) <= set(s.fee_types)
    )
    parts: list[str] = []
    for words, n in counts.most_common():
        verb = "" if parts else (" applies" if n == 1 else " apply")
        parts.append(f"{n}{verb} only to {words} contracts")
    return ", ".join(parts)


@staff_page
def playbook_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = []
    for pb in selectors.playbooks(membership.org):
        versions = list(pb.versions.all())
        latest = versions[0] if versions else None
        rows.append(
            {
                "playbook": pb,
                "latest": latest,
                "versions": len(versions),
                "fee_limited": fee_limited(latest.spec) if latest else [],
            }
        )
    return render(
        request,
        "web/playbooks/list.html",
        {
            "membership": membership,
            "rows": rows,
            "can_import": can(actor_of(request, membership), "playbooks.import"),
        },
    )


@staff_page
def playbook_detail(request: HttpRequest, membership: Membership, slug: str) -> HttpResponse:
    playbook = selectors.get_playbook(membership.org, slug)
    versions = list(playbook.versions.order_by("-version").select_related("created_by"))
    if not versions:
        raise NotFound(f"Playbook '{slug}' has no version.")
    wanted = request.GET.get("version")
    version = next((v for v in versions if str(v.version) == wanted), versions[0])
    previous = next((v for v in versions if v.version < version.version), None)
    spec = version.spec
    phases: dict[str, list[StepSpec]] = {}
    for step in spec.steps:
        phases.setdefault(step.phase, []).append(step)
    return render(
        request,
        "web/playbooks/detail.html",
        {
            "membership": membership,
            "playbook": playbook,
            "versions": versions,
            "version": version,
            "previous": previous,
            "spec": spec,
            "phases": phases,
            "seeds": {k.replace("_", " "): v for k, v in spec.seeds.items() if v},
            "fee_limited": fee_limited(spec),
            "titles": {s.key: s.title for s in spec.steps},
            "can_import": can(actor_of(request, membership), "playbooks.import"),
        },
    )


@staff_page
def playbook_diff(
    request: HttpRequest, membership: Membership, slug: str, version: int
) -> HttpResponse:
    new = selectors.get_version(membership.org, slug, version)
    previous = (
        PlaybookVersion.objects.filter(playbook=new.playbook, version__lt=new.version)
        .order_by("-version")
        .first()
    )
    context: dict[str, Any] = {
        "membership": membership,
        "playbook": new.playbook,
        "new": new,
        "old": previous,
    }
    if previous is not None:
        context["changes"] = step_changes(previous, new)
        context["lines"] = diff_lines(previous, new)
    return render(request, "web/playbooks/diff.html", context)


# The role is checked before the file is read (web/uploads.py).
@takes_files(members_who_may("playbooks.import", refusal=UPLOAD_REFUSED))
@staff_page
def playbook_upload(request: HttpRequest, membership: Membership) -> HttpResponse:
    actor = actor_of(request, membership)
    if not can(actor, "playbooks.import"):
        return forbidden(request, UPLOAD_REFUSED.format(role=membership.role), membership)
    context: dict[str, Any] = {"membership": membership, "source": "", "errors": []}
    if request.method != "POST":
        base = request.GET.get("from")
        if base:
            context["source"] = selectors.get_version(membership.org, base).source
        return render(request, "web/playbooks/upload.html", context)
    upload = request.FILES.get("file")
    source: str | bytes = upload.read() if upload else request.POST.get("source", "")
    if isinstance(source, str):
        source = source.replace("\r\n", "\n")
    text = source.decode("utf-8", errors="replace") if isinstance(source, bytes) else source
    context["source"] = text
    if not text.strip():
        context["errors"] = [
            {"line": None, "path": "", "message": "Paste the YAML or choose a file."}
        ]
        return render(request, "web/playbooks/upload.html", context, status=422)
    try:
        version = import_playbook(actor=actor, source=source)
    except PlaybookInvalid as exc:
        error_lines = {e.line for e in exc.errors if e.line}
        context["errors"] = exc.errors
        context["numbered"] = [
            (n, line, n in error_lines) for n, line in enumerate(text.splitlines(), start=1)
        ]
        return render(request, "web/playbooks/upload.html", context, status=422)
    if version.version > 1:
        return redirect(reverse("web:playbook-diff", args=[version.playbook.slug, version.version]))
    return redirect(reverse("web:playbook-detail", args=[version.playbook.slug]))
