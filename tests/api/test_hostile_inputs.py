"""The review's server errors under fuzzing, one class each: bodies too large, bodies that are
not UTF-8, broken multipart, integers beyond the database's range and dates at the edges of
the calendar. Each gets a 4xx whose error names the field; nothing is written."""

from typing import Any

import pytest
from django.test import Client

from offboard.ledger.models import LedgerEntry
from tests.api.conftest import PREFIX

HUGE = 2**63  # one past the largest 64-bit integer a database column holds


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error  # type: ignore[no-any-return]


def _fields(response: Any, status: int = 422) -> dict[str, list[str]]:
    return _error(response, status)["details"]["fields"]  # type: ignore[no-any-return]


@pytest.fixture
def alice_api(api):
    return api("alice")


# --- bodies -------------------------------------------------------------------------------------


def test_a_body_over_the_memory_limit_is_413_naming_the_body(alice_api, case, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    before = LedgerEntry.objects.count()

    response = alice_api.post(f"/cases/{case.ref}/deliverables", {"title": "x" * 5_000})

    error = _error(response, 413)
    assert error["code"] == "too_large"
    assert "body" in error["details"]["fields"]
    assert "2000 bytes" in error["message"] or "2,000 bytes" in error["message"]
    assert LedgerEntry.objects.count() == before


def test_a_body_that_is_not_utf8_is_400_naming_the_body(alice_api, case):
    before = LedgerEntry.objects.count()

    response = alice_api.post_raw(
        f"/cases/{case.ref}/deliverables", b'{"title": "caf\xe9"}', "application/json"
    )

    assert "body" in _fields(response, 400)
    assert LedgerEntry.objects.count() == before


def test_multipart_without_a_boundary_is_400_naming_the_body(alice_api, cast):
    response = alice_api.post_raw("/evidence", b"--x\r\n\r\n", "multipart/form-data")

    assert "body" in _fields(response, 400)


def test_a_file_name_of_a_thousand_characters_is_refused_naming_the_file(alice_api, cast):
    """Large enough to be spooled to a temporary file, whose name carries the extension."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    name = "report." + "x" * 1000
    content = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)
    response = alice_api.client.post(
        PREFIX + "/evidence",
        {"file": SimpleUploadedFile(name, content)},
        **alice_api._headers(),
    )

    assert response.status_code in (201, 400, 422), response.content[:300]
    if response.status_code == 201:
        assert len(response.json()["name"]) <= 255
    else:
        assert "file" in _fields(response, response.status_code)


# --- integers beyond the database's range -----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"/cases?offset={HUGE}", "offset"),
        (f"/cases?limit={HUGE}", "limit"),
        ("/cases?offset=-1", "offset"),
        (f"/clients?offset={HUGE}", "offset"),
        (f"/members?offset={2**64}", "offset"),
        (f"/ledger/proof/inclusion?index={HUGE}", "index"),
        (f"/ledger/proof/inclusion?index=0&size={HUGE}", "size"),
        (f"/ledger/proof/consistency?from=0&to={HUGE}", "to"),
    ],
)
def test_an_integer_query_parameter_out_of_range_is_422_naming_it(alice_api, case, url, field):
    assert field in _fields(alice_api.get(url))


@pytest.mark.parametrize(
    "url",
    [
        f"/clients/{HUGE}",
        "/clients/-1",
        f"/clients/contracts/{HUGE}",
        f"/ledger/entries/{HUGE}",
        "/ledger/entries/-1",
        f"/playbooks/marketing-agency/versions/{HUGE}",
        f"/cases/C-2026-0001/deliverables/{HUGE}",
    ],
)
def test_an_id_in_the_path_out_of_range_is_a_4xx(alice_api, case, url):
    response = alice_api.get(url)

    assert response.status_code in (404, 422), (url, response.status_code, response.content[:200])
    if response.status_code == 422:
        assert _fields(response)


def test_an_integer_in_a_body_out_of_range_is_422_naming_it(alice_api, case, client_contract):
    _, contract = client_contract
    before = LedgerEntry.objects.count()

    refs = alice_api.post(
        "/cases",
        {
            "client_id": HUGE,
            "contract_ids": [contract.pk],
            "trigger": "breach",
            "trigger_date": "2026-11-02",
        },
    )
    waiver = alice_api.post(
        f"/cases/{case.ref}/waivers",
        {
            "target_type": "step",
            "target_id": HUGE,
            "justification": "x",
            "expires_at": "2099-01-01T00:00:00Z",
        },
    )

    assert "client_id" in _fields(refs)
    assert "target_id" in _fields(waiver)
    assert LedgerEntry.objects.count() == before


# --- dates at the edges -------------------------------------------------------------------------


@pytest.mark.parametrize("trigger_date", ["9999-12-31", "0001-01-01"])
def test_a_date_at_the_edge_of_the_calendar_is_a_4xx_naming_it(
    alice_api, case, client_contract, trigger_date
):
    client, contract = client_contract
    before = LedgerEntry.objects.count()

    for path in ("/cases/preview", "/cases"):
        response = alice_api.post(
            path,
            {
                "client_id": client.pk,
                "contract_ids": [contract.pk],
                "trigger": "breach",
                "trigger_date": trigger_date,
            },
        )
        assert response.status_code in (200, 201, 422), (path, response.content[:300])
        if response.status_code == 422:
            assert "trigger_date" in _fields(response), response.content
    if trigger_date == "9999-12-31":
        assert LedgerEntry.objects.count() == before


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z"]
)
def test_a_date_time_beyond_utc_is_422_naming_it(alice_api, case, client_contract, moment):
    _, contract = client_contract
    before = LedgerEntry.objects.count()

    response = alice_api.post(f"/clients/contracts/{contract.pk}/notice", {"received_at": moment})

    if response.status_code != 200:
        assert "received_at" in _fields(response)
    waiver = alice_api.post(
        f"/cases/{case.ref}/waivers",
        {
            "target_type": "step",
            "target_id": case.steps.first().pk,
            "justification": "x",
            "expires_at": moment,
        },
    )
    assert waiver.status_code in (201, 422), waiver.content[:300]
    if waiver.status_code == 422:
        assert "expires_at" in _fields(waiver)
    if moment != "0001-01-01T00:00:00Z":
        assert LedgerEntry.objects.count() == before


# --- the same classes in the staff web forms ---------------------------------------------------


@pytest.fixture
def alice_web(cast):
    web = Client()
    web.force_login(cast["alice"].user)
    return web


def test_a_web_form_over_the_memory_limit_is_a_413_page(alice_web, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000

    response = alice_web.post("/clients/new/", {"name": "x" * 5_000})

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"too large" in response.content.lower()


def test_a_web_form_with_broken_multipart_is_a_400_page(alice_web, case):
    response = alice_web.post(
        f"/cases/{case.ref}/evidence/upload", b"--x\r\n", content_type="multipart/form-data"
    )

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_a_web_form_that_is_not_utf8_is_a_4xx(alice_web):
    response = alice_web.post(
        "/clients/new/", b"name=caf%E9", content_type="application/x-www-form-urlencoded"
    )

    assert 400 <= response.status_code < 500 or response.status_code in (200, 302)


@pytest.mark.parametrize(
    "url", [f"/clients/{HUGE}/", f"/clients/{HUGE}/edit/", "/cases/?page=" + str(HUGE)]
)
def test_a_web_url_with_an_integer_out_of_range_is_a_4xx(alice_web, url):
    response = alice_web.get(url)

    assert response.status_code < 500, (url, response.status_code)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_web_form_date_at_the_edge_of_the_calendar_is_refused_naming_it(
    alice_web, case, client_contract, day
):
    client, contract = client_contract
    before = LedgerEntry.objects.count()

    opened = alice_web.post(
        "/cases/new/",
        {
            "client": client.pk,
            "contracts": [contract.pk],
            "trigger": "breach",
            "trigger_date": day,
            "scope": "full",
            "owner": case.owner_id,
            "playbook_version": case.playbook_version_id,
            "preview": "1",
        },
    )
    contracted = alice_web.post(
        f"/clients/{client.pk}/contracts/new/",
        {
            "reference": "EDGE-1",
            "service_type": "consulting",
            "fee_type": "fixed",
            "start_date": day,
            "notice_period_days": 30,
            "data_return_window_days": 30,
        },
    )

    for response in (opened, contracted):
        assert response.status_code in (200, 422), response.status_code
        assert "must be between 1900-01-01 and 2999-12-31" in response.content.decode().lower()
    assert LedgerEntry.objects.count() == before
