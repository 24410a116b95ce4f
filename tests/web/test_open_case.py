"""Opening a case from the web: pick a client, fill the form, preview the steps and dates,
confirm — and the case gets exactly the steps the preview showed."""

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils.html import escape

from offboard.cases.models import OffboardingCase


def logged_in(actor):
    c = Client()
    c.force_login(actor.user)
    return c


@pytest.fixture
def web(cast, playbooks):
    return logged_in(cast["alice"])


def form_data(client, contract, alice, playbooks, **changes):
    data = {
        "client": client.pk,
        "contracts": [contract.pk],
        "trigger": "termination_by_client",
        "trigger_date": "2026-11-02",
        "effective_end_date": "",
        "scope": "full",
        "scope_notes": "",
        "trigger_notes": "Notice letter received by email",
        "owner": alice.user.pk,
        "playbook_version": playbooks["marketing_agency"].pk,
        "action": "preview",
    }
    data.update(changes)
    return data


def test_without_a_client_the_page_asks_which_client_is_leaving(web, client_contract):
    body = web.get("/cases/new/").content.decode()
    assert "Which client is leaving?" in body and "Northwind Traders" in body


def test_the_playbook_is_suggested_from_the_contracts_service_and_fee_type(
    web, client_contract, playbooks
):
    client, _ = client_contract
    body = web.get(f"/cases/new/?client={client.pk}").content.decode()
    suggested = playbooks["marketing_agency"]
    assert f'<option value="{suggested.pk}" selected>' in body
    assert "— suggested" in body


def test_preview_shows_dates_and_steps_and_writes_nothing(web, client_contract, alice, playbooks):
    client, contract = client_contract
    response = web.post("/cases/new/", form_data(client, contract, alice, playbooks))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Preview" in body and "Confirm and open the case" in body
    # notice 2 Nov + 30 days' notice = 2 Dec; data return 30 days later
    assert "2 Dec 2026" in body and "1 Jan 2027" in body
    spec = playbooks["marketing_agency"].spec
    for step in spec.steps_for(contract.fee_type):
        assert escape(step.title) in body
    assert not OffboardingCase.objects.exists()


def test_confirm_opens_exactly_the_previewed_case(web, client_contract, alice, playbooks):
    from offboard.cases.services.opening import plan_case

    client, contract = client_contract
    data = form_data(client, contract, alice, playbooks)
    preview = web.post("/cases/new/", data).content.decode()
    fingerprint = preview.split('name="fingerprint" value="')[1].split('"')[0]
    plan = plan_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="termination_by_client",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"],
    )
    response = web.post("/cases/new/", {**data, "action": "confirm", "fingerprint": fingerprint})
    case = OffboardingCase.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.ref}/"
    created = [(s.key, s.title, s.due_date, s.owner_id) for s in case.steps.order_by("position")]
    planned = [(s["key"], s["title"], s["due_date"], s["owner"].pk) for s in plan.steps]
    assert created == planned
    for _key, title, due, _owner in created:
        assert escape(title) in preview and f'datetime="{due:%Y-%m-%d}"' in preview
    assert case.effective_end_date == plan.dates.end == dt.date(2026, 12, 2)
    assert case.trigger_notes == "Notice letter received by email"
    assert case.events.filter(type="case.opened").count() == 1


def test_a_form_changed_after_the_preview_is_previewed_again_not_opened(
    web, client_contract, alice, playbooks
):
    client, contract = client_contract
    data = form_data(client, contract, alice, playbooks)
    preview = web.post("/cases/new/", data).content.decode()
    fingerprint = preview.split('name="fingerprint" value="')[1].split('"')[0]
    changed = {**data, "trigger_date": "2026-11-09", "action": "confirm"}
    body = web.post("/cases/new/", {**changed, "fingerprint": fingerprint}).content.decode()
    assert "The form changed since the preview" in body
    assert not OffboardingCase.objects.exists()


def test_each_problem_is_shown_next_to_its_field(web, client_contract, alice, playbooks):
    client, contract = client_contract
    data = form_data(client, contract, alice, playbooks, scope="partial", trigger_date="")
    response = web.post("/cases/new/", data)
    assert response.status_code == 422
    body = response.content.decode()
    assert "This field is required" in body  # the trigger date
    data = form_data(client, contract, alice, playbooks, scope="partial")
    response = web.post("/cases/new/", data)
    assert response.status_code == 422
    body = response.content.decode()
    assert "a partial exit must say what is in scope" in body
    assert 'id="id_scope_notes_error"' in body or "has-error" in body
    assert not OffboardingCase.objects.exists()


def test_an_auditor_cannot_own_the_case(web, client_contract, alice, cast, playbooks):
    client, contract = client_contract
    data = form_data(client, contract, alice, playbooks, owner=cast["erin"].user.pk)
    response = web.post("/cases/new/", data)
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()  # auditors are not offered


