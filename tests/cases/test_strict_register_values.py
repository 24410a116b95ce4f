"""The register services read dates, date-times and amounts in the same strict forms as the
API (core/inputs.py), so the staff forms, which hand them the text as typed, get the same
answers: a number is never a date, an amount is never rounded, a NUL is never stored."""

import datetime as dt
import decimal
from typing import Any

import pytest
from django.test import Client

from offboard.cases.services import add_register_item, update_register_item
from offboard.core import inputs
from offboard.core.errors import ValidationFailed
from offboard.ledger.models import LedgerEntry


def _refused(call: Any) -> dict[str, list[str]]:
    before = LedgerEntry.objects.count()
    with pytest.raises(ValidationFailed) as refused:
        call()
    assert LedgerEntry.objects.count() == before
    return refused.value.errors


@pytest.mark.parametrize(
    "value",
    [
        0,
        20261102,
        "20261102",
        "2026-W45-1",
        "2026-11-02T00:00:00",
        " 2026-11-02",
        True,
        dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
    ],
)
def test_a_date_is_only_text_written_yyyy_mm_dd(alice, case, value):
    errors = _refused(
        lambda: add_register_item(
            actor=alice,
            case=case,
            register="deliverables",
            values={"title": "Brand book", "due_date": value},
        )
    )

    assert errors["due_date"][0].startswith(inputs.DAY_FORM)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0001-01-01", "must be between 1900-01-01 and 2999-12-31"),
        ("9999-12-31", "must be between 1900-01-01 and 2999-12-31"),
        ("2026-02-30", "'2026-02-30' is not a day of the calendar"),
    ],
)
def test_a_date_outside_the_calendar_or_its_bounds_is_refused(alice, case, value, problem):
    errors = _refused(
        lambda: add_register_item(
            actor=alice,
            case=case,
            register="data_dispositions",
            values={
                "dataset": "CRM",
                "location": "EU",
                "action": "retain",
                "retention_basis": "Tax law",
                "retain_until": value,
            },
        )
    )

    assert errors == {"retain_until": [problem]}


@pytest.mark.parametrize("value", [0, 1762041600, "1762041600", "0", True])
def test_a_date_time_is_never_a_number(alice, case, value):
    item = case.deliverables.first()

    errors = _refused(
        lambda: update_register_item(
            actor=alice, item=item, values={"status": "delivered", "delivered_at": value}
        )
    )

    assert errors["delivered_at"] == [inputs.MOMENT_FORM]


@pytest.mark.parametrize(
    "value",
    [
        "0.001",
        "1.005",
        decimal.Decimal("0.001"),
        "1e3",
        "-1.00",
        "1000000000000",
        0.5,
        12,
        True,
        decimal.Decimal("NaN"),
    ],
)
def test_an_amount_of_more_than_two_decimals_or_not_text_is_refused_not_rounded(alice, case, value):
    settlement = case.settlements.first()

    errors = _refused(
        lambda: update_register_item(
            actor=alice, item=settlement, values={"amount": value, "currency": "EUR"}
        )
    )

    assert errors == {"amount": [inputs.AMOUNT_FORM]}
    settlement.refresh_from_db()
    assert settlement.amount is None


def test_text_with_a_nul_is_refused_in_every_register(alice, case):
    errors = _refused(
        lambda: add_register_item(
            actor=alice,
            case=case,
            register="handover_items",
            values={"kind": "domain", "name": "acme\x00.example", "notes": "ok"},
        )
    )

    assert errors == {"name": ["must not contain NUL characters"]}


@pytest.mark.parametrize("value", [1, "ÄBC", "EURO"])
def test_a_currency_is_three_ascii_letters(alice, case, value):
    settlement = case.settlements.first()

    errors = _refused(
        lambda: update_register_item(
            actor=alice, item=settlement, values={"amount": "10.00", "currency": value}
        )
    )

    assert list(errors) == ["currency"]


# --- the staff forms --------------------------------------------------------------------------


@pytest.fixture
def alice_web(cast):
    web = Client()
    web.force_login(cast["alice"].user)
    return web


@pytest.mark.parametrize(
    ("register", "values", "problem"),
    [
        ("deliverables", {"title": "Report", "due_date": "20261102"}, inputs.DAY_FORM),
        ("deliverables", {"title": "Report\x00"}, "must not contain NUL characters"),
        ("settlements", {"kind": "refund", "amount": "0.001", "currency": "EUR"}, "two decimals"),
    ],
)
def test_a_register_form_gets_the_same_answer_as_the_api(
    alice_web, case, register, values, problem
):
    before = LedgerEntry.objects.count()

    response = alice_web.post(
        f"/cases/{case.ref}/registers/{register}/add",
        {**values, "owner_id": str(case.owner_id)},
    )

    assert response.status_code == 422
    assert problem.replace('"', "&quot;") in response.content.decode()
    assert LedgerEntry.objects.count() == before
