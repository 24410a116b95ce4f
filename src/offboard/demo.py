"""The demo organization "Brightline Digital": its people, clients and a case in every state.

Everything is loaded through the service functions, so every change is an event, exactly as if
the team had done the work. Dates are relative to today. Needs Django set up; used by
`offboard demo` and `make run`.
"""

import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.core.management import call_command

from offboard.accounts.models import Organization
from offboard.accounts.selectors import members
from offboard.accounts.services import create_organization, create_user
from offboard.cases.models import AccessGrant, DataDisposition, OffboardingCase, Step
from offboard.cases.selectors import cases, get_step
from offboard.cases.services import (
    add_addendum,
    approve_case,
    cancel_case,
    close_case,
    complete_step,
    enter_closing,
    grant_waiver,
    mark_step_not_applicable,
    open_case,
    start_step,
    update_register_item,
)
from offboard.cases.state import fresh, state_digest
from offboard.clients.services import add_contact, create_client, create_contract
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.permissions import can
from offboard.evidence.models import EvidenceFile
from offboard.evidence.services import store_file
from offboard.notifications import receipts
from offboard.notifications.models import ClosureReceipt
from offboard.playbooks.selectors import suggest_playbook
from offboard.playbooks.services import install_builtin_playbooks

ORG_SLUG = "brightline"
ORG_NAME = "Brightline Digital"
PASSWORD = "offboard-demo"
EMAIL_DOMAIN = "brightline.example"

# username, role, first name, last name
PEOPLE = (
    ("alice", "admin", "Alice", "Whitford"),
    ("bob", "manager", "Bob", "Okafor"),
    ("carol", "manager", "Carol", "Lindqvist"),
    ("dave", "finance", "Dave", "Patel"),
    ("erin", "auditor", "Erin", "Castillo"),
    ("oscar", "operator", "Oscar", "Brennan"),
)

