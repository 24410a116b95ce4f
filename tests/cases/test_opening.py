"""Opening a case: due dates from the contract, steps and registers from the pinned playbook."""

import datetime as dt

import pytest

from offboard.cases.models import OffboardingCase
from offboard.cases.services import open_case
from offboard.clients.services import create_client, create_contract, record_notice
from offboard.core.errors import PermissionDenied, ValidationFailed
from offboard.ledger.models import LedgerEntry
from offboard.playbooks.spec import FEE_TYPES, SERVICE_TYPES

TRIGGER = dt.date(2026, 9, 1)
NOTICE_AT = dt.datetime(2026, 9, 3, 9, 30, tzinfo=dt.UTC)


def _contract(alice, service_type, fee_type, n):
    client = create_client(actor=alice, name=f"Client {service_type} {fee_type}")
    contract = create_contract(
        actor=alice,
        client=client,
        reference=f"K-{n}",
        service_type=service_type,
        fee_type=fee_type,
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2026, 12, 31),
        notice_period_days=45,
        data_return_window_days=21,
    )
    record_notice(actor=alice, contract=contract, received_at=NOTICE_AT)
    contract.refresh_from_db()
    return client, contract


@pytest.mark.parametrize("service_type", SERVICE_TYPES)
def test_each_builtin_playbook_instantiates_with_correct_due_dates(service_type, alice, playbooks):
    version = playbooks[service_type]
    for n, fee_type in enumerate(FEE_TYPES):
        client, contract = _contract(alice, service_type, fee_type, n)
        case = open_case(
            actor=alice,
            client=client,
            contracts=[contract],
            trigger="termination_by_client",
            trigger_date=TRIGGER,
            owner_id=alice.user.pk,
            playbook_version=version,
        )
        # early termination: effective end = notice received + notice period
        assert case.notice_date == dt.date(2026, 9, 3)
        assert case.effective_end_date == dt.date(2026, 10, 18)
        assert case.data_return_deadline == dt.date(2026, 11, 8)
        anchors = {"trigger": TRIGGER, "notice": dt.date(2026, 9, 3), "end": dt.date(2026, 10, 18)}
        expected = version.spec.steps_for(fee_type)
        steps = list(case.steps.order_by("position"))
        assert [s.key for s in steps] == [s.key for s in expected]
        for step, spec in zip(steps, expected, strict=True):
            assert step.due_date == anchors[spec.due_anchor] + dt.timedelta(
                days=spec.due_offset_days
            )
            assert step.owner is not None
        titles = " | ".join(s.title.lower() for s in steps)
        if fee_type == "fixed":
            assert "acceptance" in titles
            invoice = next(s for s in steps if s.category == "invoice")
            acceptance = next(
                s for s in steps if s.category == "deliverable" and "acceptance" in s.title.lower()
            )
            assert acceptance.key in invoice.depends_on
        if fee_type == "retainer":
            assert "non-renewal" in titles
        assert case.playbook_sha256 == version.sha256
        assert case.access_grants.exists() and case.data_dispositions.exists()


def test_expiry_uses_the_contract_end_date(alice, playbooks, client_contract):
    client, contract = client_contract
    case = open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="contract_expiry",
        trigger_date=dt.date(2026, 10, 1),
        owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"],
    )
    assert case.effective_end_date == dt.date(2026, 12, 31)
    assert case.data_return_deadline == dt.date(2027, 1, 30)


def test_opening_records_one_event_with_the_pinned_playbook(case):
    events = LedgerEntry.objects.filter(case=case)
    assert [e.type for e in events] == ["case.opened"]
    assert events[0].data["playbook"]["sha256"] == case.playbook_sha256


def test_invalid_input_names_each_field_and_writes_nothing(alice, playbooks, client_contract):
    client, _contract = client_contract
    before = (OffboardingCase.objects.count(), LedgerEntry.objects.count())
    with pytest.raises(ValidationFailed) as exc:
        open_case(
            actor=alice,
            client=client,
            contracts=[],
            trigger="bored",
            trigger_date=TRIGGER,
            owner_id=alice.user.pk,
            playbook_version=playbooks["marketing_agency"],
            scope="partial",
        )
    assert set(exc.value.errors) == {"trigger", "contracts", "scope_notes"}
    assert "'bored' is not one of" in exc.value.errors["trigger"][0]
    assert (OffboardingCase.objects.count(), LedgerEntry.objects.count()) == before


def test_the_owner_must_be_a_member_who_can_own_work(cast, playbooks, client_contract, mallory):
    client, contract = client_contract
    for owner in (cast["erin"].user.pk, mallory.user.pk):
        with pytest.raises(ValidationFailed) as exc:
            open_case(
                actor=cast["alice"],
                client=client,
                contracts=[contract],
                trigger="breach",
                trigger_date=TRIGGER,
                owner_id=owner,
                playbook_version=playbooks["marketing_agency"],
            )
        assert "owner_id" in exc.value.errors


def test_an_operator_cannot_open_a_case(cast, playbooks, client_contract):
    client, contract = client_contract
    with pytest.raises(PermissionDenied):
        open_case(
            actor=cast["oscar"],
            client=client,
            contracts=[contract],
            trigger="breach",
            trigger_date=TRIGGER,
            owner_id=cast["alice"].user.pk,
            playbook_version=playbooks["marketing_agency"],
        )


