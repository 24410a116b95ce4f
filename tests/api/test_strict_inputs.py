"""Every API input is taken as JSON typed it, or refused naming the field — never altered into
shape (security review, issue 11, item 6): `false` is not 0 days, `0` is not 1970-01-01, an
amount `"0.001"` is not 0.00, and no text holds a NUL (PostgreSQL refuses it, SQLite keeps it:
the same input must get the same answer on both).

The fields come from the OpenAPI document: every field of every JSON request body, grouped by
its type, so a new operation or field is covered the day it is added. The bad values are
refused by the schema, before any view or service runs, so the objects in the URLs need not
exist; `test_valid_values_are_stored_exactly_as_sent` sends the good forms to real objects.
"""

import copy
import datetime as dt
import decimal
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from offboard.api import api as offboard_api
from offboard.core import inputs
from offboard.ledger.models import LedgerEntry
from tests.api.conftest import Api, token_for

PREFIX = "/api/v1"
DOCUMENT = offboard_api.get_openapi_schema()
SCHEMAS = DOCUMENT["components"]["schemas"]
NUL = "must not contain NUL characters"

# What a JSON client might send instead of the type the document states, with the problem
# that must be named. Integers and booleans: pydantic's words (strict types).
BAD_VALUES: dict[str, tuple[list[Any], str]] = {
    "integer": ([False, True, "7", 7.5], "Input should be a valid integer"),
    "boolean": ([1, 0, "true", "yes"], "Input should be a valid boolean"),
    "date": (
        [0, 1762041600, "0", "1762041600", "20261102", "2026-11-02T00:00:00", "2026-W45-1", True],
        inputs.DAY_FORM,
    ),
    "date-time": ([0, 1762041600, "0", "1762041600", True, 1.5], inputs.MOMENT_FORM),
    "amount": (
        ["0.001", "1.005", "1e3", " 1.00", "-1.00", "1,200.00", 0.5, 12],
        inputs.AMOUNT_FORM,
    ),
    "text": (["a\x00b"], NUL),
}


class BodyField(NamedTuple):
    operation: str
    method: str
    path: str
    body: dict[str, Any]  # a body the schema accepts, into which a bad value is put
    field: str  # as the error names it: `name`, `contract_ids.0`, `assignments.admin`
    kind: str
    schema: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.operation}.{self.field}"

    def sending(self, value: Any) -> dict[str, Any]:
        body = copy.deepcopy(self.body)
        name, _, rest = self.field.partition(".")
        if not rest:
            body[name] = value
        elif rest.isdigit():
            body[name] = [value]
        else:
            body[name] = {rest: value}
        return body


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return _resolved(options[0]) if len(options) == 1 else schema


def _kind(schema: dict[str, Any]) -> str | None:
    """The type a field is tested as; None for text a pattern or an enum already constrains."""
    if schema.get("type") in ("integer", "boolean"):
        return str(schema["type"])
    if schema.get("type") != "string":
        return None
    if schema.get("format") in ("date", "date-time"):
        return str(schema["format"])
    if schema.get("pattern") == inputs.AMOUNT_PATTERN:
        return "amount"
    if "enum" in schema or "pattern" in schema:
        return None
    return "text"


def _valid(schema: dict[str, Any]) -> Any:
    """A value the schema accepts."""
    schema = _resolved(schema)
    kind = _kind(schema)
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "array":
        return [_valid(schema["items"])] * schema.get("minItems", 0)
    if schema.get("type") == "object":
        return {}
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if schema.get("pattern") == r"^[0-9a-fA-F]{64}$" or schema.get("pattern") == r"^[0-9a-f]{64}$":
        return "ab" * 32
    return {
        "boolean": False,
        "date": "2026-11-02",
        "date-time": "2026-11-02T12:00:00Z",
        "amount": "1.00",
    }.get(kind or "", "x" * max(2, schema.get("minLength", 0)))


def _text_with_nul(schema: dict[str, Any]) -> str:
    return "a\x00" + "b" * max(0, schema.get("minLength", 0) - 2)


