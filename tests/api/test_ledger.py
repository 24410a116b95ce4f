"""The ledger API: checkpoints, proofs and entries of the caller's organization only."""

import base64

import pytest
from django.db import transaction

from offboard.ledger import merkle, services
from offboard.ledger.models import LedgerEntry
from offboard.ledger.note import Checkpoint as CheckpointBody
from offboard.ledger.note import Verifier, open_note
from offboard.ledger.tlogproof import parse_tlog_proof
from tests.api.conftest import token_for


def b64d(s):
    return base64.b64decode(s)


@pytest.fixture
def erin_api(cast, client):
    token = token_for(cast["erin"])  # the auditor: read-only, may still check the ledger
    return lambda method, url: getattr(client, method)(
        f"/api/v1{url}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


@pytest.fixture
def sign(cast, client):
    """An admin asks for a checkpoint (the only role that may: each queues TSA requests)."""
    token = token_for(cast["alice"])
    return lambda: client.post("/api/v1/ledger/checkpoints", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_without_a_checkpoint_the_latest_is_not_found_with_guidance(case, erin_api):
    response = erin_api("get", "/ledger/checkpoint")
    assert response.status_code == 404
    assert "POST /api/v1/ledger/checkpoints" in response.json()["error"]["message"]


def test_an_inclusion_proof_leads_to_the_signed_checkpoint(case, erin_api, sign):
    created = sign()
    assert created.status_code == 201
    cp = erin_api("get", "/ledger/checkpoint").json()
    verifier = Verifier.from_verifier_key(cp["verifier_key"])
    body = CheckpointBody.parse(open_note(cp["signed_note"], [verifier]).text)
    assert body.size == cp["size"] and body.root == b64d(cp["root"])

    index = LedgerEntry.objects.get(case=case, type="case.opened").index
    proof = erin_api("get", f"/ledger/proof/inclusion?index={index}").json()
    entry = erin_api("get", f"/ledger/entries/{index}").json()
    leaf = merkle.leaf_hash(b64d(entry["body"]))
    assert leaf == b64d(proof["leaf_hash"]) and entry["leaf_hash"] == leaf.hex()
    assert merkle.verify_inclusion(
        leaf, index, proof["size"], [b64d(h) for h in proof["hashes"]], body.root
    )
    parsed = parse_tlog_proof(proof["tlog_proof"])
    assert parsed.index == index and parsed.checkpoint_text == cp["signed_note"]
    assert entry["event"]["type"] == "case.opened" and entry["case"] == case.ref


def test_a_consistency_proof_between_two_sizes_verifies(case, cast, erin_api, sign):
    with transaction.atomic():
        old = services.issue_checkpoint(actor=cast["alice"])
    from tests.factories import settle_everything

    settle_everything(case, cast)
    new = sign().json()
    response = erin_api("get", f"/ledger/proof/consistency?from={old.size}&to={new['size']}")
    proof = response.json()
    assert response.status_code == 200
    assert merkle.verify_consistency(
        old.size,
        new["size"],
        bytes(old.root),
        b64d(new["root"]),
        [b64d(h) for h in proof["hashes"]],
    )


def test_proofs_beyond_the_log_are_refused(case, erin_api):
    n = LedgerEntry.objects.filter(org=case.org).count()
    assert erin_api("get", f"/ledger/proof/inclusion?index=0&size={n + 5}").status_code == 404
    bad = erin_api("get", f"/ledger/proof/inclusion?index={n}&size={n}")
    assert bad.status_code == 422 and "index" in bad.json()["error"]["details"]["fields"]
    assert erin_api("get", f"/ledger/proof/consistency?from={n}&to=1").status_code == 422
    assert erin_api("get", f"/ledger/entries/{n + 100}").status_code == 404


def test_keys_list_the_current_and_retired_ones(case, cast, erin_api):
    services.rotate_signing_key(actor=cast["alice"])
    keys = erin_api("get", "/ledger/keys").json()
    assert len(keys) == 2 and keys[0]["retired_at"] is not None and keys[1]["retired_at"] is None
