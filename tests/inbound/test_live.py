"""Through a real HTTP server (pytest-django's live server) with the standard library's
urllib, as a CRM would post: signed by the Standard Webhooks scheme computed in this test."""

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from offboard.cases.models import OffboardingCase
from offboard.ledger.models import LedgerEntry
from tests.inbound.conftest import event_body, standard_webhooks_signature, url_of

pytestmark = pytest.mark.django_db(transaction=True)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _signed(secret: str, msg_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks_signature(secret, msg_id, timestamp, body),
    }


def test_a_crm_posting_over_http_opens_one_case_however_often_it_retries(live_server, issued):
    url = live_server.url + url_of(issued.endpoint)
    body = event_body(type="contract.terminated")

    first = _post(url, body, _signed(issued.secret, "evt_live_1", body))
    time.sleep(1)  # the retry is signed again, a second later
    retry = _post(url, body, _signed(issued.secret, "evt_live_1", body))
    forged = _post(url, body, _signed("whsec_" + "A" * 44, "evt_live_2", body))

    assert first[0] == 200, first
    assert retry == first
    assert forged[0] == 401
    assert forged[1]["error"]["details"]["fields"]["webhook-signature"]
    case = OffboardingCase.objects.get()
    assert case.ref == first[1]["case"]["ref"]
    assert first[1]["case"]["url"] == f"{live_server.url}/cases/{case.ref}/"
    assert LedgerEntry.objects.filter(case=case).count() == 1


@pytest.mark.one_pass("postgresql")  # the in-memory SQLite test database refuses two writers
def test_simultaneous_retries_of_one_delivery_open_one_case(live_server, issued):
    """A sender that times out and retries while the first request is still running: the
    requests meet at the endpoint's lock, the first opens the case, the others answer it."""
    url = live_server.url + url_of(issued.endpoint)
    body = event_body(type="contract.terminated")
    headers = _signed(issued.secret, "evt_live_race", body)
    count = 4
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count

    def post(i: int) -> None:
        barrier.wait()
        answers[i] = _post(url, body, headers)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0][0] == 200
    case = OffboardingCase.objects.get()
    assert case.ref == answers[0][1]["case"]["ref"]
    assert LedgerEntry.objects.filter(case=case).count() == 1
