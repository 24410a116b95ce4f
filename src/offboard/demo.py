"""The demo organization "Brightline Digital": its people, clients and a case in every state.

Everything is loaded through the service functions, so every change is an event, exactly as if
the team had done the work. Dates are relative to today, and the work happens when a team
would have done it: the clock is pinned to four months ago and moved forward only
(`clock.pinned`), so the closed case's deliverables are accepted on different days, its
handover takes a week, access is revoked near the end date and the invoice is paid weeks
later — and the organization's log stays in time order across every case. The cases' stories
are in `demo_cases.py`. Needs Django set up; used by `offboard demo` and `make run`.
"""

import datetime as dt
import heapq
import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.core.management import call_command
from django.test.utils import override_settings

from offboard.accounts.models import Organization
from offboard.accounts.selectors import members
from offboard.accounts.services import create_organization, create_user
from offboard.cases.models import OffboardingCase, Step
from offboard.cases.selectors import cases, get_step
from offboard.cases.services import complete_step, mark_step_not_applicable, open_case
from offboard.clients.services import add_contact, create_client, create_contract
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.permissions import can
from offboard.demo_directory import DemoDirectory, demo_directory
from offboard.evidence.models import EvidenceFile
from offboard.evidence.services import store_file
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
# When the organization starts using Offboard, in days from today: before every case.
START_DAY = -130

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


LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
FILEBASED = "django.core.mail.backends.filebased.EmailBackend"


def demo_mail() -> Any:
    """The demo's clients are fictitious: their closure receipt never goes through a real
    mail server. It is written under var/mail (file backend), or kept in memory in tests."""
    if settings.EMAIL_BACKEND == LOCMEM:
        return get_connection()
    return get_connection(FILEBASED)


@contextmanager
def demo_mailbox() -> Iterator[None]:
    """Mail the portal sends the demo's contacts (confirmations) goes where `demo_mail` does."""
    if settings.EMAIL_BACKEND == LOCMEM:
        yield
        return
    with override_settings(EMAIL_BACKEND=FILEBASED):
        yield


def load_demo(reset: bool = False, *, progress: Progress | None = None) -> dict[str, Any]:
    """Load the demo unless it is there already. `reset` first erases the WHOLE database."""
    if reset:
        call_command("flush", interactive=False, verbosity=0)
    else:
        existing = Organization.objects.filter(slug=ORG_SLUG).first()
        if existing is not None:
            return summary(existing, created=False)
    org = Loader(progress or (lambda stage, done, total: None)).run()
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


