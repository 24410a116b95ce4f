"""The REST API on how a register fact is known and when: the fields every item answers with,
and the sources staff may not claim (decision 0008)."""

import datetime as dt

from offboard.core import clock
from offboard.ledger.models import LedgerEntry


def test_an_item_answers_when_it_happened_and_how_it_is_known(api, case, cast):
    item = case.handover_items.order_by("id").first()
    url = f"/cases/{case.ref}/handover-items/{item.pk}"
    happened = (clock.now() - dt.timedelta(days=2)).replace(microsecond=0)

    response = api("alice").patch(
        url,
        {"status": "handed_over", "method": "Admin moved", "handed_over_at": happened.isoformat()},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["source"] == "staff"
    assert body["source_detail"] == {"name": "Alice"}
    assert dt.datetime.fromisoformat(body["occurred_at"]) == happened
    assert dt.datetime.fromisoformat(body["recorded_at"]) > happened
    assert body["recorded_by"]["username"] == "alice"
    listed = api("erin").get(f"/cases/{case.ref}/handover-items").json()["items"]
    assert {i["id"]: i["source"] for i in listed}[item.pk] == "staff"
    planned = next(i for i in listed if i["status"] == "planned")
    assert planned["source"] == "" and planned["occurred_at"] is None
    assert planned["recorded_by"] is None


def test_a_source_staff_may_not_claim_is_refused_naming_where_it_comes_from(api, case):
    item = case.handover_items.order_by("id").first()
    before = LedgerEntry.objects.count()

    response = api("alice").patch(
        f"/cases/{case.ref}/handover-items/{item.pk}",
        {"status": "acknowledged", "method": "Moved", "source": "client_portal"},
    )

    assert response.status_code == 422
    assert (
        "set only by the client portal"
        in response.json()["error"]["details"]["fields"]["source"][0]
    )
    assert LedgerEntry.objects.count() == before


def test_a_vendor_document_is_named_by_its_sha256(api, case):
    grant = case.access_grants.filter(planned_action="revoke").order_by("id").first()
    sha = (
        api("oscar").upload(content=b"%PDF-1.4 vendor letter\n", name="letter.pdf").json()["sha256"]
    )

    response = api("oscar").patch(
        f"/cases/{case.ref}/access-grants/{grant.pk}",
        {
            "status": "revoked",
            "evidence": [sha],
            "source": "vendor_document",
            "source_document": sha,
            "source_vendor": "Slack Technologies",
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["source"] == "vendor_document"
    assert body["source_detail"] == {"document_sha256": sha, "vendor": "Slack Technologies"}


def test_the_openapi_document_describes_the_provenance_fields(api, db):
    from django.test import Client

    schemas = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]
    out = schemas["HandoverItemOut"]["properties"]
    assert {"occurred_at", "recorded_at", "recorded_by", "source", "source_detail"} <= set(out)
    assert set(out["source"]["enum"]) == {
        "observed",
        "client_portal",
        "vendor_document",
        "staff",
        "",
    }
    update = schemas["AccessGrantUpdateIn"]["properties"]
    assert {"source", "source_document", "source_vendor"} <= set(update)
    assert "refused" in update["source"]["description"]
