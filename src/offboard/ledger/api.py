"""API for the organization's ledger: checkpoints, proofs, entries and keys (all scoped)."""

import base64
import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from offboard.core.api import actor_of
from offboard.core.errors import NotFound, ValidationFailed
from offboard.core.schemas import error_responses
from offboard.core.scopes import scope
from offboard.ledger import selectors, services, store
from offboard.ledger.models import Checkpoint
from offboard.ledger.tlogproof import encode_tlog_proof

router = Router(tags=["ledger"])


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class TimestampOut(Schema):
    tsa_url: str
    status: str
    gen_time: dt.datetime | None
    attempts: int


class CheckpointOut(Schema):
    size: int = Field(description="Number of events the checkpoint covers.")
    root: str = Field(description="Merkle tree root, base64.")
    signed_note: str = Field(description="The C2SP signed-note checkpoint, exactly as signed.")
    key_id: str
    verifier_key: str = Field(description="The note verifier key that checks the signature.")
    reason: str
    created_at: dt.datetime
    timestamps: list[TimestampOut]


def checkpoint_out(cp: Checkpoint) -> dict[str, Any]:
    return {
        "size": cp.size,
        "root": b64(bytes(cp.root)),
        "signed_note": cp.signed_note,
        "key_id": cp.key.key_id,
        "verifier_key": cp.key.verifier_key,
        "reason": cp.reason,
        "created_at": cp.created_at,
        "timestamps": [
            {
                "tsa_url": t.tsa_url,
                "status": t.status,
                "gen_time": t.gen_time,
                "attempts": t.attempts,
            }
            for t in cp.timestamps.all()
        ],
    }


@router.get(
    "/checkpoint",
    response={200: CheckpointOut, **error_responses(404)},
    summary="The latest signed checkpoint",
)
def latest_checkpoint(request: HttpRequest) -> Any:
    return checkpoint_out(selectors.latest_checkpoint(actor_of(request).org))


@router.post(
    "/checkpoints",
    response={201: CheckpointOut, **error_responses(403, 429)},
    summary="Sign a checkpoint of the log as it stands now (admins)",
    description="Refused with 429 and `Retry-After` while the log has not grown since the "
    "latest checkpoint and that one is younger than OFFBOARD_CHECKPOINT_REQUEST_INTERVAL "
    "seconds (60 by default): it already covers every event.",
)
@scope("ledger:write")
def create_checkpoint(request: HttpRequest) -> Any:
    cp = services.issue_checkpoint(actor=actor_of(request))
    return Status(201, checkpoint_out(selectors.latest_checkpoint(cp.org, size=cp.size)))


class InclusionOut(Schema):
    index: int
    size: int
    leaf_hash: str = Field(description="SHA-256(0x00 ‖ event body), base64.")
    hashes: list[str] = Field(description="RFC 9162 inclusion proof, base64, leaf to root.")
    root: str
    tlog_proof: str | None = Field(
        description="C2SP tlog-proof@v1 text against the signed checkpoint of this size, when one exists."
    )


class InclusionQuery(Schema):
    index: int = Field(ge=0)
    size: int | None = Field(None, ge=1, description="Tree size; default: the latest checkpoint's.")


@router.get(
    "/proof/inclusion",
    response={200: InclusionOut, **error_responses(404, 422)},
    summary="Inclusion proof of one event in a tree of a given size",
)
def inclusion(request: HttpRequest, query: Query[InclusionQuery]) -> Any:
    org = actor_of(request).org
    size = query.size if query.size is not None else selectors.latest_checkpoint(org).size
    if query.index >= size:
        raise ValidationFailed({"index": [f"must be below the tree size {size}"]})
    try:
        hashes = store.inclusion_proof(org, query.index, size)
    except store.ProofError as exc:
        raise NotFound(f"No such proof: {exc}.") from None
    entry = selectors.get_entry(org, query.index)
    try:
        cp: Checkpoint | None = selectors.latest_checkpoint(org, size=size)
    except NotFound:
        cp = None
    return {
        "index": query.index,
        "size": size,
        "leaf_hash": b64(bytes(entry.leaf_hash)),
        "hashes": [b64(h) for h in hashes],
        "root": b64(store.root(org, size)),
        "tlog_proof": encode_tlog_proof(query.index, hashes, cp.signed_note) if cp else None,
    }


class ConsistencyOut(Schema):
    old_size: int = Field(alias="from")
    new_size: int = Field(alias="to")
    old_root: str
    new_root: str
    hashes: list[str] = Field(description="RFC 9162 consistency proof, base64.")


class ConsistencyQuery(Schema):
    old_size: int = Field(alias="from", ge=0)
    new_size: int = Field(alias="to", ge=1)


@router.get(
    "/proof/consistency",
    response={200: ConsistencyOut, **error_responses(404, 422)},
    summary="Consistency proof between two tree sizes",
    by_alias=True,
)
def consistency(request: HttpRequest, query: Query[ConsistencyQuery]) -> Any:
    org = actor_of(request).org
    if query.old_size > query.new_size:
        raise ValidationFailed({"from": [f"must not exceed 'to' ({query.new_size})"]})
    try:
        hashes = store.consistency_proof(org, query.old_size, query.new_size)
    except store.ProofError as exc:
        raise NotFound(f"No such proof: {exc}.") from None
    return {
        "from": query.old_size,
        "to": query.new_size,
        "old_root": b64(store.root(org, query.old_size)),
        "new_root": b64(store.root(org, query.new_size)),
        "hashes": [b64(h) for h in hashes],
    }


class EntryOut(Schema):
    index: int
    type: str
    at: dt.datetime
    case: str | None
    redacted: bool
    leaf_hash: str = Field(description="SHA-256(0x00 ‖ body), hex.")
    body: str = Field(
        description="The exact leaf bytes (canonical JSON), base64; empty when redacted."
    )
    event: dict[str, Any] = Field(description="The body, parsed.")


@router.get(
    "/entries/{index}",
    response={200: EntryOut, **error_responses(404)},
    summary="One event of the ledger, with its exact bytes",
)
def entry(request: HttpRequest, index: int) -> Any:
    e = selectors.get_entry(actor_of(request).org, index)
    return {
        "index": e.index,
        "type": e.type,
        "at": e.at,
        "case": e.case_ref or None,
        "redacted": e.redacted,
        "leaf_hash": bytes(e.leaf_hash).hex(),
        "body": b64(bytes(e.body)),
        "event": e.event,
    }


class KeyOut(Schema):
    key_id: str
    verifier_key: str
    created_at: dt.datetime
    retired_at: dt.datetime | None


@router.get("/keys", response={200: list[KeyOut]}, summary="Signing keys, current and retired")
def keys(request: HttpRequest) -> Any:
    return list(selectors.signing_keys(actor_of(request).org))
