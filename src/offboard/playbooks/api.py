"""Playbooks: list, read each immutable version, validate and import YAML."""

import datetime as dt
import json
from typing import Any

import pydantic
from django.http import HttpRequest
from ninja import Field, Path, Router, Schema, Status

from offboard.core.api import actor_of
from offboard.core.errors import ValidationFailed
from offboard.core.inputs import problems
from offboard.core.schemas import Input, UserRef, error_responses, paginated
from offboard.core.scopes import scope
from offboard.playbooks import selectors, services
from offboard.playbooks.spec import PlaybookInvalid, PlaybookSpec, parse_playbook

router = Router(tags=["playbooks"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")

SOURCE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The playbook as YAML text (`Content-Type: application/yaml` or "
        '`text/plain`), or JSON `{"source": "<yaml text>"}`.',
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"source": {"type": "string", "description": "YAML text."}},
                    "required": ["source"],
                    "additionalProperties": False,
                }
            },
        },
    }
}


class VersionSummaryOut(Schema):
    version: int
    sha256: str = Field(description="SHA-256 of the exact source text; cases pin it.")
    created_at: dt.datetime
    created_by: UserRef | None


class PlaybookOut(Schema):
    slug: str
    name: str
    service_type: str
    builtin: bool = Field(description="Shipped with Offboard (may still be re-imported).")
    latest_version: int | None

    @staticmethod
    def resolve_latest_version(obj: Any) -> int | None:
        versions = list(obj.versions.all())  # prefetched newest first by the selector
        return max((v.version for v in versions), default=None)


class PlaybookDetailOut(PlaybookOut):
    versions: list[VersionSummaryOut] = Field(description="Newest first.")

    @staticmethod
    def resolve_versions(obj: Any) -> list[Any]:
        return list(obj.versions.select_related("created_by").order_by("-version"))


class PlaybookStepOut(Schema):
    key: str
    phase: str
    title: str
    guidance: str
    owner_role: str
    due_anchor: str = Field(
        description="trigger, notice or end: the date the due offset counts from."
    )
    due_offset_days: int
    required: bool
    evidence: list[str] = Field(description="Kinds of evidence that complete the step (any one).")
    depends_on: list[str]
    category: str
    fee_types: list[str] | None = Field(description="Fee types the step applies to; null for all.")
    about: list[dict[str, Any]] = Field(
        description="The register items the step is about (given, or from its category): "
        '`{"register": ..., <field>: [values]}`; settling them all completes it.'
    )

    @staticmethod
    def resolve_about(obj: Any) -> list[dict[str, Any]]:
        return [selector.as_dict() for selector in obj.about]


class ApprovalPolicyOut(Schema):
    min_approvers: int
    roles: list[str]


class SpecOut(Schema):
    slug: str
    name: str
    service_type: str
    description: str
    fee_types: list[str]
    approval_policy: ApprovalPolicyOut
    steps: list[PlaybookStepOut]
    seeds: dict[str, list[dict[str, Any]]] = Field(
        description="Register items every case from this playbook starts with."
    )


class VersionOut(VersionSummaryOut):
    slug: str
    name: str
    source: str = Field(description="The YAML text exactly as imported.")
    spec: SpecOut

    @staticmethod
    def resolve_slug(obj: Any) -> str:
        return str(obj.playbook.slug)

    @staticmethod
    def resolve_name(obj: Any) -> str:
        return str(obj.playbook.name)

    @staticmethod
    def resolve_spec(obj: Any) -> dict[str, Any]:
        return _spec_out(obj.spec)


class ValidationOut(Schema):
    valid: bool
    spec: SpecOut


class SourceIn(Input):
    source: str = Field(description="Playbook YAML text.")


def _spec_out(spec: PlaybookSpec) -> dict[str, Any]:
    return {
        "slug": spec.slug,
        "name": spec.name,
        "service_type": spec.service_type,
        "description": spec.description,
        "fee_types": list(spec.fee_types),
        "approval_policy": spec.approval_policy,
        "steps": list(spec.steps),
        "seeds": {k: list(v) for k, v in spec.seeds.items()},
    }