def _body_fields() -> Iterator[BodyField]:
    for path, operations in DOCUMENT["paths"].items():
        concrete = re.sub(r"\{ref\}", "C-2026-0001", path.removeprefix(PREFIX))
        concrete = re.sub(r"\{key\}", "kickoff", concrete)
        concrete = re.sub(r"\{[a-z_]+\}", "1", concrete)
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content or "security" not in operation:
                # An operation without a bearer token (the inbound webhook) refuses this
                # table's requests for their signature first: tests/inbound types its fields.
                continue
            schema = _resolved(content["application/json"]["schema"])
            properties = schema.get("properties", {})
            body = {name: _valid(properties[name]) for name in schema.get("required", [])}
            for name, declared in properties.items():
                field = _resolved(declared)
                where = name
                if field.get("type") == "array":
                    field, where = _resolved(field["items"]), f"{name}.0"
                elif field.get("type") == "object" and isinstance(
                    field.get("additionalProperties"), dict
                ):
                    key = field.get("propertyNames", {}).get("enum", ["key"])[0]
                    field, where = _resolved(field["additionalProperties"]), f"{name}.{key}"
                kind = _kind(field)
                if kind:
                    yield BodyField(
                        operation["operationId"], method.upper(), concrete, body, where, kind, field
                    )


BODY_FIELDS = list(_body_fields())


def test_every_kind_of_field_is_found_in_the_document():
    """The table is not empty by accident: each kind has the fields the review named."""
    found = {kind: {str(f) for f in BODY_FIELDS if f.kind == kind} for kind in BAD_VALUES}

    assert "offboard_clients_api_create_contract.notice_period_days" in found["integer"]
    assert "offboard_cases_api_cases_open_case.contract_ids.0" in found["integer"]
    assert "offboard_cases_api_cases_open_case.assignments.admin" in found["integer"]
    assert "offboard_portal_api_deem_accepted.deliverable_ids.0" in found["integer"]
    assert "update_data_disposition.legal_hold" in found["boolean"]
    assert "offboard_cases_api_cases_open_case.trigger_date" in found["date"]
    assert "update_deliverable.due_date" in found["date"]
    assert "offboard_cases_api_work_grant_waiver.expires_at" in found["date-time"]
    assert found["amount"] == {"add_settlement.amount", "update_settlement.amount"}
    assert "offboard_accounts_api_create_token.name" in found["text"]
    assert "offboard_playbooks_api_validate_playbook.source" in found["text"]
    assert len(found["text"]) > 50


@pytest.fixture(scope="module")
def _member_token(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Any:
    """An admin's token, made once for the module in a transaction rolled back at its end;
    each test runs in a savepoint of it (hundreds of fields, one cast)."""
    from django.db import transaction
    from django.test import override_settings

    from offboard.accounts.services import create_organization, create_user
    from offboard.core.actor import Actor

    overrides = override_settings(OFFBOARD_KEY_DIR=tmp_path_factory.mktemp("keys"))
    with django_db_blocker.unblock():
        overrides.enable()
        outer = transaction.atomic()
        outer.__enter__()
        try:
            org = create_organization(slug="strict", name="Strict Inputs Ltd")
            member = create_user(actor=None, org=org, username="ada", role="admin")
            token = token_for(Actor.from_membership(member, auth_method="test"))
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            overrides.disable()
            raise
    yield token
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)
        overrides.disable()


@pytest.fixture
def admin_api(_member_token: str, db: Any) -> Api:
    return Api(_member_token)


def _send(client: Api, field: BodyField, value: Any) -> Any:
    return client.call(field.method, field.path, field.sending(value))


def _problems(response: Any, field: str) -> list[str]:
    assert response.status_code == 422, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return error["details"]["fields"].get(field, [])  # type: ignore[no-any-return]


@pytest.mark.parametrize("field", BODY_FIELDS, ids=str)
def test_a_value_json_did_not_type_as_the_field_is_refused_naming_it(
    admin_api: Api, field: BodyField
) -> None:
    values, problem = BAD_VALUES[field.kind]
    if field.kind == "text":
        values = [_text_with_nul(field.schema)]
    before = LedgerEntry.objects.count()

    for value in values:
        problems = _problems(_send(admin_api, field, value), field.field)

        assert problem in problems, (value, problems)
    assert LedgerEntry.objects.count() == before


