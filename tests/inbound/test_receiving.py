"""POST /api/v1/inbound/{endpoint}/events: a signed event opens a case once; every refusal
answers its 4xx, names what is wrong, and writes nothing."""

import json
import time
from typing import Any

import pytest

from offboard.cases.models import OffboardingCase
from offboard.core import clock
from offboard.inbound.models import InboundDelivery
from offboard.ledger.models import LedgerEntry
from tests.inbound.conftest import Sender, event_body, standard_webhooks_signature, url_of


def _fields(response: Any) -> dict[str, list[str]]:
    return response.json()["error"]["details"]["fields"]


def test_a_signed_event_opens_a_case_with_an_event_naming_the_endpoint_and_delivery(
    sender, issued, rows, alice
):
    before = rows()

    response = sender.post(
        event_body(notes="Client emailed: not renewing after December."), msg_id="msg_2k9ZX"
    )

    assert response.status_code == 200, response.content
    answer = response.json()
    case = OffboardingCase.objects.get(ref=answer["case"]["ref"])
    assert answer["webhook_id"] == "msg_2k9ZX"
    assert answer["outcome"] == "case_opened"
    assert answer["case"]["url"].endswith(f"/cases/{case.ref}/")
    assert answer["case"]["api_url"].endswith(f"/api/v1/cases/{case.ref}")
    assert case.trigger == "non_renewal"
    assert str(case.trigger_date) == "2026-11-02"
    assert case.trigger_notes == "Client emailed: not renewing after December."
    assert case.owner == alice.user
    assert case.state == "active"
    assert [c.reference for c in case.contracts.all()] == ["NW-2025-01"]
    after = rows()
    assert after["cases"] == before["cases"] + 1
    assert after["deliveries"] == before["deliveries"] + 1
    assert after["events"] == before["events"] + 1  # one action, one event
    opened = LedgerEntry.objects.get(case=case)
    assert opened.type == "case.opened"
    assert opened.actor_user is None
    actor = json.loads(bytes(opened.body))["actor"]
    assert actor["endpoint_id"] == str(issued.endpoint.public_id)
    assert actor["name"] == "HubSpot deals (inbound webhook)"
    assert actor["delivery_id"] == "msg_2k9ZX"
    assert actor["auth"] == "webhook_signature"
    assert actor["configured_by"] == alice.user.pk
    assert actor["user_agent"] == "crm-test/1.0"
    delivery = InboundDelivery.objects.get()
    assert (delivery.webhook_id, delivery.case, delivery.outcome) == (
        "msg_2k9ZX",
        case,
        "case_opened",
    )
    assert delivery.event_type == "contract.not_renewed"


def test_a_termination_by_the_client_or_by_us_maps_to_its_trigger(sender, cast, client_contract):
    from offboard.clients.services import create_contract

    first = sender.post(event_body(type="contract.terminated", effective_end_date="2026-12-31"))
    other = create_contract(
        actor=cast["alice"],
        client=client_contract[0],
        reference="NW-2026-02",
        service_type="marketing_agency",
        fee_type="fixed",
        start_date=client_contract[1].start_date,
    )
    second = sender.post(
        event_body(
            type="contract.terminated", contract_reference=other.reference, terminated_by="provider"
        )
    )

    assert first.status_code == 200 and second.status_code == 200, second.content
    case = OffboardingCase.objects.get(ref=first.json()["case"]["ref"])
    assert (case.trigger, str(case.effective_end_date)) == ("termination_by_client", "2026-12-31")
    assert OffboardingCase.objects.get(ref=second.json()["case"]["ref"]).trigger == (
        "termination_by_provider"
    )


def test_a_repeated_delivery_answers_the_same_and_writes_nothing(sender, rows):
    body = event_body()
    first = sender.post(body, msg_id="msg_retry")
    written = rows()

    again = sender.post(body, msg_id="msg_retry")  # the sender's retry: signed anew

    assert again.status_code == 200
    assert again.json() == first.json()
    assert rows() == written