def test_an_operator_may_not_open_cases(cast, client_contract, playbooks, alice):
    client, contract = client_contract
    oscar = logged_in(cast["oscar"])
    response = oscar.get(f"/cases/new/?client={client.pk}")
    assert response.status_code == 403
    assert "may not open cases" in response.content.decode()
    data = form_data(client, contract, alice, playbooks, action="confirm")
    assert oscar.post("/cases/new/", data).status_code == 403
    assert not OffboardingCase.objects.exists()


def test_another_organizations_client_is_a_404(client_contract, mallory):
    client, _ = client_contract
    c = logged_in(mallory)
    assert c.get(f"/cases/new/?client={client.pk}").status_code == 404


def test_the_case_page_links_from_a_client_to_opening(web, client_contract):
    client, _ = client_contract
    body = web.get(f"/clients/{client.pk}/").content.decode()
    assert f'href="/cases/new/?client={client.pk}"' in body


def test_planning_a_case_needs_the_right_to_open_one(client_contract, cast, playbooks):
    from offboard.cases.services.opening import plan_case
    from offboard.core.errors import PermissionDenied

    client, contract = client_contract
    with pytest.raises(PermissionDenied):
        plan_case(
            actor=cast["erin"],  # an auditor reads cases, never opens or plans one
            client=client,
            contracts=[contract],
            trigger="non_renewal",
            trigger_date=dt.date(2026, 11, 2),
            owner_id=cast["alice"].user.pk,
            playbook_version=playbooks["marketing_agency"],
        )


def _fingerprint(body):
    return body.split('name="fingerprint" value="')[1].split('"')[0]


def test_the_default_trigger_date_is_written_as_the_date_input_takes_it(
    web, client_contract, alice, playbooks
):
    from offboard.core import clock

    client, contract = client_contract
    today = clock.now().date()

    body = web.get(f"/cases/new/?client={client.pk}").content.decode()
    tag = re.search(r'<input[^>]*name="trigger_date"[^>]*>', body)
    assert tag is not None
    assert f'value="{today:%Y-%m-%d}"' in tag[0] and 'type="date"' in tag[0]
    data = form_data(client, contract, alice, playbooks, trigger_date=f"{today:%Y-%m-%d}")
    response = web.post("/cases/new/", data)
    assert response.status_code == 200
    assert "This field is required" not in response.content.decode()


def test_the_contract_form_writes_dates_as_the_date_input_takes_them(web, client_contract):
    from offboard.web.pages.clients import ContractForm

    form = ContractForm(initial={"start_date": dt.date(2026, 12, 4)})
    assert 'value="2026-12-04"' in str(form["start_date"])
    assert 'type="date"' in str(form["start_date"])


@pytest.mark.parametrize("action", ["preview", "confirm"])
def test_an_owner_of_another_organization_is_refused(
    web, client_contract, alice, mallory, playbooks, action
):
    client, contract = client_contract
    data = form_data(client, contract, alice, playbooks)
    fingerprint = _fingerprint(web.post("/cases/new/", data).content.decode())
    changed = {**data, "owner": mallory.user.pk, "action": action, "fingerprint": fingerprint}

    response = web.post("/cases/new/", changed)

    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
    assert not OffboardingCase.objects.exists()


def test_a_second_case_for_the_contract_is_opened_only_when_ticked(
    web, case, client_contract, alice, playbooks
):
    client, contract = client_contract
    data = form_data(client, contract, alice, playbooks)

    preview = web.post("/cases/new/", data).content.decode()
    assert "Northwind Traders already has an open case for the same contract" in preview
    assert f'<a href="/cases/{case.ref}/">{case.ref}</a> (active' in preview
    assert 'name="allow_duplicate"' in preview
    confirm = {**data, "action": "confirm", "fingerprint": _fingerprint(preview)}

    refused = web.post("/cases/new/", confirm)
    assert refused.status_code == 422
    body = refused.content.decode()
    assert f"already has an open case for contract NW-2025-01: {case.ref} (active)" in body
    assert "Tick this box if another case is intended" in body
    assert OffboardingCase.objects.count() == 1

    opened = web.post("/cases/new/", {**confirm, "allow_duplicate": "on"})
    assert opened.status_code == 302
    second = OffboardingCase.objects.exclude(pk=case.pk).get()
    assert opened["Location"] == f"/cases/{second.ref}/"
    event = second.events.get(type="case.opened")
    assert event.data["duplicate"] == {"open_cases": [case.ref], "acknowledged": True}


def test_without_an_open_case_there_is_no_warning_and_no_checkbox(
    web, client_contract, alice, playbooks
):
    client, contract = client_contract
    preview = web.post("/cases/new/", form_data(client, contract, alice, playbooks))
    body = preview.content.decode()
    assert "already has an open case" not in body and 'name="allow_duplicate"' not in body