@pytest.mark.parametrize(
    ("path", "field"),
    [("/clients?q=a%00b", "q"), ("/cases?q=a%00b", "q"), ("/cases/C-2026%00-1", "ref")],
)
def test_a_nul_in_a_query_or_path_parameter_is_refused_naming_it(admin_api, path, field):
    assert NUL in _problems(admin_api.get(path), field)


@pytest.mark.parametrize("content_type", ["application/yaml", "text/plain"])
def test_a_nul_in_a_playbook_sent_as_text_is_refused_naming_the_source(admin_api, content_type):
    response = admin_api.post_raw("/playbooks/validate", "slug: x\x00\n", content_type)

    assert _problems(response, "source")


# --- the good forms, stored as sent ------------------------------------------------------------


@pytest.fixture
def alice_api(api: Any) -> Api:
    return api("alice")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("120.5", decimal.Decimal("120.50")),
        ("0", decimal.Decimal("0.00")),
        ("999999999999.99", decimal.Decimal("999999999999.99")),
    ],
)
def test_an_amount_with_up_to_two_decimals_is_stored_as_sent(alice_api, case, sent, stored):
    settlement = case.settlements.first()

    response = alice_api.patch(
        f"/cases/{case.ref}/settlements/{settlement.pk}", {"amount": sent, "currency": "EUR"}
    )

    assert response.status_code == 200, response.content
    settlement.refresh_from_db()
    assert settlement.amount == stored
    assert response.json()["amount"] == str(stored)


def test_an_amount_of_three_decimals_is_refused_not_rounded(alice_api, case):
    settlement = case.settlements.first()
    before = LedgerEntry.objects.count()

    response = alice_api.patch(
        f"/cases/{case.ref}/settlements/{settlement.pk}", {"amount": "0.001", "currency": "EUR"}
    )

    assert _problems(response, "amount") == [inputs.AMOUNT_FORM]
    settlement.refresh_from_db()
    assert settlement.amount is None
    assert LedgerEntry.objects.count() == before


def test_the_openapi_document_states_the_forms(alice_api):
    document = alice_api.get("/openapi.json").json()
    settlement = document["components"]["schemas"]["SettlementUpdateIn"]["properties"]["amount"]
    contract = document["components"]["schemas"]["ContractIn"]["properties"]["start_date"]

    assert {"type": "string", "pattern": inputs.AMOUNT_PATTERN}.items() <= _resolved(
        settlement
    ).items()
    assert contract["format"] == "date" and contract["pattern"] == inputs.DAY_PATTERN


def test_valid_values_are_stored_exactly_as_sent(alice_api, case, client_contract):
    client, _ = client_contract
    deliverable = case.deliverables.first()

    contract = alice_api.post(
        f"/clients/{client.pk}/contracts",
        {
            "reference": "NW-2026-02",
            "service_type": "consulting",
            "fee_type": "fixed",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            "notice_period_days": 0,
            "data_return_window_days": 14,
            "notice_received_at": "2026-10-30T16:45:00+01:00",
        },
    )
    updated = alice_api.patch(
        f"/cases/{case.ref}/deliverables/{deliverable.pk}",
        {"due_date": "2026-12-01", "delivered_at": "2025-06-03t09:30:00z", "status": "delivered"},
    )
    kept = alice_api.post(
        f"/cases/{case.ref}/data-dispositions",
        {
            "dataset": "CRM",
            "location": "EU",
            "action": "retain",
            "legal_hold": False,
            "retention_basis": "Tax law, 10 years",
            "retain_until": "2036-12-31",
        },
    )

    assert contract.status_code == 201, contract.content
    assert contract.json()["notice_period_days"] == 0
    assert contract.json()["start_date"] == "2026-01-01"
    received = dt.datetime.fromisoformat(contract.json()["notice_received_at"])
    assert received == dt.datetime(2026, 10, 30, 15, 45, tzinfo=dt.UTC)
    assert updated.status_code == 200, updated.content
    deliverable.refresh_from_db()
    assert deliverable.due_date == dt.date(2026, 12, 1)
    assert deliverable.delivered_at == dt.datetime(2025, 6, 3, 9, 30, tzinfo=dt.UTC)
    assert kept.status_code == 201, kept.content
    assert kept.json()["legal_hold"] is False
    assert kept.json()["retain_until"] == "2036-12-31"
