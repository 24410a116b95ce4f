"""Clients: the list with search, a client's page (contacts, contracts and their documents,
cases), and the forms to add or edit clients, contacts and contracts (admins, managers)."""

import functools
from collections.abc import Callable
from typing import Any

from django import forms
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from offboard.accounts.models import Membership
from offboard.cases import selectors as cases
from offboard.clients import selectors
from offboard.clients.models import Contact, FeeType, ServiceType
from offboard.clients.services import (
    add_contact,
    attach_contract_document,
    create_client,
    create_contract,
    update_client,
    update_contact,
)
from offboard.core.errors import ValidationFailed
from offboard.core.permissions import can
from offboard.evidence.storage import StorageUnavailable, open_stored
from offboard.web.pages.common import (
    IsoDateInput,
    StaffForm,
    actor_of,
    add_errors,
    forbidden,
    staff_page,
)
from offboard.web.uploads import members_who_may, takes_files

OPEN_STATES = ("draft", "active", "closing")
WRITE_REFUSED = (
    "Your role '{role}' may not change clients, contacts or contracts; an admin or a manager can."
)


class ClientForm(StaffForm):
    name = forms.CharField(max_length=200)
    legal_name = forms.CharField(max_length=300, required=False)
    reference = forms.CharField(
        max_length=64, required=False, help_text="Your own reference, e.g. the CRM id."
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class ContactForm(StaffForm):
    name = forms.CharField(max_length=200)
    email = forms.CharField(max_length=254, widget=forms.EmailInput)
    role = forms.ChoiceField(choices=Contact.Role.choices)
    phone = forms.CharField(max_length=40, required=False)


class ContractForm(StaffForm):
    reference = forms.CharField(max_length=64)
    title = forms.CharField(max_length=200, required=False)
    service_type = forms.ChoiceField(choices=ServiceType.choices)
    fee_type = forms.ChoiceField(choices=FeeType.choices)
    start_date = forms.DateField(widget=IsoDateInput)
    end_date = forms.DateField(required=False, widget=IsoDateInput)
    notice_period_days = forms.IntegerField(min_value=0, max_value=3650, initial=30)
    data_return_window_days = forms.IntegerField(min_value=0, max_value=3650, initial=30)
    retention_terms = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


def _may_write(request: HttpRequest, membership: Membership) -> HttpResponse | None:
    if can(actor_of(request, membership), "clients.write"):
        return None
    return forbidden(request, WRITE_REFUSED.format(role=membership.role), membership)


def _form_page(
    request: HttpRequest, membership: Membership, form: forms.Form, **context: Any
) -> HttpResponse:
    status = 422 if form.is_bound and form.errors else 200
    return render(
        request,
        "web/clients/form.html",
        {"membership": membership, "form": form, **context},
        status=status,
    )


@staff_page
def client_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    return render(
        request,
        "web/clients/list.html",
        {
            "membership": membership,
            "clients": list(selectors.clients(membership.org, search=q)[:500]),
            "q": q,
            "can_write": can(actor_of(request, membership), "clients.write"),
            "can_import": can(actor_of(request, membership), "clients.import"),
        },
    )


def _client_detail(
    request: HttpRequest,
    membership: Membership,
    client_id: int,
    *,
    upload_error: tuple[int, str] | None = None,
) -> HttpResponse:
    client = selectors.get_client(membership.org, client_id)
    client_cases = list(cases.cases(membership.org, client_id=client.pk))
    actor = actor_of(request, membership)
    return render(
        request,
        "web/clients/detail.html",
        {
            "membership": membership,
            "client": client,
            "contacts": list(selectors.contacts(membership.org, client)),
            "contracts": list(selectors.contracts(membership.org, client)),
            "current_cases": [c for c in client_cases if c.state in OPEN_STATES],
            "past_cases": [c for c in client_cases if c.state not in OPEN_STATES],
            "can_write": can(actor, "clients.write"),
            "can_open": can(actor, "cases.open"),
            "upload_error": upload_error,
        },
        status=422 if upload_error else 200,
    )


@staff_page
def client_detail(request: HttpRequest, membership: Membership, client_id: int) -> HttpResponse:
    return _client_detail(request, membership, client_id)


def _contract_named(membership: Membership, kwargs: dict[str, Any]) -> Any:
    contract = selectors.get_contract(membership.org, kwargs["contract_id"])
    if contract.client_id != kwargs["client_id"]:
        raise Http404("No such contract for this client.")
    return contract


# The role and the contract are checked before the document is read (web/uploads.py).
@takes_files(
    members_who_may("clients.write", "evidence.upload", find=_contract_named, refusal=WRITE_REFUSED)
)
@staff_page
@require_POST
def contract_document_upload(
    request: HttpRequest, membership: Membership, client_id: int, contract_id: int
) -> HttpResponse:
    """Attach a signed contract, SOW or amendment: stored once by sha256, recorded as an event."""
    if denied := _may_write(request, membership):
        return denied
    client = selectors.get_client(membership.org, client_id)
    contract = selectors.get_contract(membership.org, contract_id)
    if contract.client_id != client.pk:
        raise Http404("No such contract for this client.")
    upload = request.FILES.get("document")
    try:
        if upload is None:
            raise ValidationFailed({"document": ["choose the file to attach"]})
        attach_contract_document(
            actor=actor_of(request, membership),
            contract=contract,
            stream=upload,
            name=upload.name or "document",
        )
    except ValidationFailed as exc:
        problem = "; ".join(" ".join(v) for v in exc.errors.values()) or exc.message
        return _client_detail(
            request, membership, client.pk, upload_error=(contract.pk, f"The file {problem}.")
        )
    return redirect(_client_page(client.pk, f"#contract-{contract.pk}"))


def _form_view(
    request: HttpRequest,
    membership: Membership,
    form: forms.Form,
    save: Callable[..., Any],
    done: Callable[[Any], str],
    **page: Any,
) -> HttpResponse:
    """Refuse roles that may not write; on a valid POST call the service `save(actor=…,
    **cleaned_data)` and redirect to `done(result)`; otherwise show the form with the
    service's field errors."""
    if denied := _may_write(request, membership):
        return denied
    if request.method == "POST" and form.is_valid():
        try:
            result = save(actor=actor_of(request, membership), **form.cleaned_data)
        except ValidationFailed as exc:
            add_errors(form, exc)
        else:
            return redirect(done(result))
    return _form_page(request, membership, form, **page)


def _client_page(client_id: int, anchor: str = "") -> str:
    return reverse("web:client-detail", args=[client_id]) + anchor


@staff_page
def client_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _form_view(
        request,
        membership,
        ClientForm(request.POST or None),
        create_client,
        lambda client: _client_page(client.pk),
        title="Add a client",
        submit="Add client",
    )


@staff_page
def client_edit(request: HttpRequest, membership: Membership, client_id: int) -> HttpResponse:
    client = selectors.get_client(membership.org, client_id)
    initial = {f: getattr(client, f) for f in ClientForm.base_fields}
    return _form_view(
        request,
        membership,
        ClientForm(request.POST or None, initial=initial),
        functools.partial(update_client, client=client),
        lambda _: _client_page(client.pk),
        title=f"Edit {client.name}",
        submit="Save",
        client=client,
    )


@staff_page
def contact_create(request: HttpRequest, membership: Membership, client_id: int) -> HttpResponse:
    client = selectors.get_client(membership.org, client_id)
    return _form_view(
        request,
        membership,
        ContactForm(request.POST or None),
        functools.partial(add_contact, client=client),
        lambda _: _client_page(client.pk, "#contacts"),
        title=f"Add a contact at {client.name}",
        submit="Add contact",
        client=client,
    )


@staff_page
def contact_edit(
    request: HttpRequest, membership: Membership, client_id: int, contact_id: int
) -> HttpResponse:
    client = selectors.get_client(membership.org, client_id)
    contact = selectors.get_contact(membership.org, client, contact_id)
    initial = {f: getattr(contact, f) for f in ContactForm.base_fields}
    return _form_view(
        request,
        membership,
        ContactForm(request.POST or None, initial=initial),
        functools.partial(update_contact, contact=contact),
        lambda _: _client_page(client.pk, "#contacts"),
        title=f"Edit {contact.name}",
        submit="Save",
        client=client,
    )


@staff_page
def contract_create(request: HttpRequest, membership: Membership, client_id: int) -> HttpResponse:
    client = selectors.get_client(membership.org, client_id)
    return _form_view(
        request,
        membership,
        ContractForm(request.POST or None),
        functools.partial(create_contract, client=client),
        lambda _: _client_page(client.pk, "#contracts"),
        title=f"Add a contract with {client.name}",
        submit="Add contract",
        client=client,
    )


@staff_page
def contract_document(
    request: HttpRequest, membership: Membership, client_id: int, contract_id: int, sha256: str
) -> HttpResponseBase:
    client = selectors.get_client(membership.org, client_id)
    contract = selectors.get_contract(membership.org, contract_id)
    if contract.client_id != client.pk:
        raise Http404("No such contract for this client.")
    document = contract.documents.filter(sha256=sha256.lower()).first()
    if document is None:
        raise Http404("No such document on this contract.")
    try:
        stream = open_stored(document.storage_name, sha256=document.sha256)
    except StorageUnavailable as exc:
        return HttpResponse(exc.message, status=503, content_type="text/plain; charset=utf-8")
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=document.original_name,
        content_type=document.media_type,
    )
    response["Content-Length"] = str(stream.size)  # a corrupted file's download ends short
    return response