class Loader:
    """Builds the demo: people and clients first, then every case's story as actions on one
    agenda, run in time order with the clock pinned to each action's time."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.now = clock.now()  # the real time: the demo's history ends before it
        self.today = self.now.date()
        self.actors: dict[str, Actor] = {}
        self.clients: dict[str, Any] = {}
        self.contracts: dict[str, list[Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.cases: dict[str, OffboardingCase] = {}
        self.agenda: list[tuple[dt.datetime, int, str, Callable[[], Any]]] = []
        self.order = itertools.count()
        self.done = 0
        self.directory: DemoDirectory | None = None

    def run(self) -> Organization:
        from offboard import demo_cases

        with (
            clock.pinned(self.at(START_DAY, 9)) as self.timeline,
            demo_mailbox(),
            demo_directory() as self.directory,
        ):
            self.progress(STAGES[0], 0, len(STAGES))
            self._people()
            self.timeline.advance(minutes=45)
            self.progress(STAGES[1], 1, len(STAGES))
            self._clients()
            demo_cases.plan(self)
            while self.agenda:
                when, _, label, action = heapq.heappop(self.agenda)
                self.timeline.to(when)  # forward only: an action planned in the past fails here
                action()
                self.done += 1
                self.progress(label, self.done, self.done + len(self.agenda))
        self.progress("Done", len(STAGES), len(STAGES))
        return self.org

    # --- helpers ------------------------------------------------------------------------------

    def day(self, offset: int) -> dt.date:
        return self.today + dt.timedelta(days=offset)

    def moment(self, offset: int, hour: int = 10, minute: int = 0) -> dt.datetime:
        """`offset` days from today, at hour:minute UTC."""
        return dt.datetime.combine(self.day(offset), dt.time(hour, minute), tzinfo=dt.UTC)

    def at(self, offset: int, hour: int = 10, minute: int = 0) -> dt.datetime:
        """A moment of the demo's history: always before the real now."""
        moment = self.moment(offset, hour, minute)
        if moment >= self.now:
            raise ValueError(f"the demo's history must end before now; {moment} is not past")
        return moment

    def later(self, when: dt.datetime, label: str, action: Callable[[], Any]) -> None:
        """Do `action` at `when` (not before anything already done)."""
        heapq.heappush(self.agenda, (when, next(self.order), label, action))

    def file(self, by: str, name: str, title: str, *lines: str) -> EvidenceFile:
        content = pdf(title, [*lines, "", f"Brightline Digital - {ORG_NAME} client operations"])
        return store_file(actor=self.actors[by], stream=io.BytesIO(content), name=name)

    def open(self, key: str, trigger: str, trigger_offset: int, **extra: Any) -> OffboardingCase:
        contracts = self.contracts[key]
        version = suggest_playbook(self.org, contracts[0].service_type)
        if version is None:
            raise RuntimeError(f"no playbook for {contracts[0].service_type}")
        case = open_case(
            actor=self.actors["alice"],
            client=self.clients[key],
            contracts=contracts,
            trigger=trigger,
            trigger_date=self.day(trigger_offset),
            owner_id=self.actors["alice"].user.pk,
            playbook_version=version,
            **extra,
        )
        self.cases[key] = case
        return case

    def worker(self, case: OffboardingCase, step: Step) -> Actor:
        """The step's owner if their role may work steps, else the case owner."""
        actor = next(a for a in self.actors.values() if a.user.pk == step.owner_id)
        return actor if can(actor, "cases.work") else self.actors["alice"]

    def complete(self, case: OffboardingCase, key: str, note: str = "", **given: Any) -> Step:
        """Complete a step with evidence of each kind its playbook asks for (unless settling
        the register items it is about has completed it already)."""
        step = get_step(case, key)
        if step.status == Step.Status.DONE and step.settled_by:
            return step
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
                    f"Recorded by {actor.display_name} on {clock.today().isoformat()}",
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

    def finish_steps(self, case: OffboardingCase, label: str, *, by: dt.datetime) -> dt.datetime:
        """Plan every open step of the case for its due date (16:00), after the steps it depends
        on and no later than `by` — optional ones that do not apply are marked so. Returns when
        the last one is done."""
        steps = list(Step.objects.filter(case=case).order_by("position"))
        opened = clock.now()
        planned: dict[str, dt.datetime] = {
            s.key: opened for s in steps if s.status in ("done", "not_applicable")
        }
        pending = [s for s in steps if s.key not in planned]
        while pending:
            ready = [s for s in pending if all(dep in planned for dep in s.depends_on)]
            if not ready:
                raise RuntimeError(f"steps never become ready: {[s.key for s in pending]}")
            for s in ready:
                due = dt.datetime.combine(s.due_date, dt.time(16, 0), tzinfo=dt.UTC)
                after = max([opened, *(planned[d] for d in s.depends_on)])
                planned[s.key] = max(min(due, by), after + dt.timedelta(hours=1))
                self.later(planned[s.key], label, self._settle_step(case, s))
                pending.remove(s)
        return max(planned.values(), default=opened)

    def _settle_step(self, case: OffboardingCase, step: Step) -> Callable[[], Any]:
        def settle() -> Any:
            if not step.required and step.key in NOT_APPLICABLE:
                return mark_step_not_applicable(
                    actor=self.actors["alice"], step=step, reason=NOT_APPLICABLE[step.key]
                )
            return self.complete(case, step.key)

        return settle

    # --- people and clients -------------------------------------------------------------------

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