def test_a_known_delivery_id_with_another_body_is_refused(sender, rows):
    sender.post(event_body(), msg_id="msg_same")
    written = rows()

    response = sender.post(event_body(notes="changed"), msg_id="msg_same")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "delivery_id_reused"
    assert "msg_same" in response.json()["error"]["message"]
    assert rows() == written


def test_an_open_case_for_the_contract_is_a_409_naming_it(sender, case, rows):
    before = rows()

    response = sender.post(event_body())

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "duplicate_case"
    assert case.ref in error["message"]
    assert error["details"]["open_cases"][0]["ref"] == case.ref
    assert rows() == before


@pytest.mark.parametrize(
    ("signature", "header", "problem"),
    [
        ("v1,bm90IHRoZSByaWdodCBtYWM=", "webhook-signature", "no signature matches"),
        ("v1,!!!not-base64", "webhook-signature", "no signature of the form v1"),
        ("v2,bm90IHRoZSByaWdodCBtYWM=", "webhook-signature", "no signature of the form v1"),
        ("", "webhook-signature", "is missing"),
    ],
)
def test_a_wrong_signature_is_a_401_naming_the_header_and_writes_nothing(
    sender, rows, signature, header, problem
):
    before = rows()

    response = sender.post(event_body(), signature=signature)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert problem in _fields(response)[header][0]
    assert rows() == before


def test_a_signature_under_another_secret_or_of_another_body_is_refused(sender, rows):
    from offboard.inbound.signatures import new_secret

    before = rows()
    body = event_body()
    now = int(time.time())

    other_secret = sender.post(body, secret=new_secret())
    other_body = sender.post(
        body,
        msg_id="msg_x",
        timestamp=now,
        signature=standard_webhooks_signature(sender.secret, "msg_x", now, event_body(notes="x")),
    )
    other_id = sender.post(
        body,
        msg_id="msg_y",
        timestamp=now,
        signature=standard_webhooks_signature(sender.secret, "msg_z", now, body),
    )

    assert [r.status_code for r in (other_secret, other_body, other_id)] == [401, 401, 401]
    assert rows() == before


@pytest.mark.parametrize("drift", [-301, 301, -86_400])
def test_a_timestamp_more_than_five_minutes_away_is_a_401_and_writes_nothing(sender, rows, drift):
    before = rows()

    response = sender.post(event_body(), timestamp=int(time.time()) + drift)

    assert response.status_code == 401
    assert "more than the 300 allowed" in _fields(response)["webhook-timestamp"][0]
    assert rows() == before


@pytest.mark.parametrize(
    ("headers", "header"),
    [
        ({"webhook-id": None}, "webhook-id"),
        ({"webhook-id": "has spaces in it"}, "webhook-id"),
        ({"webhook-timestamp": None}, "webhook-timestamp"),
        ({"webhook-timestamp": "2026-11-02T10:00:00Z"}, "webhook-timestamp"),
    ],
)
def test_missing_or_malformed_headers_are_a_401_naming_them(sender, rows, headers, header):
    before = rows()

    response = sender.post(event_body(), headers=headers)

    assert response.status_code == 401
    assert header in _fields(response)
    assert rows() == before


def test_several_signatures_are_accepted_while_a_secret_is_rotated(sender, issued, alice, rows):
    from offboard.inbound.services import rotate_inbound_secret

    old = issued.secret
    new = rotate_inbound_secret(actor=alice, endpoint=issued.endpoint).secret
    body = event_body()
    now = int(time.time())
    both = " ".join(
        [
            standard_webhooks_signature(new, "msg_both", now, body),
            standard_webhooks_signature(old, "msg_both", now, body),
        ]
    )
    unknown_first = " ".join(["v1,AAAA", standard_webhooks_signature(new, "msg_both", now, body)])

    assert sender.post(body, msg_id="msg_both", timestamp=now, signature=both).status_code == 200
    assert (
        sender.post(body, msg_id="msg_both", timestamp=now, signature=unknown_first).status_code
        == 200
    )


