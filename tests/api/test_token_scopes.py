"""Token scopes: every operation of the OpenAPI document declares the one scope it needs, and
the API holds it to that — a token without the scope is refused with 403 `insufficient_scope`
before the view runs, a token with it is not."""

import json
import re
from typing import Any

import pytest
from django.test import Client

from offboard.core.scopes import ALL_SCOPES, SCOPES
from offboard.ledger.models import LedgerEntry
from tests.api.conftest import Api, token_for

# Not authenticated by a token: a signature under the endpoint's secret (tests/inbound/).
NO_TOKEN = {("POST", "/api/v1/inbound/{endpoint_id}/events")}


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    document = json.loads(Client().get("/api/v1/openapi.json").content)
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _dummy(path: str, operation: dict[str, Any]) -> str:
    """The path with ids that exist nowhere: the scope decision comes first either way."""
    types = {
        p["name"]: p.get("schema", {}).get("type")
        for p in operation.get("parameters", [])
        if p["in"] == "path"
    }

    def value(match: re.Match[str]) -> str:
        return "987654" if types.get(match.group(1)) == "integer" else "nothing-here"

    return re.sub(r"\{(\w+)\}", value, path).removeprefix("/api/v1")


def test_every_operation_declares_exactly_one_scope(db):
    unscoped = set()
    for method, path, operation in _operations():
        security = operation.get("security")
        if not security:
            unscoped.add((method, path))
            continue
        assert len(security) == 1, (method, path, security)
        (scheme, scopes), *_ = security[0].items()
        assert scheme == "BearerToken"
        assert len(scopes) == 1 and scopes[0] in SCOPES, (method, path, scopes)
        if method == "GET" and not path.endswith("/evidence-pack"):
            assert scopes == ["read"], (method, path)
    assert unscoped == NO_TOKEN


def test_the_security_scheme_lists_every_scope(db):
    document = json.loads(Client().get("/api/v1/openapi.json").content)

    scheme = document["components"]["securitySchemes"]["BearerToken"]

    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for name in ALL_SCOPES:
        assert f"`{name}`" in scheme["description"]


def test_every_operation_refuses_a_token_without_its_scope_and_takes_one_with_it(cast):
    # Alice is an admin: her role allows every operation, so only the scope decides.
    alice = cast["alice"]
    without = {
        s: Api(token_for(alice, f"no {s}", [x for x in ALL_SCOPES if x != s])) for s in SCOPES
    }
    only = {s: Api(token_for(alice, f"only {s}", [s])) for s in SCOPES}
    events_before = LedgerEntry.objects.count()
    checked = 0
    for method, path, operation in _operations():
        if (method, path) in NO_TOKEN:
            continue
        (needed,) = operation["security"][0]["BearerToken"]
        url = _dummy(path, operation)

        refused = without[needed].call(method, url, {})
        taken = only[needed].call(method, url, {})

        assert refused.status_code == 403, (method, path, refused.content)
        error = refused.json()["error"]
        assert error["code"] == "insufficient_scope", (method, path)
        assert f"'{needed}' scope" in error["message"]
        assert "Create a token with" in error["message"]
        assert error["details"]["scope"] == needed
        assert taken.status_code != 401, (method, path, taken.content)
        assert taken.status_code != 403 or (
            taken.json()["error"]["code"] != "insufficient_scope"
        ), (method, path, taken.content)
        checked += 1
    assert checked >= 100
    # Refused requests changed nothing; the dummy ids and empty bodies let nothing through
    # but a checkpoint, which POST /ledger/checkpoints signs without any other input.
    new_types = set(
        LedgerEntry.objects.order_by("index")[events_before:].values_list("type", flat=True)
    )
    assert new_types <= {"checkpoint.created", "ledger.checkpoint_requested"}, new_types


def test_a_read_only_token_reads_but_may_not_write(api, cast):
    reader = Api(token_for(cast["bob"], "dashboard", ["read"]))

    assert reader.get("/cases").status_code == 200
    refused = reader.post("/clients", {"name": "Contoso"})

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert "'clients:write'" in refused.json()["error"]["message"]
    assert api("bob").post("/clients", {"name": "Contoso"}).status_code == 201


def test_a_scope_never_extends_the_role(cast):
    # An auditor's token with every scope is still an auditor's: the role check still refuses.
    erin = Api(token_for(cast["erin"], "everything"))

    response = erin.post("/clients", {"name": "Contoso"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "Your role 'auditor'" in response.json()["error"]["message"]


def test_an_upload_without_the_scope_is_refused_before_its_body_is_read(cast):
    reader = Api(token_for(cast["alice"], "reader", ["read"]))

    response = reader.upload("/evidence")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert "'cases:write'" in response.json()["error"]["message"]


def test_a_token_makes_tokens_only_within_its_own_scopes(cast):
    minter = Api(token_for(cast["bob"], "minter", ["read", "tokens"]))

    wider = minter.post("/tokens", {"name": "wider", "scopes": ["read", "cases:write"]})
    inherited = minter.post("/tokens", {"name": "same"})
    narrower = minter.post("/tokens", {"name": "narrower", "scopes": ["read"]})

    assert wider.status_code == 422
    assert "cases:write" in wider.json()["error"]["details"]["fields"]["scopes"][0]
    assert inherited.status_code == 201 and inherited.json()["scopes"] == ["read", "tokens"]
    assert narrower.status_code == 201 and narrower.json()["scopes"] == ["read"]


@pytest.mark.parametrize(
    ("scopes", "problem"),
    [(["root"], "unknown"), ([], "at least one")],
)
def test_scopes_must_be_known_and_not_empty(api, scopes, problem):
    response = api("alice").post("/tokens", {"name": "x", "scopes": scopes})

    assert response.status_code == 422
    assert "scopes" in json.dumps(response.json()["error"]["details"]["fields"])
    if problem == "at least one":
        assert problem in response.json()["error"]["details"]["fields"]["scopes"][0]