STAGES = (
    "People and playbooks",
    "Clients, contacts and contracts",
    "Closed case (Northgate Outdoor)",
    "Closing case (Pemberton Analytics)",
    "Active case (Harbourview Hotels)",
    "Active case (Kestrel Freight)",
    "Cancelled and draft cases",
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ClientSeed:
    key: str
    name: str
    legal_name: str
    reference: str
    domain: str
    contacts: tuple[str, str, str, str]  # full names of the primary, legal, finance, technical
    # (reference, title, service type, fee type, start, end, notice period in days, notice
    # received); start, end and notice received are days from today, None when there is none.
    contracts: tuple[tuple[str, str, str, str, int, int | None, int, int | None], ...]


CONTACT_ROLES = ("primary", "legal", "finance", "technical")

# fmt: off
CLIENTS = (
    ClientSeed(
        "northgate", "Northgate Outdoor Co.", "Northgate Outdoor Company Ltd", "CL-1042",
        "northgate-outdoor.example",
        ("Hannah Reid", "Marcus Webb", "Priya Shah", "Tom Ellison"),
        (("BD-MKT-2025-031", "Spring brand relaunch campaign", "marketing_agency", "fixed",
          -400, -75, 30, None),
         ("BD-MKT-2025-032", "Paid social management", "marketing_agency", "time_and_materials",
          -380, -75, 30, None)),
    ),
    ClientSeed(
        "pemberton", "Pemberton Analytics", "Pemberton Analytics Ltd", "CL-1077",
        "pemberton-analytics.example",
        ("Daniel Osei", "Sofia Marchetti", "Grace Kim", "Liam Byrne"),
        (("BD-SW-2025-004", "Customer portal build, phase 2", "software_development", "fixed",
          -300, -8, 30, None),),
    ),
    ClientSeed(
        "harbourview", "Harbourview Hotels Group", "Harbourview Hotels Group plc", "CL-0981",
        "harbourview-hotels.example",
        ("Olivia Grant", "James Thornton", "Aisha Rahman", "Ben Carter"),
        (("BD-MKT-2024-014", "Always-on paid media and SEO retainer", "marketing_agency",
          "retainer", -700, None, 60, -21),),
    ),
    ClientSeed(
        "kestrel", "Kestrel Freight Ltd", "Kestrel Freight Limited", "CL-0874",
        "kestrel-freight.example",
        ("Ruth Ashworth", "Victor Lange", "Megan Doyle", "Sam Nakamura"),
        (("BD-MSP-2023-007", "Managed IT services agreement", "managed_it", "retainer",
          -1100, 10, 90, -50),),
    ),
    ClientSeed(
        "meridian", "Meridian Health Partners", "Meridian Health Partners LLP", "CL-1103",
        "meridian-health.example",
        ("Elena Petrova", "Robert Hale", "Nadia Haddad", "Chris Mwangi"),
        (("BD-CON-2025-011", "Digital strategy advisory", "consulting", "time_and_materials",
          -200, 165, 30, -30),),
    ),
    ClientSeed(
        "alder", "Alder & Finch LLP", "Alder & Finch LLP", "CL-0702", "alderfinch.example",
        ("Imogen Alder", "Patrick Finch", "Helen Morris", "Jacob Stein"),
        (("BD-ACC-2024-003", "Bookkeeping, payroll and VAT returns", "accounting",
          "time_and_materials", -900, None, 90, -3),),
    ),
    ClientSeed(
        "lumen", "Lumen Architecture Studio", "Lumen Architecture Studio Ltd", "CL-1120",
        "lumen-studio.example",
        ("Maya Fischer", "Owen Price", "Laura Chen", "Noah Williams"),
        (("BD-CON-2025-019", "Practice operations review", "consulting", "retainer",
          -60, 300, 30, None),
         ("BD-ACC-2025-008", "Monthly management accounts", "accounting", "fixed",
          -45, 320, 60, None)),
    ),
    ClientSeed(
        "saltmarsh", "Saltmarsh Brewing Co.", "Saltmarsh Brewing Company Ltd", "CL-0955",
        "saltmarsh-brewing.example",
        ("Freya Lund", "George Abbott", "Rosa Jimenez", "Arjun Mehta"),
        (("BD-SW-2024-012", "E-commerce platform support", "software_development",
          "time_and_materials", -500, 230, 60, None),
         ("BD-MSP-2024-021", "Managed Microsoft 365 and endpoint support", "managed_it",
          "retainer", -480, 250, 90, None)),
    ),
)
# fmt: on

# Why an optional step did not apply, per step key.
NOT_APPLICABLE = {
    "transfer_web_properties": "The client's website, DNS and CMS were always client-owned; "
    "nothing web-related was held in our name.",
    "settle_escrow": "The contract has no source-code escrow arrangement.",
    "respond_professional_clearance": "No incoming accountant has asked for professional clearance.",
}


def pdf(title: str, lines: Sequence[str]) -> bytes:
    """A small, valid one-page PDF with a title and lines of text (Helvetica, ASCII)."""

    def text(s: str) -> str:
        s = s.encode("ascii", "replace").decode("ascii")
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 15 Tf", "56 780 Td", f"({text(title)}) Tj", "/F1 10 Tf", "0 -26 Td"]
    for line in lines:
        ops += [f"({text(line)}) Tj", "0 -15 Td"]
    ops.append("ET")
    stream = "\n".join(ops).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    body = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(body)


def demo_mail() -> Any:
    """The demo's clients are fictitious: their closure receipt never goes through a real
    mail server. It is written under var/mail (file backend), or kept in memory in tests."""
    if settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend":
        return get_connection()
    return get_connection("django.core.mail.backends.filebased.EmailBackend")


def load_demo(reset: bool = False, *, progress: Progress | None = None) -> dict[str, Any]:
    """Load the demo unless it is there already. `reset` first erases the WHOLE database."""
    if reset:
        call_command("flush", interactive=False, verbosity=0)
    else:
        existing = Organization.objects.filter(slug=ORG_SLUG).first()
        if existing is not None:
            return summary(existing, created=False)
    org = _Loader(progress or (lambda stage, done, total: None)).run()
    return summary(org, created=True)


def summary(org: Organization, *, created: bool) -> dict[str, Any]:
    order = {username: i for i, (username, *_) in enumerate(PEOPLE)}
    people = sorted(members(org), key=lambda m: (order.get(m.user.username, 99), m.user.username))
    return {
        "created": created,
        "org": {"slug": org.slug, "name": org.name},
        "password": PASSWORD,
        "users": [
            {
                "username": m.user.username,
                "name": m.user.get_full_name(),
                "role": m.role,
                "email": m.user.email,
            }
            for m in people
        ],
        "cases": [
            {"ref": c.ref, "client": c.client.name, "state": c.state}
            for c in cases(org).order_by("ref")
        ],
    }


class _Loader:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.today = clock.today()
        self.actors: dict[str, Actor] = {}
        self.clients: dict[str, Any] = {}
        self.contracts: dict[str, list[Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}

    def run(self) -> Organization:
        stages = (
            self._people,
            self._clients,
            self._closed_case,
            self._closing_case,
            self._harbourview,
            self._kestrel,
            self._cancelled_and_draft,
        )
        for done, (label, stage) in enumerate(zip(STAGES, stages, strict=True)):
            self.progress(label, done, len(STAGES))
            stage()
        self.progress("Done", len(STAGES), len(STAGES))
        return self.org

    # --- helpers ------------------------------------------------------------------------------

    def day(self, offset: int) -> dt.date:
        return self.today + dt.timedelta(days=offset)

    def at(self, offset: int, hour: int = 10) -> dt.datetime:
        return dt.datetime.combine(self.day(offset), dt.time(hour, 0), tzinfo=dt.UTC)

    def file(self, by: str, name: str, title: str, *lines: str) -> EvidenceFile:
        content = pdf(title, [*lines, "", f"Brightline Digital - {ORG_NAME} client operations"])
        return store_file(actor=self.actors[by], stream=io.BytesIO(content), name=name)

    def open(self, key: str, trigger: str, trigger_offset: int, **extra: Any) -> OffboardingCase:
        contracts = self.contracts[key]
        version = suggest_playbook(self.org, contracts[0].service_type)
        if version is None:
            raise RuntimeError(f"no playbook for {contracts[0].service_type}")
        return open_case(
            actor=self.actors["alice"],
            client=self.clients[key],
            contracts=contracts,
            trigger=trigger,
            trigger_date=self.day(trigger_offset),
            owner_id=self.actors["alice"].user.pk,
            playbook_version=version,
            **extra,
        )

    def worker(self, case: OffboardingCase, step: Step) -> Actor:
        """The step's owner if their role may work steps, else the case owner."""
        actor = next(a for a in self.actors.values() if a.user.pk == step.owner_id)
        return actor if can(actor, "cases.work") else self.actors["alice"]

    def complete(self, case: OffboardingCase, key: str, note: str = "", **given: Any) -> Step:
        """Complete a step with evidence of each kind its playbook asks for."""
        step = get_step(case, key)
        actor = self.worker(case, step)
        kinds = step.evidence_required
        client_key = next(k for k, c in self.clients.items() if c.pk == case.client_id)
        contact = self.contacts[client_key]["primary"]
        evidence = given.pop("evidence", None)
        if evidence is None and "file" in kinds:
            evidence = [
                self.file(
                    actor.user.username,
                    f"{case.ref}-{key}.pdf",
                    step.title,
                    f"Case {case.ref} - {self.clients[client_key].name}",
                    f"Step: {key}",
                    f"Recorded by {actor.display_name} on {self.today.isoformat()}",
                )
            ]
        if "note" in kinds and not note:
            note = f"{step.title}: done; details are in the case file."
        if "client_ack" in kinds and not note:
            note = f"{contact.name} ({contact.email}) acknowledged receipt in writing."
        if "link" in kinds:
            given.setdefault("link", f"https://files.{EMAIL_DOMAIN}/cases/{case.ref}/{key}")
        if "attestation" in kinds:
            given.setdefault(
                "attestation",
                f"I confirm that '{step.title}' was carried out as described. {actor.display_name}",
            )
        return complete_step(actor=actor, step=step, evidence=evidence or [], note=note, **given)

    # --- stages -------------------------------------------------------------------------------

    def _people(self) -> None:
        self.org = create_organization(slug=ORG_SLUG, name=ORG_NAME)
        admin: Actor | None = None
        for username, role, first, last in PEOPLE:
            m = create_user(
                actor=admin,
                org=self.org,
                username=username,
                role=role,
                password=PASSWORD,
                email=f"{username}@{EMAIL_DOMAIN}",
                first_name=first,
                last_name=last,
                # alice also gets the Django admin (read-only for cases) to look behind the scenes
                is_superuser=username == "alice",
            )
            self.actors[username] = Actor.from_membership(m, auth_method="demo")
            admin = admin or self.actors[username]
        install_builtin_playbooks(actor=self.actors["alice"])

    def _clients(self) -> None:
        alice = self.actors["alice"]
        for seed in CLIENTS:
            client = create_client(
                actor=alice, name=seed.name, legal_name=seed.legal_name, reference=seed.reference
            )
            self.clients[seed.key] = client
            self.contacts[seed.key] = {}
            for full_name, role in zip(seed.contacts, CONTACT_ROLES, strict=True):
                first, last = full_name.lower().split(" ", 1)
                self.contacts[seed.key][role] = add_contact(
                    actor=alice,
                    client=client,
                    name=full_name,
                    role=role,
                    email=f"{first}.{last.replace(' ', '')}@{seed.domain}",
                )
            self.contracts[seed.key] = [
                create_contract(
                    actor=alice,
                    client=client,
                    reference=ref,
                    title=title,
                    service_type=service_type,
                    fee_type=fee_type,
                    start_date=self.day(start),
                    end_date=self.day(end) if end is not None else None,
                    notice_period_days=notice,
                    notice_received_at=self.at(received, 9) if received is not None else None,
                    data_return_window_days=30,
                    retention_terms="Invoices and contract records kept 6 years after the end "
                    "of the financial year; all other client data returned or deleted.",
                )
                for ref, title, service_type, fee_type, start, end, notice, received in seed.contracts
            ]

    def _settle(self, case: OffboardingCase, key: str, invoice: tuple[str, str]) -> OffboardingCase:
        """Work every register item and step the way the team would, ready to enter closing."""
        case = fresh(case)
        self._deliver(case, key)
        self._hand_over(case, key)
        self._revoke_access(case)
        self._dispose_of_data(case)
        self._settle_accounts(case, key, invoice)
        self._finish_steps(case)
        return fresh(case)

    def _deliver(self, case: OffboardingCase, key: str) -> None:
        alice, oscar = self.actors["alice"], self.actors["oscar"]
        client, contact = self.clients[key], self.contacts[key]["primary"]
        for n, d in enumerate(case.deliverables.all(), start=1):
            sent = self.file(
                "oscar",
                f"{case.ref}-deliverable-{n}.pdf",
                d.title,
                f"Delivered to {client.name} for case {case.ref}.",
                "Files listed with their SHA-256 in the delivery manifest.",
            )
            update_register_item(
                actor=oscar,
                item=d,
                evidence=[sent],
                values={
                    "status": "delivered",
                    "delivery_method": "Client portal upload with manifest",
                },
            )
            update_register_item(
                actor=alice,
                item=d,
                values={
                    "status": "accepted",
                    "acceptance_note": f"Accepted by {contact.name} by email ({contact.email}).",
                },
            )

    def _hand_over(self, case: OffboardingCase, key: str) -> None:
        alice, oscar = self.actors["alice"], self.actors["oscar"]
        client, tech = self.clients[key], self.contacts[key]["technical"]
        for h in case.handover_items.all():
            update_register_item(
                actor=oscar,
                item=h,
                values={
                    "status": "handed_over",
                    "new_owner": f"{tech.name}, {client.name}",
                    "method": h.method or "Transferred to the client's own account",
                },
            )
            update_register_item(
                actor=alice,
                item=h,
                values={"status": "acknowledged", "notes": f"Acknowledged by {tech.name}."},
            )

    def _revoke_access(self, case: OffboardingCase) -> None:
        """Transfers first, our own access revoked last, each revocation verified."""
        oscar = self.actors["oscar"]
        grants = sorted(case.access_grants.all(), key=lambda g: g.planned_action != "transfer")
        for n, g in enumerate(grants):
            if g.planned_action == AccessGrant.PlannedAction.TRANSFER:
                update_register_item(actor=oscar, item=g, values={"status": "transferred"})
                continue
            if g.planned_action == AccessGrant.PlannedAction.KEEP:
                grant_waiver(
                    actor=self.actors["bob"],
                    case=case,
                    target_type="access_grant",
                    target_id=g.pk,
                    expires_at=self.at(90),
                    justification="The client asked us to keep read-only access for "
                    "90 days of warranty support.",
                )
                continue
            update_register_item(actor=oscar, item=g, values={"status": "revoked"})
            if n % 3 == 2:
                shot = self.file(
                    "oscar",
                    f"{case.ref}-access-{g.pk}.pdf",
                    f"Revocation statement: {g.system}",
                    f"Principal: {g.principal}",
                    "Screenshot of the user list after removal attached to the ticket.",
                )
                update_register_item(
                    actor=oscar, item=g, evidence=[shot], values={"verification_level": "attested"}
                )
            else:
                update_register_item(
                    actor=oscar,
                    item=g,
                    values={
                        "verification_level": "observed",
                        "verification_note": f"Re-read the user list of {g.system} after revoking: "
                        f"no Brightline principal remains ({g.principal}).",
                    },
                )

    def _dispose_of_data(self, case: OffboardingCase) -> None:
        oscar = self.actors["oscar"]
        for data in case.data_dispositions.all():
            if data.action == DataDisposition.Action.RETAIN:
                continue
            title = "Data return receipt" if data.action == "return" else "Certificate of deletion"
            proof = self.file(
                "oscar",
                f"{case.ref}-data-{data.pk}.pdf",
                f"{title}: {data.dataset}",
                f"Location: {data.location}",
                f"Method: {data.method or 'export'}",
            )
            update_register_item(
                actor=oscar,
                item=data,
                evidence=[proof],
                values={"status": "done", "method": data.method or "export"},
            )

    def _settle_accounts(self, case: OffboardingCase, key: str, invoice: tuple[str, str]) -> None:
        dave, client = self.actors["dave"], self.clients[key]
        amount, reference = invoice
        for s in case.settlements.all():
            if s.kind != "final_invoice":
                update_register_item(
                    actor=dave,
                    item=s,
                    values={
                        "status": "written_off",
                        "amount": "0.00",
                        "currency": "GBP",
                        "notes": "Nothing was prepaid beyond the end date; no balance remains.",
                    },
                )
                continue
            receipt = self.file(
                "dave",
                f"{case.ref}-{s.kind}.pdf",
                f"Remittance: {reference}",
                f"Amount: GBP {amount}",
                f"Client: {client.name}",
            )
            update_register_item(
                actor=dave,
                item=s,
                evidence=[receipt],
                values={
                    "status": "paid",
                    "amount": amount,
                    "currency": "GBP",
                    "reference": reference,
                    "zero_balance_confirmed": True,
                },
            )

    def _finish_steps(self, case: OffboardingCase) -> None:
        """Settle every open step in dependency order: optional ones may not apply."""
        steps = list(Step.objects.filter(case=case).order_by("position"))
        settled = {s.key for s in steps if s.status in ("done", "not_applicable")}
        pending = [s for s in steps if s.key not in settled]
        while pending:
            ready = [s for s in pending if all(dep in settled for dep in s.depends_on)]
            if not ready:
                raise RuntimeError(f"steps never become ready: {[s.key for s in pending]}")
            for s in ready:
                if not s.required and s.key in NOT_APPLICABLE:
                    mark_step_not_applicable(
                        actor=self.actors["alice"], step=s, reason=NOT_APPLICABLE[s.key]
                    )
                else:
                    self.complete(case, s.key)
                settled.add(s.key)
                pending.remove(s)

    def _closed_case(self) -> None:
        case = self.open(
            "northgate",
            "contract_expiry",
            -120,
            trigger_notes="Fixed-fee relaunch campaign and paid social both end "
            "on the contract end date; the client confirmed it will not renew.",
        )
        case = self._settle(case, "northgate", ("24850.00", "INV-2025-0412"))
        enter_closing(actor=self.actors["alice"], case=case)
        digest = state_digest(fresh(case))
        approve_case(
            actor=self.actors["bob"],
            case=case,
            decision="approved",
            state_digest_seen=digest,
            comment="Checked deliverables and access: complete.",
        )
        approve_case(
            actor=self.actors["carol"],
            case=case,
            decision="approved",
            state_digest_seen=digest,
            comment="Final invoice paid; data certificates on file.",
        )
        with receipts.inline():  # no background thread: the receipt goes out before the addendum
            close_case(actor=self.actors["alice"], case=case)
        receipt = ClosureReceipt.objects.get(case=case)
        receipts.process_pending(receipt_id=receipt.pk, connection=demo_mail())
        copy = self.file(
            "alice",
            f"{case.ref}-report-resent.pdf",
            "Final campaign report (copy)",
            "Sent again on request of the client's auditors.",
        )
        add_addendum(
            actor=self.actors["alice"],
            case=case,
            evidence=[copy],
            text="Northgate's finance team asked for another copy of the final campaign "
            "report for their auditors; sent from the archived copy (attached). "
            "Nothing else changed.",
        )

    def _closing_case(self) -> None:
        case = self.open(
            "pemberton",
            "contract_expiry",
            -45,
            trigger_notes="Phase 2 of the portal build ends with the contract; "
            "the client's own team takes over maintenance.",
        )
        case = self._settle(case, "pemberton", ("38400.00", "INV-2025-0457"))
        enter_closing(actor=self.actors["alice"], case=case)
        approve_case(
            actor=self.actors["bob"],
            case=case,
            decision="approved",
            state_digest_seen=state_digest(fresh(case)),
            comment="Repositories transferred and secrets rotated; looks complete.",
        )

    def _harbourview(self) -> None:
        alice, bob, oscar = self.actors["alice"], self.actors["bob"], self.actors["oscar"]
        notice = self.file(
            "alice",
            "harbourview-termination-notice.pdf",
            "Termination notice - Harbourview Hotels Group",
            "We give 60 days' notice to end the paid media and SEO retainer.",
        )
        case = self.open(
            "harbourview",
            "termination_by_client",
            -21,
            trigger_evidence=[notice],
            trigger_notes="Termination notice by email from Olivia Grant, "
            "giving the contractual 60 days.",
        )
        self.complete(case, "confirm_notice")
        self.complete(case, "send_non_renewal_notice")
        self.complete(
            case,
            "exit_kickoff",
            note="Kickoff held: no new insertion orders after today; Bob speaks to "
            "the client; #exit-harbourview is the channel.",
        )
        # Started but not finished: its due date (trigger + 7 days) has passed, so it is overdue.
        start_step(actor=oscar, step=get_step(case, "inventory_accounts"))
        creative = fresh(case).deliverables.get(title__startswith="Outstanding creative")
        grant_waiver(
            actor=bob,
            case=case,
            target_type="deliverable",
            target_id=creative.pk,
            expires_at=self.at(180),
            justification="Olivia Grant agreed by email that the three remaining "
            "summer banners are cancelled and will not be invoiced.",
        )
        update_register_item(
            actor=alice,
            item=creative,
            values={"status": "waived", "notes": "Cancelled by agreement; see the waiver."},
        )
        console = fresh(case).handover_items.get(name="Google Search Console property")
        update_register_item(
            actor=oscar,
            item=console,
            values={"status": "handed_over", "new_owner": "Ben Carter, Harbourview Hotels Group"},
        )

    def _kestrel(self) -> None:
        alice, oscar, dave = self.actors["alice"], self.actors["oscar"], self.actors["dave"]
        case = self.open(
            "kestrel",
            "non_renewal",
            -50,
            trigger_notes="Kestrel chose an in-house IT team and gave notice "
            "not to renew at the end of the term.",
        )
        for key in ("confirm_notice", "send_non_renewal_notice"):
            self.complete(case, key)
        self.complete(
            case,
            "transition_plan",
            note="Agreed with Sam Nakamura: cut-over weekend before the end date, "
            "admin control first, our agents removed last.",
        )
        for key in (
            "inventory_estate",
            "handover_documentation",
            "transfer_admin_control",
            "transfer_licences",
        ):
            self.complete(case, key)
        start_step(actor=oscar, step=get_step(case, "transfer_domains_dns"))
        case = fresh(case)
        grants = {g.system: g for g in case.access_grants.all()}
        update_register_item(
            actor=oscar,
            item=grants["Shared break-glass accounts"],
            values={"status": "transferred"},
        )
        firewall = grants["Firewall, VPN and switches"]
        update_register_item(actor=oscar, item=firewall, values={"status": "revoked"})
        update_register_item(
            actor=oscar,
            item=firewall,
            values={
                "verification_level": "observed",
                "verification_note": "Listed administrators over the firewall's REST API after "
                "removal: bl-admin and bl-vpn are gone; VPN profile 'brightline-support' deleted.",
            },
        )
        directory = grants["On-premises Active Directory"]
        update_register_item(actor=oscar, item=directory, values={"status": "revoked"})
        shot = self.file(
            "oscar",
            f"{case.ref}-domain-admins.pdf",
            "Domain Admins membership after removal",
            "Members: KF-Admin, svc-backup (client-owned). No Brightline accounts.",
        )
        update_register_item(
            actor=oscar, item=directory, evidence=[shot], values={"verification_level": "attested"}
        )
        items = {h.name: h for h in case.handover_items.all()}
        docs = items["IT documentation export (diagrams, asset list, runbooks, vendor contacts)"]
        update_register_item(
            actor=oscar,
            item=docs,
            values={"status": "handed_over", "new_owner": "Sam Nakamura, Kestrel Freight"},
        )
        update_register_item(actor=alice, item=docs, values={"status": "acknowledged"})
        for name in (
            "Break-glass and privileged admin credentials",
            "Microsoft 365 CSP subscriptions",
        ):
            update_register_item(
                actor=oscar,
                item=items[name],
                values={"status": "handed_over", "new_owner": "Sam Nakamura, Kestrel Freight"},
            )
        backup = case.data_dispositions.get(dataset="Final full backup")
        receipt = self.file(
            "oscar",
            f"{case.ref}-backup-return.pdf",
            "Final backup handed over",
            "Backup vault restored into the client's Azure subscription.",
        )
        update_register_item(
            actor=oscar, item=backup, evidence=[receipt], values={"status": "done"}
        )
        invoice = case.settlements.get(kind="final_invoice")
        update_register_item(
            actor=dave,
            item=invoice,
            values={"amount": "8640.00", "currency": "GBP", "reference": "INV-2025-0471"},
        )

    def _cancelled_and_draft(self) -> None:
        alice = self.actors["alice"]
        case = self.open("meridian", "termination_by_client", -30)
        self.complete(case, "confirm_notice")
        cancel_case(
            actor=alice,
            case=case,
            reason="Meridian withdrew its termination notice: the engagement continues "
            "under amendment BD-CON-2025-011-A1 with quarterly advisory days only.",
        )
        self.open(
            "alder",
            "scope_reduction",
            -3,
            draft=True,
            scope="partial",
            scope_notes="Only VAT returns and payroll move to the client's new in-house "
            "finance team; bookkeeping stays with us.",
            trigger_notes="Email from Helen Morris (finance) announcing the in-house hire.",
        )
