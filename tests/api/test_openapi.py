"""The OpenAPI document and the interactive docs."""

import json
from typing import Any

from django.test import Client
from openapi_spec_validator import validate

from offboard.cases.registers import REGISTERS


def _raw() -> bytes:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.content


def _schema() -> dict:
    return json.loads(_raw())


def test_no_object_of_the_document_repeats_a_key(db):
    repeated: list[str] = []

    def keep_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        repeated.extend(sorted({key for key in keys if keys.count(key) > 1}))
        return dict(pairs)

    # The parsed dict keeps one of two equal keys; the docs page's parser refuses the text.
    json.loads(_raw(), object_pairs_hook=keep_pairs)

    assert repeated == []


def test_the_document_is_valid_openapi(db):
    validate(_schema())


def test_downloads_document_their_bytes_once_under_200(db):
    paths = _schema()["paths"]

    content = paths["/api/v1/evidence/{sha256}/content"]["get"]["responses"]["200"]
    pack = paths["/api/v1/cases/{ref}/evidence-pack"]["get"]["responses"]["200"]

    assert list(content["content"]) == ["application/octet-stream"]
    assert list(pack["content"]) == ["application/zip"]


def test_the_openapi_document_lists_the_case_endpoints(db):
    schema = _schema()

    paths = schema["paths"]
    assert schema["openapi"].startswith("3.")
    for path, method in [
        ("/api/v1/cases", "get"),
        ("/api/v1/cases", "post"),
        ("/api/v1/cases/preview", "post"),
        ("/api/v1/cases/{ref}", "get"),
        ("/api/v1/cases/{ref}", "patch"),
        ("/api/v1/cases/{ref}/close", "post"),
        ("/api/v1/cases/{ref}/approvals", "post"),
        ("/api/v1/cases/{ref}/steps/{key}/complete", "post"),
        ("/api/v1/cases/{ref}/waivers", "post"),
        ("/api/v1/cases/{ref}/events", "get"),
    ]:
        assert method in paths[path], (method, path)
    for key in REGISTERS:
        segment = key.replace("_", "-")
        assert set(paths[f"/api/v1/cases/{{ref}}/{segment}"]) == {"get", "post"}
        assert set(paths[f"/api/v1/cases/{{ref}}/{segment}/{{item_id}}"]) == {"get", "patch"}


def test_every_register_field_and_enum_is_documented(db):
    components = _schema()["components"]["schemas"]

    grant = components["AccessGrantCreateIn"]
    assert set(grant["required"]) == {"direction", "system", "planned_action"}
    assert grant["properties"]["planned_action"]["enum"] == ["revoke", "transfer", "keep"]
    assert grant["additionalProperties"] is False
    for key, spec in REGISTERS.items():
        name = "".join(p.capitalize() for p in spec.event_prefix.split("_"))
        for schema in (f"{name}CreateIn", f"{name}UpdateIn", f"{name}Out"):
            documented = set(components[schema]["properties"])
            assert {f.name for f in spec.fields} <= documented, (key, schema)
        assert "required" not in components[f"{name}UpdateIn"]


def test_operations_document_their_errors_and_security(db):
    schema = _schema()

    close = schema["paths"]["/api/v1/cases/{ref}/close"]["post"]
    assert {"401", "403", "404", "409"} <= set(close["responses"])
    assert close["security"] == [{"BearerToken": ["cases:write"]}]
    assert "ErrorOut" in schema["components"]["schemas"]


def test_the_interactive_docs_are_served(db):
    response = Client().get("/api/v1/docs")

    assert response.status_code == 200
    assert b"openapi.json" in response.content
