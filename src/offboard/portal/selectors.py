"""What a portal link opens, read in a fixed number of queries: the link by its token, the
case's manifest (exactly what the portal page shows), its files, responses and reminders.

The manifest is the contract between the page and the record: the page renders it, its
SHA-256 (RFC 8785 canonical JSON) travels in every form, and an acknowledgement or dispute is
accepted only while the manifest still has that digest.
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.utils.text import capfirst

from offboard.cases.models import Deliverable, HandoverItem, OffboardingCase
from offboard.clients.models import Contact
from offboard.core import clock
from offboard.core.canonical import digest, to_jsonable
from offboard.core.errors import NotFound, ValidationFailed
from offboard.core.validation import Errors
from offboard.evidence.models import EvidenceFile
from offboard.labels import label
from offboard.ledger.models import LedgerEntry
from offboard.portal.models import PortalLink, PortalReminder, PortalResponse

MANIFEST_VERSION = 1
OPEN_STATES = (
    OffboardingCase.State.DRAFT,
    OffboardingCase.State.ACTIVE,
    OffboardingCase.State.CLOSING,
)
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")

# What the register models are called in item keys ("deliverable:12") and in the manifest.
REGISTERS = {"deliverable": "deliverables", "handover_item": "handover_items"}
MODELS: dict[str, Any] = {"deliverables": Deliverable, "handover_items": HandoverItem}

# Statuses in which the client is asked for a response, per register.
AWAITING: dict[str, set[str]] = {
    "deliverables": {Deliverable.Status.DELIVERED},
    "handover_items": {HandoverItem.Status.HANDED_OVER},
}
# A disputed item can still be acknowledged later (the dispute resolved), not disputed twice.
DISPUTED: dict[str, set[str]] = {
    "deliverables": {Deliverable.Status.REJECTED},
    "handover_items": {HandoverItem.Status.DISPUTED},
}
SETTLED: dict[str, set[str]] = {
    "deliverables": {
        Deliverable.Status.ACCEPTED,
        Deliverable.Status.CONDITIONALLY_ACCEPTED,
        Deliverable.Status.DEEMED_ACCEPTED,
        Deliverable.Status.WAIVED,
    },
    "handover_items": {HandoverItem.Status.ACKNOWLEDGED, HandoverItem.Status.WAIVED},
}
# How each status reads to the client, and the tone of its badge.
STATUS_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "deliverables": {
        "pending": ("Not delivered yet", "quiet"),
        "delivered": ("Awaiting your response", "wait"),
        "accepted": ("Accepted", "ok"),
        "conditionally_accepted": ("Accepted with conditions", "ok"),
        "rejected": ("Disputed", "bad"),
        "deemed_accepted": ("Deemed accepted", "ok"),
        "waived": ("Waived by agreement", "quiet"),
    },
    "handover_items": {
        "planned": ("Not handed over yet", "quiet"),
        "handed_over": ("Awaiting your response", "wait"),
        "acknowledged": ("Acknowledged", "ok"),
        "disputed": ("Disputed", "bad"),
        "waived": ("Waived by agreement", "quiet"),
    },
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_for_token(token: str) -> PortalLink | None:
    """The live link a token opens, or None — unknown, expired and revoked alike.

    Only the token's SHA-256 is looked up (an indexed equality on a hash), so neither the
    answer nor its timing says anything about other tokens."""
    if not _TOKEN.match(token or ""):
        return None
    link = (
        PortalLink.objects.select_related(
            "org", "case__org", "case__client", "case__owner", "contact"
        )
        .filter(token_hash=token_hash(token))
        .first()
    )
    if link is None or not link.is_live(clock.now()):
        return None
    return link


def links(case: OffboardingCase) -> QuerySet[PortalLink]:
    return (
        PortalLink.objects.filter(org_id=case.org_id, case=case)
        .select_related("contact", "created_by", "revoked_by", "case")
        .order_by("-created_at", "-id")
    )


def links_with_counts(case: OffboardingCase) -> QuerySet[PortalLink]:
    """The case's links, newest first, each with `reminder_count` and `response_count`."""
    return links(case).annotate(
        reminder_count=Count("reminders", distinct=True),
        response_count=Count("responses", distinct=True),
    )


def case_responses(case: OffboardingCase) -> QuerySet[PortalResponse]:
    """Every acknowledgement and dispute made on the case, newest first."""
    return (
        PortalResponse.objects.filter(org_id=case.org_id, case=case)
        .select_related("contact")
        .order_by("-at", "-id")
    )


