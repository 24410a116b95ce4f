def test_a_case_opens_with_steps_and_registers(case):
    assert case.ref.startswith("C-2026-")
    assert case.steps.count() > 5
    assert case.state == "active"


def test_a_case_runs_from_trigger_to_closed(case, cast):
    from tests.factories import close_with_approvals, settle_everything
    from offboard.cases.gates import unmet_gates

    case = settle_everything(case, cast)
    assert [g.code for g in unmet_gates(case)] == ["approvals.missing"]
    case = close_with_approvals(case, cast)
    assert case.state == "closed"
