"""`GET /api/v1/cases/{ref}/evidence-pack`: the case's evidence pack, streamed as a zip."""

from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router

from offboard.cases.selectors import get_case
from offboard.core.api import actor_of
from offboard.core.schemas import error_responses
from offboard.core.scopes import scope
from offboard.packs.export import PackPlan, iter_pack, start_export

router = Router(tags=["evidence"])


def pack_response(plan: PackPlan) -> StreamingHttpResponse:
    """The zip streamed as an attachment, for the API and the web page alike."""
    response = StreamingHttpResponse(iter_pack(plan), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{plan.filename}"'
    response["X-Offboard-Checkpoint-Size"] = str(plan.checkpoint.size)
    return response


@router.get(
    "/{ref}/evidence-pack",
    response={200: None, **error_responses(403, 404, 409)},
    summary="Download the case's evidence pack (zipped BagIt bag)",
    description="Auditors, managers and admins. The pack holds every event of the case with "
    "its inclusion proof against a signed checkpoint, the timestamps, keys, evidence files, "
    "case state and certificate; check it offline with `offboard verify`. Recorded as a "
    "`case.exported` event. Open cases give an interim pack. See docs/evidence-pack.md.",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The pack, streamed as an attachment `<ref>-evidence-pack.zip`.",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
@scope("exports")
def evidence_pack(request: HttpRequest, ref: str) -> Any:
    actor = actor_of(request)
    return pack_response(start_export(actor=actor, case=get_case(actor.org, ref)))