def test_after_a_rotation_the_old_secret_works_for_a_day_then_no_more(sender, issued, alice, rows):
    import datetime as dt

    from offboard.inbound.services import rotate_inbound_secret

    old = issued.secret
    new = rotate_inbound_secret(actor=alice, endpoint=issued.endpoint).secret
    body = event_body()

    with_old = sender.post(body, msg_id="msg_old", secret=old)
    with_new = sender.post(body, msg_id="msg_old", secret=new)  # the same delivery, re-signed
    assert (with_old.status_code, with_new.status_code) == (200, 200)
    assert with_new.json() == with_old.json()

    written = rows()
    later = clock.now() + dt.timedelta(hours=24, seconds=1)
    with clock.pinned(later):
        stale = int(later.timestamp())
        refused = sender.post(body, msg_id="msg_later", secret=old, timestamp=stale)
        accepted = sender.post(body, msg_id="msg_old", secret=new, timestamp=stale)
    assert refused.status_code == 401
    assert accepted.status_code == 200  # the new secret; the first answer again
    assert rows() == written


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        (event_body(trigger_date="02/11/2026"), "data.trigger_date", "YYYY-MM-DD"),
        (event_body(trigger_date=None), "data.trigger_date", "Field required"),
        (event_body(type="contract.signed"), "type", "contract.terminated"),
        (event_body(contract_reference=""), "data.contract_reference", "at least 1"),
        (event_body(terminated_by="nobody"), "data.terminated_by", "client"),
        (event_body(notes="x" * 5001), "data.notes", "at most 5000"),
        (event_body(notes="nul\x00byte"), "data.notes", "NUL"),
        (event_body(colour="red"), "data.colour", "Extra inputs"),
        (event_body(effective_end_date=20261231), "data.effective_end_date", "YYYY-MM-DD"),
        (event_body(contract_reference=None), "data.contract_reference", "reference"),
        (b'{"type": "contract.not_renewed", "data": ', "body", "not valid JSON"),
        (b"\xff\xfe", "body", "UTF-8"),
        (b"[]", "body", "valid"),
    ],
)
def test_a_bad_payload_is_a_422_naming_the_field_and_writes_nothing(
    sender, rows, body, field, problem
):
    before = rows()

    response = sender.post(body)

    assert response.status_code == 422, response.content
    assert problem in " ".join(_fields(response)[field]), _fields(response)
    assert rows() == before


def test_an_unknown_contract_is_a_422_and_writes_nothing(sender, rows):
    before = rows()

    response = sender.post(event_body(contract_reference="NOPE-1"))

    assert response.status_code == 422
    assert _fields(response) == {
        "data.contract_reference": ["no contract 'NOPE-1' in this organization"]
    }
    assert rows() == before


def test_a_contract_of_another_organization_is_unknown(sender, mallory, rows):
    import datetime as dt

    from offboard.clients.services import create_client, create_contract

    globex = create_client(actor=mallory, name="Initech")
    create_contract(
        actor=mallory,
        client=globex,
        reference="IN-1",
        service_type="consulting",
        fee_type="fixed",
        start_date=dt.date(2026, 1, 1),
    )
    before = rows()

    response = sender.post(event_body(contract_reference="IN-1"))

    assert response.status_code == 422
    assert "no contract 'IN-1'" in _fields(response)["data.contract_reference"][0]
    assert rows() == before


def test_the_client_reference_alone_finds_the_clients_running_contract(sender, cast):
    import datetime as dt

    from offboard.clients.services import create_client, create_contract

    alice = cast["alice"]
    lumen = create_client(actor=alice, name="Lumen Studio", reference="CRM-20417")
    contract = create_contract(
        actor=alice,
        client=lumen,
        reference="LU-2024-07",
        service_type="consulting",
        fee_type="fixed",
        start_date=dt.date(2024, 7, 1),
    )

    response = sender.post(event_body(contract_reference=None, client_reference="CRM-20417"))

    assert response.status_code == 200, response.content
    case = OffboardingCase.objects.get(ref=response.json()["case"]["ref"])
    assert list(case.contracts.all()) == [contract]