def new_answers(org: Any, owner: Any, *, limit: int = 50) -> list[PortalResponse]:
    """Acknowledgements from the client on open cases `owner` owns, received since the owner
    last acted on the case (their latest event on it): answers they have not followed up yet.
    Disputes are listed by the item they stand against (`cases.risks.my_disputes`). One query."""
    owner_acted = (
        LedgerEntry.objects.filter(org=org, case=OuterRef("case"), actor_user=owner)
        .order_by("-index")
        .values("at")[:1]
    )
    return list(
        PortalResponse.objects.filter(
            org=org,
            case__owner=owner,
            case__state__in=OPEN_STATES,
            kind=PortalResponse.Kind.ACKNOWLEDGED,
        )
        .annotate(owner_acted=Subquery(owner_acted))
        .filter(Q(owner_acted__isnull=True) | Q(at__gt=F("owner_acted")))
        .select_related("case", "case__client", "contact")
        .order_by("-at", "-id")[:limit]
    )


def latest_disputes(org: Any, case_ids: set[int]) -> dict[tuple[str, int], PortalResponse]:
    """(register, item id) → the client's latest dispute naming the item, on these cases. One
    query (none for no case)."""
    found: dict[tuple[str, int], PortalResponse] = {}
    if not case_ids:
        return found
    disputes = PortalResponse.objects.filter(
        org=org, case_id__in=case_ids, kind=PortalResponse.Kind.DISPUTED
    ).select_related("contact")
    for response in disputes.order_by("-at", "-id"):
        for item in response.items:
            found.setdefault((item.get("register"), item.get("id")), response)
    return found


def link_contacts(case: OffboardingCase) -> QuerySet[Contact]:
    """The client's contacts a link can be sent to: those with an email address."""
    return (
        Contact.objects.filter(org_id=case.org_id, client_id=case.client_id)
        .exclude(email="")
        .order_by("name", "id")
    )


def get_link(org: Any, link_id: int) -> PortalLink:
    link = (
        PortalLink.objects.filter(org=org, pk=link_id)
        .select_related("case__client", "case__owner", "contact", "org", "created_by")
        .first()
    )
    if link is None:
        raise NotFound(f"No portal link {link_id} in this organization.")
    return link


def case_contact(
    case: OffboardingCase, *, contact_id: int | None = None, email: str | None = None
) -> Contact:
    """A contact of the case's client, by id or by email address; anything else is a field
    error (a contact of another client, or of another organization, is not one of them)."""
    qs = Contact.objects.filter(org_id=case.org_id, client_id=case.client_id)
    if contact_id is not None:
        found = qs.filter(pk=contact_id).first()
        if found is None:
            raise ValidationFailed(
                {"contact_id": [f"no contact {contact_id} of {case.client.name}"]}
            )
        return found
    address = (email or "").strip()
    if not address:
        raise ValidationFailed({"contact": ["give the contact's id or email address"]})
    matches = list(qs.filter(email__iexact=address)[:2])
    if not matches:
        raise ValidationFailed(
            {"contact_email": [f"{address} is not a contact of {case.client.name}"]}
        )
    if len(matches) > 1:
        raise ValidationFailed(
            {
                "contact_email": [
                    f"several contacts of {case.client.name} use {address}; give the id"
                ]
            }
        )
    return matches[0]


def responses(case: OffboardingCase, contact_id: int) -> QuerySet[PortalResponse]:
    return PortalResponse.objects.filter(org_id=case.org_id, case=case, contact_id=contact_id)


def reminders(case: OffboardingCase, contact_id: int) -> QuerySet[PortalReminder]:
    return PortalReminder.objects.filter(org_id=case.org_id, case=case, contact_id=contact_id)


# --- the manifest ------------------------------------------------------------------------------


def _files(item: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": f.original_name,
            "size": f.size,
            "media_type": f.media_type,
            "sha256": f.sha256,
        }
        for f in sorted(item.evidence.all(), key=lambda f: (f.original_name, f.sha256))
    ]


def _deliverable(d: Deliverable) -> dict[str, Any]:
    return {
        "id": d.pk,
        "title": d.title,
        "description": d.description,
        "sow_reference": d.sow_reference,
        "due_date": d.due_date,
        "status": d.status,
        "delivered_at": d.delivered_at,
        "delivery_method": d.delivery_method,
        "accepted_at": d.accepted_at,
        "files": _files(d),
    }


def _handover_item(h: HandoverItem) -> dict[str, Any]:
    return {
        "id": h.pk,
        "kind": h.kind,
        "kind_label": capfirst(label(h.kind, "kind")),
        "name": h.name,
        "description": h.description,
        "new_owner": h.new_owner,
        "method": h.method,
        "status": h.status,
        "handed_over_at": h.handed_over_at,
        "acknowledged_at": h.acknowledged_at,
        "files": _files(h),
    }