def _source(request: HttpRequest) -> str:
    """The YAML text from the body: raw YAML/text, or JSON `{"source": ...}`; text no
    database keeps (a NUL) is refused like in any other field (core/inputs.py)."""
    source = _sent_source(request)
    found = [problem for _, problem in problems(source, "source")]
    if found:
        raise ValidationFailed({"source": found})
    return source


def _sent_source(request: HttpRequest) -> str:
    content_type = request.content_type or ""
    if content_type == "application/json":
        try:
            return SourceIn.model_validate(json.loads(request.body or b"null")).source
        except json.JSONDecodeError as exc:
            raise ValidationFailed({"body": [f"is not valid JSON: {exc.msg}"]}) from None
        except pydantic.ValidationError as exc:
            fields: dict[str, list[str]] = {}
            for err in exc.errors():
                fields.setdefault(".".join(str(p) for p in err["loc"]) or "body", []).append(
                    err["msg"]
                )
            raise ValidationFailed(fields) from None
    if content_type not in YAML_TYPES:
        raise ValidationFailed(
            {
                "body": [
                    f'send YAML as application/yaml or text/plain, or JSON {{"source": ...}}; '
                    f"got {content_type or 'no content type'}"
                ]
            }
        )
    try:
        return request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed({"source": ["is not UTF-8 text"]}) from None


def _invalid(exc: PlaybookInvalid) -> ValidationFailed:
    """A playbook's problems as a 422: each with its line and path, nothing imported."""
    failed = ValidationFailed(
        {"source": [str(e) for e in exc.errors]},
        message=f"The playbook has {len(exc.errors)} problem{'s' if len(exc.errors) != 1 else ''}: "
        + "; ".join(str(e) for e in exc.errors[:5])
        + ("; …" if len(exc.errors) > 5 else ""),
    )
    failed.code = "playbook_invalid"
    failed.details["errors"] = [
        {"line": e.line, "path": e.path, "message": e.message} for e in exc.errors
    ]
    return failed


@router.get("", response={200: list[PlaybookOut], **error_responses()})
@paginated
def list_playbooks(request: HttpRequest) -> Any:
    return selectors.playbooks(actor_of(request).org)


@router.post(
    "/validate",
    response={200: ValidationOut, **error_responses(422)},
    summary="Check a playbook without importing it",
    openapi_extra=SOURCE_BODY,
    description="422 with `details.errors` = [{line, path, message}] when it is invalid.",
)
@scope("read")
def validate_playbook(request: HttpRequest) -> Any:
    try:
        spec = parse_playbook(_source(request))
    except PlaybookInvalid as exc:
        raise _invalid(exc) from None
    return {"valid": True, "spec": _spec_out(spec)}


@router.post(
    "",
    response={201: VersionOut, **error_responses(403, 422)},
    summary="Import a playbook as a new immutable version",
    openapi_extra=SOURCE_BODY,
    description="Everything is validated first; on any error nothing is imported (422 with "
    "`details.errors`). Importing the text of the latest version again returns that version.",
)
@scope("playbooks:write")
def import_playbook(request: HttpRequest) -> Any:
    source = _source(request)
    try:
        version = services.import_playbook(actor=actor_of(request), source=source)
    except PlaybookInvalid as exc:
        raise _invalid(exc) from None
    return Status(201, version)


@router.get(
    "/{slug}",
    response={200: PlaybookDetailOut, **error_responses(404)},
    summary="A playbook and its versions",
)
def get_playbook(request: HttpRequest, slug: str) -> Any:
    return selectors.get_playbook(actor_of(request).org, slug)


@router.get(
    "/{slug}/versions/{version}",
    response={200: VersionOut, **error_responses(404)},
    summary="One version: its source text and parsed steps",
)
def get_version(request: HttpRequest, slug: str, version: int = Path(..., ge=1)) -> Any:
    return selectors.get_version(actor_of(request).org, slug, version)