def test_a_client_reference_that_does_not_match_the_contract_is_a_422(sender, rows):
    before = rows()

    response = sender.post(event_body(client_reference="CRM-WRONG"))

    assert response.status_code == 422
    assert "Northwind Traders" in _fields(response)["data.client_reference"][0]
    assert rows() == before


def test_a_deactivated_case_owner_is_named_as_the_endpoints_setting(
    cast, playbooks, client_contract, rows
):
    from offboard.accounts.selectors import get_member
    from offboard.accounts.services import deactivate_member
    from offboard.inbound.services import create_inbound_endpoint

    bob = cast["bob"]
    issued = create_inbound_endpoint(actor=cast["alice"], name="PSA", case_owner_id=bob.user.pk)
    deactivate_member(actor=cast["alice"], membership=get_member(bob.org, bob.user.pk))
    before = rows()

    response = Sender(url_of(issued.endpoint), issued.secret).post(event_body())

    assert response.status_code == 422
    assert _fields(response) == {"endpoint.case_owner": ["bob is deactivated and cannot own work"]}
    assert rows() == before


@pytest.mark.parametrize(
    "endpoint_id", ["0b9b5f0e-3c39-4c43-9f6b-8d1d6f3f4a11", "not-a-uuid", "1", "x" * 300]
)
def test_an_unknown_endpoint_is_a_404_and_writes_nothing(sender, rows, endpoint_id):
    before = rows()

    response = sender.post(event_body(), url=f"/api/v1/inbound/{endpoint_id}/events")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert rows() == before


def test_a_revoked_endpoint_is_a_404_and_writes_nothing(sender, issued, alice, rows):
    from offboard.inbound.services import revoke_inbound_endpoint

    revoke_inbound_endpoint(actor=alice, endpoint=issued.endpoint)
    before = rows()

    response = sender.post(event_body())

    assert response.status_code == 404
    assert rows() == before


def test_another_organizations_endpoint_opens_nothing_here(sender, mallory, rows):
    """Globex's endpoint, signed with Acme's secret (or its own, for Acme's contract): the
    endpoint's organization is the only one it reaches."""
    from offboard.inbound.services import create_inbound_endpoint

    globex = create_inbound_endpoint(
        actor=mallory, name="Globex CRM", case_owner_id=mallory.user.pk
    )
    before = rows()

    with_acme_secret = sender.post(event_body(), url=url_of(globex.endpoint))
    own_secret = Sender(url_of(globex.endpoint), globex.secret).post(event_body())

    assert with_acme_secret.status_code == 401
    assert own_secret.status_code == 422  # NW-2025-01 is Acme's: no such contract at Globex
    assert "no contract 'NW-2025-01'" in _fields(own_secret)["data.contract_reference"][0]
    assert rows() == before


def test_a_body_past_the_limit_is_a_413_before_the_signature_is_checked(sender, rows):
    before = rows()

    response = sender.post(event_body(notes="x" * (70 * 1024)))

    assert response.status_code == 413
    assert "65536 bytes an inbound event may have" in _fields(response)["body"][0]
    assert rows() == before


def test_a_bearer_token_neither_helps_nor_is_needed(sender, alice):
    from tests.api.conftest import token_for

    unsigned = sender.client.post(
        sender.url,
        event_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token_for(alice)}"},
    )

    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "bad_signature"


def test_the_operation_documents_every_answer_it_gives(db):
    from django.test import Client

    schema = Client().get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/inbound/{endpoint_id}/events"]["post"]

    assert "security" not in operation
    assert {"200", "400", "401", "404", "409", "411", "413", "422", "503"} == set(
        operation["responses"]
    )
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["type"]["enum"] == ["contract.terminated", "contract.not_renewed"]
    assert "$ref" not in json.dumps(body)
    assert body["properties"]["data"]["additionalProperties"] is False


def test_a_secret_the_server_cannot_open_is_a_503_and_writes_nothing(sender, rows):
    from offboard.core.sealing import key_path

    key_path().unlink()  # the sealing key lost (a restore without OFFBOARD_KEY_DIR)
    before = rows()

    response = sender.post(event_body())

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "endpoint_unavailable"
    assert "whsec_" not in response.content.decode()
    assert rows() == before
