"""Evidence files: upload once, refer to by SHA-256 everywhere else, download as stored."""

from typing import Any

from django.http import FileResponse, HttpRequest
from ninja import Field, File, Router, Status, UploadedFile

from offboard.core.api import BearerToken, actor_of
from offboard.core.schemas import EvidenceRef, error_responses
from offboard.core.scopes import scope
from offboard.evidence import selectors, services
from offboard.evidence.storage import open_stored

router = Router(tags=["evidence"])


class EvidenceOut(EvidenceRef):
    uploaded_by_id: int = Field(description="User who first uploaded these bytes.")


@router.post(
    "",
    response={201: EvidenceOut, **error_responses(403, 422)},
    summary="Upload an evidence file (multipart `file`)",
    description="Stored by content hash: uploading the same bytes again returns the same "
    "file. Refer to it elsewhere by its `sha256`. A role that may not upload is refused "
    "before the body is read; files past the upload limit are a 413.",
    auth=BearerToken(uploads="evidence.upload"),
)
@scope("cases:write")
def upload(request: HttpRequest, file: UploadedFile = File(...)) -> Any:
    evidence = services.upload_evidence(actor=actor_of(request), stream=file, name=file.name or "")
    return Status(201, evidence)


@router.get("/{sha256}", response={200: EvidenceOut, **error_responses(404)})
def get_metadata(request: HttpRequest, sha256: str) -> Any:
    return selectors.get_file(actor_of(request).org, sha256.lower())


@router.get(
    "/{sha256}/content",
    response={200: None, **error_responses(404)},
    summary="Download the file's bytes",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The stored bytes, as an attachment.",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        }
    },
)
def download(request: HttpRequest, sha256: str) -> Any:
    evidence = selectors.get_file(actor_of(request).org, sha256.lower())
    stream = open_stored(evidence.storage_name, sha256=evidence.sha256)  # 503 if unavailable
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=evidence.original_name,
        content_type=evidence.media_type,
    )
    response["Content-Length"] = str(stream.size)  # a corrupted file's download ends short
    return response
