"""A refused request that carries a file writes nothing: no evidence row, no link to one, no
ledger entry, no file under the storage root (security review, issue 11, item 2).

One row per endpoint that takes files — every staff view marked `takes_files` and every API
operation with a multipart body; a new one without a row fails the suite. Each row is sent
its file by every kind of refusal it has (a role that may not act, no session or token,
another organization, invalid input, a file past the limit, a closed case) and, last, by
someone who may: that request must write, so the rows cannot pass by sending nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from offboard.evidence.models import EvidenceFile
from offboard.ledger.models import LedgerEntry
from tests.api.conftest import token_for

LIMIT = 64 * 1024  # OFFBOARD_MAX_UPLOAD_BYTES in these tests
PDF = b"%PDF-1.4 signed statement\n"


@dataclass
class Row:
    """An endpoint that takes files: where to send one, with what, and who is refused."""

    name: str  # the URL name (web) or "METHOD /path" as the OpenAPI document has it (API)
    url: Callable[[Any], str]
    file_field: str
    data: Callable[[Any], dict[str, Any]] = lambda s: {}
    api: bool = False
    json: bool = False  # answers {"error"} (the drop zone)
    denied: tuple[str, ...] = ("erin",)  # members whose role may not do this: 403
    foreign: bool = True  # names an object: another organization's member gets a 404
    invalid: Callable[[Any], dict[str, Any]] | None = None  # fields that are a 422
    empty_is_invalid: bool = True  # an empty file is a 422
    closed: int | None = 409  # the answer on a closed case (None: allowed there, or no case)
    allowed_on: str = "open"  # the case on which the last, allowed request writes
    extra: dict[str, Any] = field(default_factory=dict)


def _ws(tail: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda s: f"/cases/{s.case.ref}/{tail(s)}"


ROWS = [
    Row(
        "web:ws-upload",
        _ws(lambda s: "evidence/upload"),
        "file",
        json=True,
        closed=None,  # a closed case's addenda take files
    ),
    Row(
        "web:ws-step",
        _ws(lambda s: f"steps/{s.step.key}/complete"),
        "evidence_file",
        denied=("erin", "dave"),  # finance works only its own steps
        invalid=lambda s: {"link": "not a web address"},
    ),
    Row(
        "web:ws-register-add",
        _ws(lambda s: "registers/deliverables/add"),
        "evidence_file",
        data=lambda s: {"title": "Final campaign report"},
        denied=("erin", "dave"),
        invalid=lambda s: {"title": ""},
    ),
    Row(
        "web:ws-register-item",
        _ws(lambda s: f"registers/access_grants/{s.grant.pk}/revoke"),
        "evidence_file",
        denied=("erin", "dave"),
        invalid=lambda s: {"actioned_at": "yesterday"},
    ),
    Row(
        "web:ws-waiver-add",
        _ws(lambda s: "waivers/add"),
        "evidence_file",
        data=lambda s: {
            "target": f"access_grant:{s.grant.pk}",
            "justification": "The client keeps read access for the audit",
            "expires_at": "2031-01-31",
        },
        denied=("erin", "oscar", "dave"),
        invalid=lambda s: {"target": ""},
    ),
    Row(
        "web:ws-addendum",
        _ws(lambda s: "addenda"),
        "evidence_file",
        data=lambda s: {"text": "The client confirmed deletion in writing."},
        invalid=lambda s: {"text": ""},
        closed=None,  # the one write a closed case takes; on an open case it is the 409
        allowed_on="closed",
    ),
    Row(
        "web:contract-document-upload",
        lambda s: f"/clients/{s.client.pk}/contracts/{s.contract.pk}/documents/",
        "document",
        denied=("erin", "oscar", "dave"),
        closed=None,
    ),
    Row(
        "web:playbook-upload",
        lambda s: "/playbooks/upload/",
        "file",
        denied=("erin", "oscar", "dave"),
        foreign=False,
        invalid=lambda s: {},  # the file below is not a playbook
        empty_is_invalid=True,
        closed=None,
        extra={"invalid_file": b"steps: [unclosed\n", "valid_file": "playbook"},
    ),
    Row(
        "web:client-import",
        lambda s: "/clients/import/",
        "file",
        data=lambda s: {"confirm": "import"},  # imported at once, without the preview
        denied=("bob", "erin", "oscar", "dave"),  # admins only
        foreign=False,
        invalid=lambda s: {},  # the file is not a clients CSV
        closed=None,
        extra={"valid_file": "clients_csv"},
    ),
    Row(
        "POST /api/v1/evidence",
        lambda s: "/api/v1/evidence",
        "file",
        api=True,
        foreign=False,
        closed=None,
    ),
    Row(
        "POST /api/v1/clients/import",
        lambda s: "/api/v1/clients/import",
        "file",
        api=True,
        denied=("bob", "erin", "oscar", "dave"),  # admins only
        foreign=False,
        invalid=lambda s: {},  # the file is not a clients CSV
        closed=None,
        extra={"valid_file": "clients_csv"},
    ),
    Row(
        "POST /api/v1/clients/contracts/{contract_id}/documents",
        lambda s: f"/api/v1/clients/contracts/{s.contract.pk}/documents",
        "file",
        api=True,
        denied=("erin", "oscar", "dave"),
        closed=None,
    ),
]


def _web_views_that_take_files() -> set[str]:
    found = set()

    def walk(patterns: list[Any], namespace: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, f"{namespace}{p.namespace}:" if p.namespace else namespace)
            elif isinstance(p, URLPattern) and getattr(p.callback, "files_gate", None):
                found.add(f"{namespace}{p.name}")

    walk(get_resolver().url_patterns, "")
    return found


def _api_operations_that_take_files() -> set[str]:
    schema = Client().get("/api/v1/openapi.json").json()
    return {
        f"{method.upper()} /api/v1{path.removeprefix('/api/v1')}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "multipart/form-data" in operation.get("requestBody", {}).get("content", {})
    }


def test_every_endpoint_that_takes_files_has_a_row(db):
    assert _web_views_that_take_files() | _api_operations_that_take_files() == {
        r.name for r in ROWS
    }


# --- what "nothing written" means ----------------------------------------------------------


def _evidence_links() -> int:
    """Rows linking anything to an evidence file (steps, register items, waivers, …)."""
    total = 0
    for model in apps.get_models():
        for m2m in model._meta.many_to_many:
            if m2m.related_model is EvidenceFile:
                total += m2m.remote_field.through.objects.count()
    return total


def _written(root: Path) -> tuple[int, int, int, list[str]]:
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return EvidenceFile.objects.count(), _evidence_links(), LedgerEntry.objects.count(), files


# --- sending ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _small_uploads(settings: Any) -> None:
    settings.OFFBOARD_MAX_UPLOAD_BYTES = LIMIT


@pytest.fixture
def root(settings: Any) -> Path:
    path = Path(settings.MEDIA_ROOT)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def send(cast: dict[str, Any], mallory: Any) -> Callable[..., Any]:
    """`send(row, scene, who, content=…, fields=…)`: one multipart request as `who` (a member
    of the cast, "mallory", or None for nobody), made up front so tokens and sessions are not
    counted as writes."""
    people = {**{n: a for n, a in cast.items()}, "mallory": mallory}
    tokens = {name: token_for(actor) for name, actor in people.items()}
    sessions = {}
    for name, actor in people.items():
        sessions[name] = Client()
        sessions[name].force_login(actor.user)

    def _send(
        row: Row,
        scene: Any,
        who: str | None,
        *,
        content: bytes = PDF,
        fields: dict[str, Any] | None = None,
    ) -> Any:
        data = {**row.data(scene), **(fields or {})}
        name = "statement.yaml" if row.name == "web:playbook-upload" else "statement.pdf"
        data[row.file_field] = SimpleUploadedFile(name, content)
        headers: dict[str, str] = {}
        if row.api:
            web = Client()
            if who is not None:
                headers["HTTP_AUTHORIZATION"] = f"Bearer {tokens[who]}"
        else:
            web = sessions[who] if who is not None else Client()
            if row.json:
                headers["HTTP_ACCEPT"] = "application/json"
        return web.post(row.url(scene), data, **headers)

    return _send


def _scene(case: Any) -> SimpleNamespace:
    """What the rows' URLs name in `case`: a step finance may not work, a grant to revoke."""
    step = case.steps.get(key="confirm_notice")
    grant = case.access_grants.filter(planned_action="revoke").order_by("pk").first()
    contract = case.contracts.get()
    return SimpleNamespace(
        case=case, step=step, grant=grant, contract=contract, client=contract.client
    )