def test_case_references_are_sequential_per_organization(alice, playbooks, client_contract):
    client, contract = client_contract
    refs = [
        open_case(
            actor=alice,
            client=client,
            contracts=[contract],
            trigger="other",
            trigger_date=TRIGGER,
            owner_id=alice.user.pk,
            playbook_version=playbooks["marketing_agency"],
            allow_duplicate=True,  # three cases for one contract, on purpose
        ).ref
        for _ in range(3)
    ]
    assert refs == ["C-2026-0001", "C-2026-0002", "C-2026-0003"]


def _opening(alice, playbooks, client_contract, **changes):
    client, contract = client_contract
    return {
        "actor": alice,
        "client": client,
        "contracts": [contract],
        "trigger": "termination_by_client",
        "trigger_date": TRIGGER,
        "owner_id": alice.user.pk,
        "playbook_version": playbooks["marketing_agency"],
        **changes,
    }


@pytest.mark.parametrize(
    ("refused", "field"),
    [
        ("owner of another organization", "owner_id"),
        ("owner who does not exist", "owner_id"),
        ("assignee of another organization", "assignments.operator"),
        ("assignee who does not exist", "assignments.operator"),
        ("evidence of another organization", "trigger_evidence"),
    ],
)
def test_the_plan_refuses_what_opening_refuses(
    refused, field, alice, mallory, playbooks, client_contract
):
    from offboard.cases.services.opening import plan_case
    from tests.factories import upload

    changes = {
        "owner of another organization": {"owner_id": mallory.user.pk},
        "owner who does not exist": {"owner_id": 999_999},
        "assignee of another organization": {"assignments": {"operator": mallory.user.pk}},
        "assignee who does not exist": {"assignments": {"operator": 999_999}},
        "evidence of another organization": {"trigger_evidence": [upload(mallory)]},
    }[refused]
    opening = _opening(alice, playbooks, client_contract, **changes)
    before = (OffboardingCase.objects.count(), LedgerEntry.objects.count())

    with pytest.raises(ValidationFailed) as planned:
        plan_case(**opening)
    with pytest.raises(ValidationFailed) as opened:
        open_case(**opening)

    assert list(planned.value.errors) == list(opened.value.errors) == [field]
    assert planned.value.errors == opened.value.errors
    assert (OffboardingCase.objects.count(), LedgerEntry.objects.count()) == before


def test_every_problem_of_an_opening_is_reported_at_once(
    alice, mallory, playbooks, client_contract
):
    opening = _opening(
        alice,
        playbooks,
        client_contract,
        trigger="bored",
        owner_id=mallory.user.pk,
        assignments={"operator": 999_999},
    )

    with pytest.raises(ValidationFailed) as exc:
        open_case(**opening)

    assert set(exc.value.errors) == {"trigger", "owner_id", "assignments.operator"}
    assert exc.value.errors["assignments.operator"] == [
        "user 999999 is not a member of this organization"
    ]


def test_a_second_case_for_the_same_contract_is_refused_naming_the_open_one(
    case, alice, playbooks, client_contract
):
    from offboard.cases.services.opening import DuplicateCase, plan_case

    opening = _opening(alice, playbooks, client_contract)
    before = (OffboardingCase.objects.count(), LedgerEntry.objects.count())

    assert [c.ref for c in plan_case(**opening).open_cases] == [case.ref]
    with pytest.raises(DuplicateCase) as exc:
        open_case(**opening)

    assert exc.value.status == 409 and exc.value.code == "duplicate_case"
    assert exc.value.message.startswith(
        f"Northwind Traders already has an open case for contract NW-2025-01: {case.ref} (active)."
    )
    assert exc.value.details == {
        "open_cases": [{"ref": case.ref, "state": "active", "contracts": ["NW-2025-01"]}]
    }
    assert (OffboardingCase.objects.count(), LedgerEntry.objects.count()) == before


def test_a_second_case_opens_when_intended_and_its_event_says_so(
    case, alice, playbooks, client_contract
):
    second = open_case(**_opening(alice, playbooks, client_contract), allow_duplicate=True)

    opened = LedgerEntry.objects.get(case=second, type="case.opened")
    assert opened.data["duplicate"] == {"open_cases": [case.ref], "acknowledged": True}
    first = LedgerEntry.objects.get(case=case, type="case.opened")
    assert "duplicate" not in first.data


def test_a_cancelled_case_or_another_contract_is_no_duplicate(
    case, alice, playbooks, client_contract
):
    from offboard.cases.services import cancel_case
    from offboard.clients.services import create_contract

    client, _ = client_contract
    other_contract = create_contract(
        actor=alice,
        client=client,
        reference="NW-2026-02",
        service_type="marketing_agency",
        fee_type="retainer",
        start_date=dt.date(2026, 1, 1),
    )
    beside = open_case(**_opening(alice, playbooks, client_contract, contracts=[other_contract]))
    cancel_case(actor=alice, case=case, reason="Opened by mistake")
    again = open_case(**_opening(alice, playbooks, client_contract))

    assert beside.state == again.state == "active"
    assert "duplicate" not in LedgerEntry.objects.get(case=again, type="case.opened").data
