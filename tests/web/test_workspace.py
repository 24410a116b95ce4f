"""The case workspace: the page, and every action posted from it (plain and HTMX)."""

import datetime as dt
import re

import pytest
from django.test import Client

from offboard.cases.models import AccessGrant, Approval, Step
from offboard.cases.state import fresh, state_digest
from offboard.ledger.models import LedgerEntry
from offboard.notifications.models import ClosureReceipt
from tests.factories import settle_everything, upload

HX = {"HTTP_HX_REQUEST": "true"}


def _client(user):
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def alice_web(cast):
    return _client(cast["alice"].user)


def _url(case, tail=""):
    return f"/cases/{case.ref}/{tail}"


def _first_pending(case, **filters):
    return case.steps.filter(status="pending", **filters).order_by("position").first()


def _last_event(case):
    return LedgerEntry.objects.filter(case=case).order_by("-index").first()


# --- the page ---------------------------------------------------------------------------------


def test_the_closure_panel_links_every_gate_to_where_it_is_fixed(alice_web, case):
    body = alice_web.get(_url(case)).content.decode()
    step = _first_pending(case)
    grant = case.access_grants.first()
    assert 'id="closure"' in body
    for code in ("steps.incomplete", "access.not_revoked", "settlement.open", "approvals.missing"):
        assert code in body
    assert f'href="#step-{step.pk}"' in body and f'id="step-{step.pk}"' in body
    assert f'href="#access_grants-{grant.pk}"' in body and f'id="access_grants-{grant.pk}"' in body
    assert 'href="#approvals"' in body


def test_the_close_button_is_disabled_while_any_gate_is_unmet(alice_web, case):
    body = alice_web.get(_url(case)).content.decode()
    button = re.search(r"<button[^>]*>Close case</button>", body).group(0)
    assert "disabled" in button and 'aria-describedby="close-why"' in button
    assert 'id="close-why"' in body


def test_the_header_shows_owner_end_date_days_left_and_state(alice_web, case):
    body = alice_web.get(_url(case)).content.decode()
    assert "Northwind Traders" in body and "Active" in body
    assert case.effective_end_date.strftime("%-d %b %Y") in body
    assert "Days left" in body or "past the end" in body
    assert "Enter closing" in body and "Cancel case" in body


def test_an_auditor_is_offered_no_write_actions(cast, case):
    body = _client(cast["erin"].user).get(_url(case)).content.decode()
    assert "Mark done" not in body and "Add to" not in body and "Grant waiver" not in body
    assert "Enter closing" not in body
    assert "Download evidence pack" in body  # auditors export


def test_another_organizations_case_and_its_actions_are_404(case, mallory):
    step = _first_pending(case)
    c = _client(mallory.user)
    assert c.get(_url(case)).status_code == 404
    assert (
        c.post(_url(case, f"steps/{step.key}/not-applicable"), {"reason": "x"}).status_code == 404
    )
    assert c.post(_url(case, "evidence/upload")).status_code == 404
    assert c.post(_url(case, "lifecycle/cancel"), {"reason": "x"}).status_code == 404


# --- steps ------------------------------------------------------------------------------------


def test_completing_a_step_without_javascript_redirects_back_to_its_row(alice_web, case):
    step = case.steps.get(key="confirm_notice")
    response = alice_web.post(
        _url(case, f"steps/{step.key}/complete"),
        {"note": "Confirmed by phone", "evidence_file": _file(b"%PDF-1.4 letter", "letter.pdf")},
    )
    step.refresh_from_db()
    assert step.status == "done" and step.evidence.get().original_name == "letter.pdf"
    assert response.status_code == 302
    assert response["Location"] == f"/cases/{case.ref}/#step-{step.pk}"
    assert _last_event(case).type == "step.completed"