@pytest.fixture
def open_scene(case: Any) -> SimpleNamespace:
    return _scene(case)


@pytest.fixture
def closed_scene(case: Any, cast: dict[str, Any]) -> SimpleNamespace:
    from tests.factories import close_with_approvals, settle_everything

    return _scene(close_with_approvals(settle_everything(case, cast), cast))


def _refused(
    send: Callable[..., Any],
    root: Path,
    row: Row,
    scene: Any,
    who: str | None,
    status: int,
    **kwargs: Any,
) -> None:
    before = _written(root)
    response = send(row, scene, who, **kwargs)
    assert response.status_code == status, (row.name, who, kwargs, response.content[:400])
    assert _written(root) == before, (row.name, who, kwargs, "wrote something")


def _anonymous_status(row: Row) -> int:
    return 401 if row.api or row.json else 302


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_refused_requests_with_a_file_write_nothing(send, root, open_scene, row):
    scene = open_scene
    for who in row.denied:
        _refused(send, root, row, scene, who, 403)
    _refused(send, root, row, scene, None, _anonymous_status(row))
    if row.foreign:
        _refused(send, root, row, scene, "mallory", 404)
    _refused(send, root, row, scene, "alice", 413, content=b"x" * (LIMIT + 1))
    if row.allowed_on == "closed":
        _refused(send, root, row, scene, "alice", 409)  # an addendum to an open case
        return
    _invalid_input_writes_nothing(send, root, row, scene)
    _allowed_request_writes(send, root, row, scene)


