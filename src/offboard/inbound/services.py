"""Inbound webhook endpoints: an admin creates one (its secret returned once), rotates its
secret or revokes it; a signed delivery to it opens a case. One function per action, one
transaction, one ledger event (a delivery's is the case's `case.opened`)."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from offboard.cases.models import OffboardingCase
from offboard.cases.services import open_case
from offboard.cases.services.common import member_user
from offboard.clients.models import Client, Contract
from offboard.core import clock
from offboard.core.actor import Actor, EndpointActor
from offboard.core.errors import Conflict, NotFound, ValidationFailed
from offboard.core.permissions import require
from offboard.core.sealing import seal
from offboard.core.validation import Errors
from offboard.inbound import selectors
from offboard.inbound.models import InboundDelivery, InboundEndpoint
from offboard.inbound.signatures import SignedDelivery, new_secret
from offboard.ledger.recorder import record_event
from offboard.playbooks.models import Playbook, PlaybookVersion
from offboard.playbooks.selectors import suggest_playbook

# After a rotation the previous secret still verifies for this long, so the sender can be
# switched to the new one without losing events; rotating again ends it at once.
ROTATION_GRACE = dt.timedelta(hours=24)

EVENT_TYPES = ("contract.terminated", "contract.not_renewed")
TERMINATED_BY = ("client", "provider")
_TRIGGERS = {
    ("contract.terminated", "client"): OffboardingCase.Trigger.TERMINATION_BY_CLIENT,
    ("contract.terminated", "provider"): OffboardingCase.Trigger.TERMINATION_BY_PROVIDER,
    ("contract.not_renewed", "client"): OffboardingCase.Trigger.NON_RENEWAL,
    ("contract.not_renewed", "provider"): OffboardingCase.Trigger.NON_RENEWAL,
}
# The opening's fields as the sender knows them: the payload's, or the endpoint's settings.
_PAYLOAD_FIELDS = {
    "trigger": "type",
    "client": "data.client_reference",
    "contracts": "data.contract_reference",
    "trigger_date": "data.trigger_date",
    "effective_end_date": "data.effective_end_date",
    "trigger_notes": "data.notes",
    "owner_id": "endpoint.case_owner",
    "playbook": "endpoint.playbook",
}


@dataclass(frozen=True)
class IssuedEndpoint:
    endpoint: InboundEndpoint
    secret: str  # `whsec_…`: returned once, stored only sealed


@dataclass(frozen=True)
class ContractEvent:
    """What a delivery asks for: a contract ends (docs/webhooks-in.md)."""

    type: str  # one of EVENT_TYPES
    trigger_date: dt.date
    contract_reference: str | None = None
    client_reference: str | None = None
    effective_end_date: dt.date | None = None
    terminated_by: str = "client"  # one of TERMINATED_BY
    notes: str = ""


@dataclass(frozen=True)
class Received:
    delivery: InboundDelivery
    replayed: bool  # a repeat of a delivery already received: nothing was written


def _settings(
    errors: Errors, actor: Actor, case_owner_id: object, playbook_slug: str
) -> tuple[Any, Playbook | None]:
    try:
        owner = member_user(actor.org, case_owner_id, "case_owner_id")
    except ValidationFailed as exc:
        for problem in exc.errors.get("case_owner_id", [exc.message]):
            errors.add("case_owner_id", problem)
        owner = None
    playbook = None
    if playbook_slug:
        playbook = Playbook.objects.for_org(actor.org).filter(slug=playbook_slug).first()
        if playbook is None:
            errors.add("playbook", f"no playbook '{playbook_slug}' in this organization")
    return owner, playbook


@transaction.atomic
def create_inbound_endpoint(
    *,
    actor: Actor,
    name: str,
    case_owner_id: int,
    playbook_slug: str = "",
    open_as_draft: bool = False,
) -> IssuedEndpoint:
    """A new endpoint with a fresh secret, returned here once: the sender signs with it."""
    require(actor, "inbound.manage")
    errors = Errors()
    name = errors.text("name", name, max_length=100)
    owner, playbook = _settings(errors, actor, case_owner_id, (playbook_slug or "").strip())
    live = InboundEndpoint.objects.for_org(actor.org).filter(revoked_at__isnull=True)
    if name and live.filter(name=name).exists():
        errors.add("name", f"an endpoint named '{name}' is receiving events already")
    errors.raise_if_any()
    secret = new_secret()
    endpoint = InboundEndpoint(
        org=actor.org,
        name=name,
        case_owner=owner,
        playbook=playbook,
        open_as_draft=bool(open_as_draft),
        created_by=actor.user,
        created_at=clock.now(),
    )
    endpoint.secret_sealed = seal(secret.encode(), context=endpoint.seal_context)
    endpoint.save()
    record_event(actor=actor, type="inbound_endpoint.created", data=endpoint.as_event_data())
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


def _locked(actor: Actor, endpoint: InboundEndpoint) -> InboundEndpoint:
    """The endpoint, locked, for an admin of its organization; a revoked one is final."""
    require(actor, "inbound.manage")
    if endpoint.org_id != actor.org.pk:
        raise NotFound("No such inbound endpoint.")
    locked = InboundEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if locked.revoked_at is not None:
        raise Conflict(
            f"The inbound endpoint '{locked.name}' was revoked on "
            f"{locked.revoked_at:%d %b %Y}; create a new one.",
            code="endpoint_revoked",
        )
    return locked


@transaction.atomic
def rotate_inbound_secret(*, actor: Actor, endpoint: InboundEndpoint) -> IssuedEndpoint:
    """A new secret, returned once; the previous one verifies for ROTATION_GRACE more (the
    one before it, if still in its grace, stops at once)."""
    locked = _locked(actor, endpoint)
    now = clock.now()
    secret = new_secret()
    locked.previous_secret_sealed = locked.secret_sealed
    locked.previous_secret_expires_at = now + ROTATION_GRACE
    locked.secret_sealed = seal(secret.encode(), context=locked.seal_context)
    locked.secret_rotated_at = now
    locked.save(
        update_fields=[
            "previous_secret_sealed",
            "previous_secret_expires_at",
            "secret_sealed",
            "secret_rotated_at",
        ]
    )
    record_event(
        actor=actor,
        type="inbound_endpoint.secret_rotated",
        data={
            "endpoint_id": str(locked.public_id),
            "name": locked.name,
            "previous_secret_valid_until": locked.previous_secret_expires_at,
        },
    )
    return IssuedEndpoint(endpoint=locked, secret=secret)


@transaction.atomic
def revoke_inbound_endpoint(*, actor: Actor, endpoint: InboundEndpoint) -> InboundEndpoint:
    """The endpoint stops receiving at once (404 to its sender) and its secrets are erased;
    the cases it opened and its deliveries stay."""
    locked = _locked(actor, endpoint)
    locked.revoked_at = clock.now()
    locked.revoked_by = actor.user
    locked.secret_sealed = ""
    locked.previous_secret_sealed = ""
    locked.previous_secret_expires_at = None
    locked.save(
        update_fields=[
            "revoked_at",
            "revoked_by",
            "secret_sealed",
            "previous_secret_sealed",
            "previous_secret_expires_at",
        ]
    )
    record_event(
        actor=actor,
        type="inbound_endpoint.revoked",
        data={
            "endpoint_id": str(locked.public_id),
            "name": locked.name,
            "deliveries": locked.deliveries.count(),
        },
    )
    return locked


def _contract(org: object, event: ContractEvent) -> Contract:
    """The contract the event is about: by its reference, or the one contract of the client
    (by the client's reference) running on the trigger date."""
    if event.contract_reference:
        ref = event.contract_reference
        contract = (
            Contract.objects.for_org(org).select_related("client").filter(reference=ref).first()
        )
        if contract is None:
            raise ValidationFailed(
                {"data.contract_reference": [f"no contract '{ref}' in this organization"]}
            )
        sent = event.client_reference
        if sent and contract.client.reference != sent:
            owned_by = contract.client.reference or "none"
            raise ValidationFailed(
                {
                    "data.client_reference": [
                        f"contract {ref} is {contract.client.name}'s, whose reference is "
                        f"'{owned_by}', not '{sent}'"
                    ]
                }
            )
        return contract
    sent = event.client_reference or ""
    clients = list(Client.objects.for_org(org).filter(reference=sent)[:3])
    if not clients:
        raise ValidationFailed({"data.client_reference": [f"no client with reference '{sent}'"]})
    if len(clients) > 1:
        raise ValidationFailed(
            {
                "data.client_reference": [
                    f"several clients have reference '{sent}': send data.contract_reference"
                ]
            }
        )
    day = event.trigger_date
    running = list(
        Contract.objects.for_org(org)
        .select_related("client")
        .filter(client=clients[0], start_date__lte=day)
        .exclude(end_date__lt=day)
        .order_by("reference")
    )
    if len(running) != 1:
        listed = f" ({', '.join(c.reference for c in running)})" if running else ""
        raise ValidationFailed(
            {
                "data.contract_reference": [
                    f"{clients[0].name} has {len(running) or 'no'} contract"
                    f"{'' if len(running) == 1 else 's'} running on {day}{listed}: "
                    "send the contract's reference"
                ]
            }
        )
    return running[0]


def _playbook_version(endpoint: InboundEndpoint, contract: Contract) -> PlaybookVersion:
    if endpoint.playbook is not None:
        version = endpoint.playbook.versions.order_by("-version").first()
    else:
        version = suggest_playbook(endpoint.org, contract.service_type)
    if version is None:
        raise ValidationFailed(
            {
                "endpoint.playbook": [
                    f"no playbook for service type {contract.service_type}: an admin imports "
                    "one or sets the endpoint's playbook"
                ]
            }
        )
    return version


def _in_payload_terms(exc: ValidationFailed) -> ValidationFailed:
    fields: dict[str, list[str]] = {}
    for name, problems in exc.errors.items():
        fields.setdefault(_PAYLOAD_FIELDS.get(name, name), []).extend(problems)
    return ValidationFailed(fields)


@transaction.atomic
def receive_event(
    *,
    endpoint: InboundEndpoint,
    delivery: SignedDelivery,
    body_sha256: str,
    event: ContractEvent,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Received:
    """Open the case a verified delivery asks for, with the same checks as any opening, and
    keep the delivery by its id in the same transaction. A repeat of the id with the same body
    is answered with the first outcome and writes nothing; with another body, refused."""
    locked = (
        InboundEndpoint.objects.select_for_update(of=("self",))
        .select_related("org", "playbook")
        .get(pk=endpoint.pk)
    )
    if locked.revoked_at is not None:
        raise NotFound(f"No inbound endpoint {locked.public_id} is receiving events.")
    previous = selectors.delivery(locked, delivery.id)
    if previous is not None:
        if previous.body_sha256 != body_sha256:
            raise Conflict(
                f"webhook-id {delivery.id} was received at {previous.received_at:%Y-%m-%dT%H:%M:%SZ} "
                "with another body: a new event needs a new id.",
                code="delivery_id_reused",
                details={"webhook_id": delivery.id},
            )
        return Received(delivery=previous, replayed=True)
    errors = Errors()
    errors.choice("type", event.type, EVENT_TYPES)
    errors.choice("data.terminated_by", event.terminated_by, TERMINATED_BY)
    if not (event.contract_reference or event.client_reference):
        errors.add("data.contract_reference", "send the contract's reference or the client's")
    errors.raise_if_any()
    contract = _contract(locked.org, event)
    actor = EndpointActor(
        org=locked.org,
        endpoint_id=str(locked.public_id),
        endpoint_name=locked.name,
        configured_by=locked.created_by_id,
        delivery_id=delivery.id,
        ip=ip,
        user_agent=user_agent,
    )
    try:
        case = open_case(
            actor=actor,
            client=contract.client,
            contracts=[contract],
            trigger=_TRIGGERS[(event.type, event.terminated_by)],
            trigger_date=event.trigger_date,
            owner_id=locked.case_owner_id,
            playbook_version=_playbook_version(locked, contract),
            trigger_notes=event.notes,
            effective_end_date=event.effective_end_date,
            draft=locked.open_as_draft,
        )
    except ValidationFailed as exc:
        raise _in_payload_terms(exc) from None
    received = InboundDelivery.objects.create(
        org=locked.org,
        endpoint=locked,
        webhook_id=delivery.id,
        event_type=event.type,
        body_sha256=body_sha256,
        signed_at=dt.datetime.fromtimestamp(delivery.timestamp, tz=dt.UTC),
        received_at=clock.now(),
        case=case,
    )
    return Received(delivery=received, replayed=False)