def test_completing_a_step_with_htmx_answers_with_its_row_and_the_shared_regions(alice_web, case):
    step = case.steps.get(key="confirm_notice")
    proof = upload(_actor(case, "alice"))
    response = alice_web.post(
        _url(case, f"steps/{step.key}/complete"), {"evidence": [proof.sha256], "note": "ok"}, **HX
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="step-{step.pk}"' in body and 'class="badge done"' in body
    for region in ("case-header", "closure", "approvals", "register-tabs", "timeline"):
        assert f'id="{region}"' in body
    assert "<html" not in body  # a fragment, not the page
    step.refresh_from_db()
    assert step.status == "done" and [f.sha256 for f in step.evidence.all()] == [proof.sha256]


def _actor(case, name):
    from offboard.accounts.models import Membership
    from offboard.core.actor import Actor

    return Actor.from_membership(Membership.objects.get(user__username=name, org=case.org))


def test_a_step_missing_its_evidence_is_refused_with_the_message_in_its_form(alice_web, case):
    step = case.steps.get(key="confirm_notice")
    for extra in ({}, HX):
        response = alice_web.post(_url(case, f"steps/{step.key}/complete"), {"note": ""}, **extra)
        body = response.content.decode()
        assert response.status_code == 422
        assert "needs evidence before it is done" in body
        assert re.search(rf'id="step-{step.pk}".*?<details class="pop pop-right" open>', body, re.S)
    step.refresh_from_db()
    assert step.status == "pending"


def test_not_applicable_needs_a_reason_and_reopen_brings_the_step_back(alice_web, case):
    step = case.steps.get(key="confirm_notice")
    url = _url(case, f"steps/{step.key}/not-applicable")
    response = alice_web.post(url, {"reason": "  "}, **HX)
    assert response.status_code == 422 and "reason: is required" in response.content.decode()
    assert alice_web.post(url, {"reason": "Client confirmed by letter"}).status_code == 302
    step.refresh_from_db()
    assert step.status == "not_applicable"
    assert step.not_applicable_reason == "Client confirmed by letter"
    response = alice_web.post(_url(case, f"steps/{step.key}/reopen"), {"reason": "Wrong"}, **HX)
    assert response.status_code == 200
    step.refresh_from_db()
    assert step.status == "pending"
    assert _last_event(case).type == "step.reopened"


def test_a_step_of_a_draft_or_closed_case_is_refused_by_the_service(alice_web, case, cast):
    from tests.factories import close_with_approvals

    closed = close_with_approvals(settle_everything(case, cast), cast)
    step = closed.steps.first()
    response = alice_web.post(_url(closed, f"steps/{step.key}/reopen"), {"reason": "x"})
    assert response.status_code == 409
    assert "is closed and cannot be changed" in response.content.decode()


def test_an_auditor_forcing_a_step_action_is_refused(cast, case):
    step = case.steps.get(key="confirm_notice")
    response = _client(cast["erin"].user).post(
        _url(case, f"steps/{step.key}/not-applicable"), {"reason": "x"}, **HX
    )
    assert response.status_code == 403
    assert "may not do this" in response.content.decode()
    step.refresh_from_db()
    assert step.status == "pending"


# --- registers --------------------------------------------------------------------------------


def test_adding_an_access_grant_from_the_generated_form(alice_web, case):
    response = alice_web.post(
        _url(case, "registers/access_grants/add"),
        {
            "direction": "provider_in_client",
            "system": "GitHub",
            "principal": "agency-bot",
            "planned_action": "revoke",
            "status": "active",
            "owner_id": str(case.owner_id),
        },
    )
    grant = AccessGrant.objects.get(case=case, system="GitHub")
    assert response.status_code == 302
    assert response["Location"] == f"/cases/{case.ref}/#access_grants-{grant.pk}"
    assert grant.principal == "agency-bot" and grant.status == "active"
    assert _last_event(case).type == "access_grant.added"


def test_a_refused_add_shows_each_field_error_next_to_its_input(alice_web, case):
    for extra in ({}, HX):
        response = alice_web.post(
            _url(case, "registers/access_grants/add"),
            {"direction": "", "system": "", "planned_action": "keep", "principal": "ops-bot"},
            **extra,
        )
        body = response.content.decode()
        assert response.status_code == 422
        assert re.search(r'id="access_grants-add-system-err">is required', body)
        assert re.search(r'id="access_grants-add-direction-err">&#x27;&#x27; is not one of', body)
        assert 'name="principal" value="ops-bot"' in body  # what was typed is kept
        assert 'id="access_grants-add" class="add" open' in body
    assert not AccessGrant.objects.filter(case=case, planned_action="keep").exists()


def test_editing_sends_only_the_fields_that_changed(alice_web, case):
    deliverable = case.deliverables.first()
    page = alice_web.get(_url(case)).content.decode()
    # What the edit form shows, submitted back with one change.
    form = re.search(
        rf'action="/cases/{case.ref}/registers/deliverables/{deliverable.pk}/edit".*?</form>',
        page,
        re.S,
    ).group(0)
    values = dict(
        re.findall(
            r'<input type="(?:text|date|datetime-local)" id="[^"]+" name="([^"]+)" value="([^"]*)"',
            form,
        )
    )
    values.update(
        re.findall(r'<textarea id="[^"]+" name="([^"]+)" rows="2">([^<]*)</textarea>', form)
    )
    values.update(
        re.findall(
            r'<select id="[^"]+" name="([^"]+)"[^>]*>(?:(?!</select>).)*?<option value="([^"]*)" selected',
            form,
            re.S,
        )
    )
    values["_bools"] = "1"
    values["delivery_method"] = "Shared drive link"
    response = alice_web.post(_url(case, f"registers/deliverables/{deliverable.pk}/edit"), values)
    assert response.status_code == 302
    event = _last_event(case)
    assert event.type == "deliverable.updated"
    assert event.data["old"] == {"delivery_method": ""}


def test_an_edit_that_changes_nothing_says_so(alice_web, case):
    deliverable = case.deliverables.first()
    response = alice_web.post(
        _url(case, f"registers/deliverables/{deliverable.pk}/edit"),
        {"title": deliverable.title, "_bools": "1"},
        **HX,
    )
    assert response.status_code == 422
    assert "nothing to change" in response.content.decode()


def test_revoking_an_access_grant_with_a_dropped_file(alice_web, case):
    grant = case.access_grants.filter(planned_action="revoke").first()
    uploaded = alice_web.post(
        _url(case, "evidence/upload"),
        {"file": _file(b"screenshot of the removed user", "removed.png")},
    )
    assert uploaded.status_code == 201
    sha = uploaded.json()["sha256"]
    assert uploaded.json()["name"] == "removed.png" and uploaded.json()["size"] == 30
    response = alice_web.post(
        _url(case, f"registers/access_grants/{grant.pk}/revoke"),
        {"verification_level": "attested", "verification_note": "", "evidence": [sha]},
        **HX,
    )
    assert response.status_code == 200
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.verification_level == "attested"
    assert [f.sha256 for f in grant.evidence.all()] == [sha]
    body = response.content.decode()
    assert 'id="panel-access_grants"' in body and "✓ attested" in body
    event = _last_event(case)
    assert event.type == "access_grant.revoked" and event.files == [sha]


def test_revoking_then_verifying_without_javascript_sends_the_file_with_the_form(alice_web, case):
    grant = case.access_grants.filter(planned_action="revoke").first()
    url = _url(case, f"registers/access_grants/{grant.pk}/")
    assert alice_web.post(url + "revoke", {"verification_level": ""}).status_code == 302
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.verification_level == ""
    response = alice_web.post(url + "verify", {"verification_level": "attested"})
    assert response.status_code == 422
    assert "an attested revocation needs the screenshot" in response.content.decode()
    response = alice_web.post(
        url + "verify",
        {"verification_level": "attested", "evidence_file": _file(b"statement", "statement.txt")},
    )
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.verification_level == "attested"
    assert grant.evidence.get().original_name == "statement.txt"


def _file(content, name):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


def test_the_upload_endpoint_refuses_an_auditor_and_an_empty_request(cast, case):
    erin = _client(cast["erin"].user)
    response = erin.post(_url(case, "evidence/upload"), {"file": _file(b"x", "x.txt")})
    assert response.status_code == 403 and "may not do this" in response.json()["error"]
    alice = _client(cast["alice"].user)
    assert alice.post(_url(case, "evidence/upload")).status_code == 422


def test_settlements_are_for_finance_not_operators(cast, case):
    settlement = case.settlements.first()
    oscar = _client(cast["oscar"].user)
    assert (
        f"registers/settlements/{settlement.pk}/edit" not in oscar.get(_url(case)).content.decode()
    )
    response = oscar.post(
        _url(case, f"registers/settlements/{settlement.pk}/edit"), {"status": "paid"}, **HX
    )
    assert response.status_code == 403
    dave = _client(cast["dave"].user)
    response = dave.post(
        _url(case, f"registers/settlements/{settlement.pk}/edit"),
        {"amount": "100.00", "currency": "EUR", "_bools": "1"},
    )
    assert response.status_code == 302


# --- waivers ----------------------------------------------------------------------------------


def test_granting_and_revoking_a_waiver(cast, case):
    bob = _client(cast["bob"].user)
    grant = case.access_grants.first()
    response = bob.post(
        _url(case, "waivers/add"),
        {"target": f"access_grant:{grant.pk}", "justification": "", "expires_at": "2030-01-01"},
        **HX,
    )
    assert response.status_code == 422 and "justification: is required" in response.content.decode()
    response = bob.post(
        _url(case, "waivers/add"),
        {
            "target": f"access_grant:{grant.pk}",
            "justification": "Client keeps us",
            "expires_at": "2030-01-01",
        },
    )
    assert response.status_code == 302
    waiver = case.waivers.get()
    assert waiver.expires_at.date().isoformat() == "2030-01-01"
    response = bob.post(_url(case, f"waivers/{waiver.pk}/revoke"), {"reason": "Changed mind"}, **HX)
    assert response.status_code == 200
    waiver.refresh_from_db()
    assert waiver.revoked_at is not None


def test_an_operator_cannot_grant_a_waiver(cast, case):
    oscar = _client(cast["oscar"].user)
    assert "Grant a waiver" not in oscar.get(_url(case)).content.decode()
    grant = case.access_grants.first()
    response = oscar.post(
        _url(case, "waivers/add"),
        {"target": f"access_grant:{grant.pk}", "justification": "x", "expires_at": "2030-01-01"},
    )
    assert response.status_code == 403
    assert not case.waivers.exists()


# --- lifecycle and approvals ------------------------------------------------------------------


@pytest.fixture
def closing_case(case, cast):
    from offboard.cases.services import enter_closing

    settled = settle_everything(case, cast)
    enter_closing(actor=cast["alice"], case=settled)
    return fresh(settled)


def test_approving_binds_to_the_exact_digest_shown(cast, closing_case):
    digest = state_digest(closing_case)
    bob = _client(cast["bob"].user)
    body = bob.get(_url(closing_case)).content.decode()
    assert f'<code class="digest-full" id="state-digest">{digest}</code>' in body
    assert f'name="state_digest_seen" value="{digest}"' in body
    response = bob.post(
        _url(closing_case, "approve"),
        {"decision": "approved", "state_digest_seen": digest, "comment": ""},
        **HX,
    )
    assert response.status_code == 200
    assert "You approved this state" in response.content.decode()
    approval = Approval.objects.get(case=closing_case)
    assert approval.approver == cast["bob"].user and approval.state_digest == digest


def test_a_stale_digest_shows_the_services_message(cast, closing_case):
    response = _client(cast["carol"].user).post(
        _url(closing_case, "approve"),
        {"decision": "approved", "state_digest_seen": "0" * 64},
    )
    assert response.status_code == 409
    assert "changed since you reviewed it" in response.content.decode()
    assert not Approval.objects.filter(case=closing_case).exists()


def test_rejecting_needs_a_comment(cast, closing_case):
    response = _client(cast["carol"].user).post(
        _url(closing_case, "approve"),
        {"decision": "rejected", "state_digest_seen": state_digest(closing_case), "comment": ""},
        **HX,
    )
    assert response.status_code == 422 and "comment: is required" in response.content.decode()


def test_an_operator_is_not_offered_approval_and_a_forced_post_is_refused(cast, closing_case):
    oscar = _client(cast["oscar"].user)
    body = oscar.get(_url(closing_case)).content.decode()
    assert "Approve this state" not in body and "does not approve closures" in body
    response = oscar.post(
        _url(closing_case, "approve"),
        {"decision": "approved", "state_digest_seen": state_digest(closing_case)},
    )
    assert response.status_code == 403
    assert not Approval.objects.filter(case=closing_case).exists()


def test_closing_after_two_approvals_then_an_addendum(cast, closing_case):
    digest = state_digest(closing_case)
    alice = _client(cast["alice"].user)
    refused = alice.post(_url(closing_case, "lifecycle/close"), {"confirm": "close"})
    assert refused.status_code == 409  # no approvals
    for name in ("bob", "carol"):
        _client(cast[name].user).post(
            _url(closing_case, "approve"), {"decision": "approved", "state_digest_seen": digest}
        )
    body = alice.get(_url(closing_case)).content.decode()
    button = re.search(r"<button[^>]*>Close case</button>", body).group(0)
    assert "disabled" not in button
    close = _url(closing_case, "lifecycle/close")
    assert alice.post(close, {"confirm": "close"}).status_code == 302
    closing_case.refresh_from_db()
    assert closing_case.state == "closed"
    body = alice.get(_url(closing_case)).content.decode()
    assert "Closed is final" in body and "Append an addendum" in body and "Mark done" not in body
    response = alice.post(_url(closing_case, "addenda"), {"text": "Client confirmed receipt."})
    assert response.status_code == 302
    assert closing_case.addenda.get().text == "Client confirmed receipt."


def test_entering_closing_is_refused_with_the_gates_listed(alice_web, case):
    response = alice_web.post(_url(case, "lifecycle/closing"))
    assert response.status_code == 409
    body = response.content.decode()
    assert "Cannot enter closing for case" in body and 'role="alert"' in body


def test_cancelling_needs_a_reason(alice_web, case):
    response = alice_web.post(_url(case, "lifecycle/cancel"), {"reason": "", "confirm": "cancel"})
    assert response.status_code == 422
    response = alice_web.post(
        _url(case, "lifecycle/cancel"), {"reason": "Client renewed after all", "confirm": "cancel"}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "cancelled"


def test_a_manager_forcing_close_on_an_unready_case_is_refused(cast, case):
    response = _client(cast["oscar"].user).post(_url(case, "lifecycle/close"), {"confirm": "close"})
    assert response.status_code == 403


def test_an_operator_without_the_right_is_told_so_not_asked_to_confirm(cast, case):
    response = _client(cast["oscar"].user).post(_url(case, "lifecycle/cancel"), {"reason": "x"})
    assert response.status_code == 403 and "may not do this" in response.content.decode()
    case.refresh_from_db()
    assert case.state == "active"


# --- the final actions need an explicit confirmation ------------------------------------------


def _approved(closing_case, cast):
    digest = state_digest(closing_case)
    for name in ("bob", "carol"):
        _client(cast[name].user).post(
            _url(closing_case, "approve"), {"decision": "approved", "state_digest_seen": digest}
        )


@pytest.mark.parametrize("confirm", [None, "", "yes", "cancel"])
def test_closing_without_its_confirmation_is_refused_and_writes_nothing(
    cast, closing_case, confirm
):
    _approved(closing_case, cast)
    web = _client(cast["alice"].user)  # signed in first: a sign-in is on the record too
    before = LedgerEntry.objects.count()
    data = {} if confirm is None else {"confirm": confirm}
    response = web.post(_url(closing_case, "lifecycle/close"), data)
    assert response.status_code == 422
    body = response.content.decode()
    assert f"Case {closing_case.ref} was not closed: closing is final" in body
    # Without JavaScript the refusal shows the dialog itself, open, with what closing does.
    dialog = re.search(r'<dialog id="confirm-close"[^>]*>.*?</dialog>', body, re.S).group(0)
    assert " open" in dialog.split(">", 1)[0]
    assert "nina@northwind.example" in dialog and 'name="confirm" value="close"' in dialog
    closing_case.refresh_from_db()
    assert closing_case.state == "closing" and closing_case.closed_at is None
    assert LedgerEntry.objects.count() == before
    assert not ClosureReceipt.objects.filter(case=closing_case).exists()


def test_the_close_dialog_names_what_happens_and_who_gets_the_receipt(
    alice_web, cast, closing_case, client_contract
):
    from offboard.clients.services import add_contact

    client, _ = client_contract
    add_contact(
        actor=cast["alice"],
        client=client,
        name="Lars Legal",
        email="lars@northwind.example",
        role="legal",
    )
    add_contact(
        actor=cast["alice"],
        client=client,
        name="Tom Tech",
        email="tom@northwind.example",
        role="technical",
    )
    assert 'id="confirm-close"' not in alice_web.get(_url(closing_case)).content.decode()
    _approved(closing_case, cast)
    body = alice_web.get(_url(closing_case)).content.decode()
    dialog = re.search(r'<dialog id="confirm-close"[^>]*>.*?</dialog>', body, re.S).group(0)
    assert " open" not in dialog.split(">", 1)[0]  # shown on demand only
    text = re.sub(r"<[^>]+>", "", dialog)
    assert "final and read-only" in text and "closure certificate" in text
    assert "Nina North <nina@northwind.example>" in text.replace("&lt;", "<").replace("&gt;", ">")
    assert "Lars Legal" in text and "Tom Tech" not in text  # the receipt goes to primary and legal
    button = re.search(r'<form[^>]*lifecycle/close"[^>]*>', body).group(0)
    assert 'data-confirm="confirm-close"' in button


def test_cancelling_without_its_confirmation_is_refused_and_keeps_the_reason(alice_web, case):
    before = LedgerEntry.objects.count()
    response = alice_web.post(_url(case, "lifecycle/cancel"), {"reason": "Client renewed"})
    assert response.status_code == 422
    body = response.content.decode()
    assert f"Case {case.ref} was not cancelled: cancelling is final" in body
    dialog = re.search(r'<dialog id="confirm-cancel"[^>]*>.*?</dialog>', body, re.S).group(0)
    assert " open" in dialog.split(">", 1)[0] and ">Client renewed</textarea>" in dialog
    assert "no closure certificate" in dialog
    case.refresh_from_db()
    assert case.state == "active" and LedgerEntry.objects.count() == before


# --- timeline and size ------------------------------------------------------------------------


def _big_case(case, steps=200, events=500):
    import datetime as dt

    from django.db import transaction

    from offboard.ledger.recorder import record_event

    Step.objects.bulk_create(
        Step(
            org=case.org,
            case=case,
            key=f"bulk_{i}",
            position=1000 + i,
            phase=f"phase {i % 5}",
            title=f"Bulk step {i}",
            owner_role="operator",
            owner=case.owner,
            due_anchor="end",
            due_offset_days=0,
            due_date=dt.date(2027, 1, 1),
            evidence_required=["note"],
        )
        for i in range(steps)
    )
    alice = _actor(case, "alice")
    with transaction.atomic():
        for i in range(events):
            record_event(actor=alice, type="case.note", case=case, data={"text": f"note {i}"})


def test_the_workspace_renders_in_a_bounded_number_of_queries(
    alice_web, case, cast, django_assert_max_num_queries
):
    # Built afresh: the page's queries, and twice those of its key (web/page_cache.py).
    with django_assert_max_num_queries(100) as small:
        assert alice_web.get(_url(case)).status_code == 200
    _big_case(case)
    with django_assert_max_num_queries(100) as big:
        response = alice_web.get(_url(case))
    assert response.status_code == 200
    assert len(big.captured_queries) == len(small.captured_queries)
    body = response.content.decode()
    assert "Bulk step 199" in body
    assert "Showing the latest 50 of 501" in body and "Show all 501 events" in body
    with django_assert_max_num_queries(100):
        everything = alice_web.get(_url(case) + "?events=all").content.decode()
    assert everything.count('class="tl-idx"') == 501


def test_an_htmx_action_on_a_big_case_is_bounded_too(
    alice_web, case, django_assert_max_num_queries
):
    _big_case(case, events=50)
    step = case.steps.get(key="bulk_7")
    with django_assert_max_num_queries(80):
        response = alice_web.post(_url(case, "steps/bulk_7/complete"), {"note": "done"}, **HX)
    assert response.status_code == 200
    assert f'id="step-{step.pk}"' in response.content.decode()


# --- the header: owner and end date --------------------------------------------------------------


def test_a_manager_moves_the_end_date_and_end_anchored_steps_follow(cast, case):
    bob = _client(cast["bob"].user)
    anchored = case.steps.filter(due_anchor="end").order_by("id").first()
    assert anchored is not None
    new_end = case.effective_end_date + dt.timedelta(days=7)
    response = bob.post(_url(case, "edit"), {"effective_end_date": new_end.isoformat()})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.effective_end_date == new_end
    moved = case.steps.get(pk=anchored.pk)
    assert moved.due_date == anchored.due_date + dt.timedelta(days=7)
    event = _last_event(case)
    assert event.type == "case.updated" and event.actor["username"] == "bob"
    assert "effective_end_date" in event.data["old"]


def test_a_manager_reassigns_the_owner_from_the_header(cast, case):
    bob = _client(cast["bob"].user)
    body = bob.get(_url(case)).content.decode()
    assert "Edit owner or end date" in body
    response = bob.post(
        _url(case, "edit"),
        {"owner_id": cast["carol"].user.pk, "effective_end_date": str(case.effective_end_date)},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.owner_id == cast["carol"].user.pk
    assert _last_event(case).data["old"] == {"owner_id": cast["alice"].user.pk}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"effective_end_date": "31/12/2026"}, "is not a date (YYYY-MM-DD)"),
        ({"effective_end_date": "2026-01-01"}, "is before the trigger date"),
        ({"owner_id": "someone"}, "choose the new owner from the list"),
        ({}, "nothing to change"),
    ],
)
def test_a_bad_header_edit_says_what_is_wrong_and_changes_nothing(cast, case, fields, words):
    bob = _client(cast["bob"].user)
    before = (_last_event(case).index, case.effective_end_date, case.owner_id)
    response = bob.post(_url(case, "edit"), fields)
    assert response.status_code == 422
    body = response.content.decode()
    assert words in body
    assert re.search(r'<details class="pop pop-right" open>\s*<summary[^>]*>Edit owner', body)
    case.refresh_from_db()
    assert (_last_event(case).index, case.effective_end_date, case.owner_id) == before


def test_an_operator_cannot_edit_the_header(cast, case):
    oscar = _client(cast["oscar"].user)
    assert "Edit owner or end date" not in oscar.get(_url(case)).content.decode()
    response = oscar.post(_url(case, "edit"), {"effective_end_date": "2027-06-30"})
    assert response.status_code == 403
    case.refresh_from_db()
    assert case.effective_end_date != dt.date(2027, 6, 30)