def manifest(case: OffboardingCase) -> dict[str, Any]:
    """Everything the portal page shows about the case, as plain JSON values.

    Internal fields (notes, owners, references to where secrets are kept) are left out:
    the client sees what was delivered and handed over, and nothing else."""
    deliverables = Deliverable.objects.filter(case=case).prefetch_related("evidence")
    handover = HandoverItem.objects.filter(case=case).prefetch_related("evidence")
    value: dict[str, Any] = to_jsonable(
        {
            "manifest_version": MANIFEST_VERSION,
            "case": case.ref,
            "client": case.client.name,
            "provider": case.org.name,
            "deliverables": [_deliverable(d) for d in deliverables.order_by("id")],
            "handover_items": [_handover_item(h) for h in handover.order_by("id")],
        }
    )
    return value


def manifest_digest(value: dict[str, Any]) -> str:
    return digest(value)


@dataclass(frozen=True)
class Entry:
    """One item of the manifest as the page shows it."""

    register: str
    data: dict[str, Any]

    @property
    def key(self) -> str:
        prefix = "deliverable" if self.register == "deliverables" else "handover_item"
        return f"{prefix}:{self.data['id']}"

    @property
    def label(self) -> str:
        return str(self.data.get("title") or self.data.get("name"))

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def status_word(self) -> str:
        return STATUS_WORDS[self.register].get(self.status, (self.status, "quiet"))[0]

    @property
    def tone(self) -> str:
        return STATUS_WORDS[self.register].get(self.status, (self.status, "quiet"))[1]

    @property
    def awaiting(self) -> bool:
        return self.status in AWAITING[self.register]

    @property
    def disputed(self) -> bool:
        return self.status in DISPUTED[self.register]

    @property
    def settled(self) -> bool:
        return self.status in SETTLED[self.register]

    @property
    def waived(self) -> bool:
        """Settled by a written agreement between the parties, not by the client's response."""
        return self.status == "waived"

    @property
    def can_acknowledge(self) -> bool:
        return self.awaiting or self.disputed

    @property
    def can_dispute(self) -> bool:
        return self.awaiting

    def as_ref(self) -> dict[str, Any]:
        """How events, responses and reminders name the item."""
        return {"register": self.register, "id": self.data["id"], "label": self.label}


def entries(value: dict[str, Any]) -> list[Entry]:
    return [Entry(register, item) for register in MODELS for item in value[register]]


def parse_key(key: str) -> tuple[str, int] | None:
    """`deliverable:12` → ("deliverables", 12); anything else → None."""
    prefix, _, number = (key or "").partition(":")
    if prefix not in REGISTERS or not number.isdigit() or len(number) > 18:
        return None
    return REGISTERS[prefix], int(number)


def pick(value: dict[str, Any], keys: Any, *, acknowledging: bool) -> list[Entry]:
    """The entries named by item keys, each one the contact may acknowledge (or dispute);
    a field error on `items` names every key that is not."""
    by_key = {e.key: e for e in entries(value)}
    errors = Errors()
    chosen: list[Entry] = []
    for key in dict.fromkeys(keys):
        entry = by_key.get(key) if parse_key(key) else None
        if entry is None:
            errors.add("items", f"'{key}' is not an item of this case")
        elif acknowledging and not entry.can_acknowledge:
            errors.add(
                "items", f"'{entry.label}' is {entry.status_word.lower()}: nothing to acknowledge"
            )
        elif not acknowledging and not entry.can_dispute:
            errors.add(
                "items", f"'{entry.label}' is {entry.status_word.lower()}: it cannot be disputed"
            )
        else:
            chosen.append(entry)
    if not chosen and not errors.fields:
        errors.add("items", "choose at least one item")
    errors.raise_if_any()
    return chosen


def case_file(case: OffboardingCase, sha256: str) -> EvidenceFile | None:
    """An evidence file of one of the case's deliverables or handover items; None otherwise
    (another case's file, or any other file of the organization, does not exist here)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        return None
    on_deliverables = Deliverable.evidence.through.objects.filter(deliverable__case=case).values(
        "evidencefile_id"
    )
    on_handover = HandoverItem.evidence.through.objects.filter(handoveritem__case=case).values(
        "evidencefile_id"
    )
    return (
        EvidenceFile.objects.filter(org_id=case.org_id, sha256=sha256)
        .filter(Q(pk__in=on_deliverables) | Q(pk__in=on_handover))
        .first()
    )