def _invalid_input_writes_nothing(
    send: Callable[..., Any], root: Path, row: Row, scene: Any
) -> None:
    if row.invalid is not None:
        content = row.extra.get("invalid_file", PDF)
        _refused(send, root, row, scene, "alice", 422, content=content, fields=row.invalid(scene))
    if row.empty_is_invalid:
        _refused(send, root, row, scene, "alice", 422, content=b"")


def _allowed_request_writes(send: Callable[..., Any], root: Path, row: Row, scene: Any) -> None:
    """The same request from someone who may, with valid input, is answered and written: the
    refusals above were refusals, not requests that could never have written."""
    before = _written(root)
    content = PDF
    if row.extra.get("valid_file") == "playbook":
        from tests.web.test_playbooks_pages import consulting_v2

        content = consulting_v2().encode()
    elif row.extra.get("valid_file") == "clients_csv":
        from offboard.clients.csvfile import template_csv

        content = template_csv().encode()
    response = send(row, scene, "alice", content=content)
    assert response.status_code in (200, 201, 302), (row.name, response.content[:400])
    assert _written(root) != before
    if "valid_file" not in row.extra:  # a playbook, a clients file is not an evidence file
        assert EvidenceFile.objects.count() == before[0] + 1
        assert len(_written(root)[3]) == len(before[3]) + 1


WORKSPACE = [r for r in ROWS if r.name.startswith("web:ws-")]


def test_on_a_closed_case_refused_requests_with_a_file_write_nothing(send, root, closed_scene):
    for row in WORKSPACE:
        if row.closed is not None:
            _refused(send, root, row, closed_scene, "alice", row.closed)
    addendum = next(r for r in ROWS if r.name == "web:ws-addendum")
    _refused(send, root, addendum, closed_scene, "erin", 403)
    _invalid_input_writes_nothing(send, root, addendum, closed_scene)
    _allowed_request_writes(send, root, addendum, closed_scene)


def test_a_file_that_cannot_be_stored_undoes_the_action_and_the_files_stored_before_it(
    cast, case, root, monkeypatch
):
    """The bytes are written last, still inside the action's transaction: if the second of
    two files cannot be stored, the first is removed and the action rolled back."""
    from offboard.evidence import storage

    stored: list[str] = []
    real_put = storage.put

    def put(name: str, spooled: Any) -> bool:
        if stored:
            raise OSError("No space left on device")
        stored.append(name)
        return real_put(name, spooled)

    monkeypatch.setattr(storage, "put", put)
    web = Client(raise_request_exception=False)
    web.force_login(cast["alice"].user)
    step = case.steps.get(key="confirm_notice")
    before = _written(root)

    response = web.post(
        f"/cases/{case.ref}/steps/{step.key}/complete",
        {
            "evidence_file": [
                SimpleUploadedFile("notice.pdf", PDF),
                SimpleUploadedFile("reply.pdf", b"%PDF-1.4 our reply\n"),
            ]
        },
    )

    assert response.status_code == 500
    assert len(stored) == 1  # the first file was written, then removed
    assert _written(root) == before
    step.refresh_from_db()
    assert step.status == "pending"
