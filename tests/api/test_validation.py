"""Invalid input answers 422 naming each field and its problem, and writes nothing at all."""

from typing import Any

import pytest

from offboard.cases.models import REGISTER_MODELS, OffboardingCase, Waiver
from offboard.ledger.models import LedgerEntry


def _rows() -> dict[str, int]:
    counts = {name: model.objects.count() for name, model in REGISTER_MODELS.items()}
    return {
        **counts,
        "cases": OffboardingCase.objects.count(),
        "waivers": Waiver.objects.count(),
        "events": LedgerEntry.objects.count(),
    }


def _refused(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return error["details"]["fields"]  # type: ignore[no-any-return]


@pytest.fixture
def urls(case: Any) -> dict[str, str]:
    return {
        "case": f"/cases/{case.ref}",
        "deliverable": f"/cases/{case.ref}/deliverables/{case.deliverables.first().pk}",
        "grant": f"/cases/{case.ref}/access-grants/{case.access_grants.first().pk}",
        "settlement": f"/cases/{case.ref}/settlements/{case.settlements.first().pk}",
    }


def test_a_value_outside_an_enum_names_the_field(api, case, urls):
    before = _rows()

    fields = _refused(
        api("alice").post(f"{urls['case']}/handover-items", {"kind": "castle", "name": "Keep"})
    )

    assert list(fields) == ["kind"]
    assert "'domain'" in fields["kind"][0]
    assert _rows() == before


def test_a_bad_date_names_the_field(api, case, client_contract):
    client, contract = client_contract
    before = _rows()

    fields = _refused(
        api("alice").post(
            "/cases",
            {
                "client_id": client.pk,
                "contract_ids": [contract.pk],
                "trigger": "breach",
                "trigger_date": "2026-13-45",
            },
        )
    )

    assert list(fields) == ["trigger_date"]
    assert _rows() == before


def test_a_missing_required_field_names_it(api, case, urls):
    before = _rows()

    fields = _refused(
        api("alice").post(
            f"{urls['case']}/access-grants", {"direction": "provider_in_client", "system": "Jira"}
        )
    )

    assert fields == {"planned_action": ["Field required"]}
    assert _rows() == before


def test_an_unknown_field_is_refused_not_ignored(api, case, urls):
    before = _rows()

    fields = _refused(
        api("alice").patch(urls["deliverable"], {"title": "Renamed", "colour": "red"})
    )

    assert fields == {"colour": ["Extra inputs are not permitted"]}
    assert case.deliverables.first().title != "Renamed"
    assert _rows() == before


@pytest.mark.parametrize(
    "value",
    [
        "password: hunter2hunter2",
        "AKIAIOSFODNN7EXAMPLE",
        "https://admin:s3cr3t@registrar.example/login",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
    ],
)
def test_a_secret_looking_value_in_a_handover_field_is_refused(api, case, urls, value):
    before = _rows()

    fields = _refused(
        api("alice").post(
            f"{urls['case']}/handover-items",
            {"kind": "vault_entry", "name": "Registrar login", "reference": value},
        )
    )

    assert list(fields) == ["reference"]
    assert "never the secret itself" in fields["reference"][0]
    assert _rows() == before


def test_a_malformed_sha256_reference_is_refused(api, case, urls):
    before = _rows()

    fields = _refused(
        api("alice").patch(urls["deliverable"], {"status": "delivered", "evidence": ["not-a-hash"]})
    )

    assert list(fields) == ["evidence.0"]
    assert _rows() == before


def test_a_sha256_of_a_file_never_uploaded_is_refused(api, case, urls):
    before = _rows()
    unknown = "ab" * 32

    fields = _refused(
        api("alice").patch(urls["deliverable"], {"status": "accepted", "evidence": [unknown]})
    )

    assert fields == {"evidence": [f"no evidence file with sha256 {unknown}; upload it first"]}
    assert case.deliverables.first().status == "pending"
    assert _rows() == before


def test_a_date_time_without_a_time_zone_is_refused(api, case, urls):
    before = _rows()

    fields = _refused(
        api("bob").post(
            f"{urls['case']}/waivers",
            {
                "target_type": "access_grant",
                "target_id": case.access_grants.first().pk,
                "justification": "Kept",
                "expires_at": "2099-01-01T00:00:00",
            },
        )
    )

    assert list(fields) == ["expires_at"]
    assert _rows() == before


def test_an_amount_that_is_not_a_number_is_refused(api, case, urls):
    before = _rows()

    fields = _refused(api("dave").patch(urls["settlement"], {"amount": "lots", "currency": "EUR"}))

    assert list(fields) == ["amount"]
    assert _rows() == before


def test_every_problem_of_a_request_is_reported_at_once(api, case, urls):
    fields = _refused(
        api("alice").post(
            f"{urls['case']}/data-dispositions",
            {"action": "shred", "legal_hold": "maybe", "retain_until": "someday"},
        )
    )

    assert set(fields) == {"dataset", "location", "action", "legal_hold", "retain_until"}


def test_a_business_rule_names_the_field_that_breaks_it(api, case, urls):
    before = _rows()

    fields = _refused(api("alice").patch(urls["grant"], {"verification_level": "attested"}))

    assert set(fields) == {"verification_level", "evidence"}
    assert "only a revoked grant is verified" in fields["verification_level"]
    assert _rows() == before


def test_an_empty_update_says_there_is_nothing_to_change(api, case, urls):
    fields = _refused(api("alice").patch(urls["deliverable"], {}))

    assert list(fields) == ["values"]


def test_a_body_that_is_not_json_is_a_bad_request(api, case, urls):
    before = _rows()

    response = api("alice").post_raw(f"{urls['case']}/deliverables", "{title:", "application/json")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_request",
        "message": "Cannot parse request body",
        "details": {
            "fields": {"body": ["is not JSON in UTF-8 that matches the operation's schema"]}
        },
    }
    assert _rows() == before
