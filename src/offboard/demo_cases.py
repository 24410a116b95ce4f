"""The demo's cases as stories: each action is planned on the loader's agenda (demo.py) for the
day a team would have done it, and the loader runs them all in time order.

Days count from today; a case's work is planned around its effective end date `E`. The closed
case (Northgate) runs from four months ago: deliverables accepted on different days, the
handover over a week, access revoked around `E` (their access to us first, ours to them
last), data deleted after it was returned, the invoice paid weeks later. Its facts come from
every source a team has: the client's contact acknowledges part of the handover in the portal,
staff record the rest (some days late, with the time it happened), one revocation is confirmed
by the vendor's document, the others attested with a screenshot.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings

from offboard.cases.models import AccessGrant, DataDisposition, OffboardingCase
from offboard.cases.selectors import get_step
from offboard.cases.services import (
    add_addendum,
    approve_case,
    cancel_case,
    close_case,
    enter_closing,
    grant_waiver,
    start_step,
    update_register_item,
)
from offboard.cases.state import fresh, state_digest
from offboard.notifications import receipts
from offboard.notifications.models import ClosureReceipt
from offboard.portal.selectors import entries, link_for_token, manifest, manifest_digest
from offboard.portal.services import acknowledge_items, base_url_for, issue_portal_link

if TYPE_CHECKING:
    from offboard.demo import Loader

# How the demo's client contact's browser shows up in the portal's record.
CLIENT_IP = "203.0.113.42"
CLIENT_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Safari/605.1.15"
)


def plan(demo: "Loader") -> None:
    """Open each case on its day; each opening plans the rest of its story."""
    from offboard.demo import STAGES

    demo.later(demo.at(-119, 9, 30), STAGES[2], lambda: northgate(demo, STAGES[2]))
    demo.later(demo.at(-49, 9), STAGES[5], lambda: kestrel(demo, STAGES[5]))
    demo.later(demo.at(-44, 9, 15), STAGES[3], lambda: pemberton(demo, STAGES[3]))
    demo.later(demo.at(-29, 10), STAGES[6], lambda: meridian(demo, STAGES[6]))
    demo.later(demo.at(-20, 10), STAGES[4], lambda: harbourview(demo, STAGES[4]))
    demo.later(demo.at(-2, 11), STAGES[6], lambda: alder(demo))


@dataclass
class Story:
    """One case's plan: its days are counted from the effective end date `end` (days from
    today); `data_days` are when data is returned (the first) and deleted (the others)."""

    demo: "Loader"
    case: OffboardingCase
    key: str
    label: str
    end: int
    data_days: tuple[int, ...]
    write_off_day: int
    paid_day: int
    paid_recorded_day: int | None = None  # recorded later than it happened: a late entry
    portal_contact: str = ""  # the contact who answers in the portal, by role
    portal_items: dict[str, list[int]] = field(default_factory=dict)  # register → item ids
    vendor_confirmed: str = ""  # the system whose revocation the vendor confirms
    connector: bool = False  # their first access revoked by the SCIM connector
    connection: Any = None

    def on(self, days: int, hour: int = 10, minute: int = 0) -> dt.datetime:
        return self.demo.at(self.end + days, hour, minute)

    def do(self, when: dt.datetime, action: Callable[[], Any]) -> None:
        self.demo.later(when, self.label, action)

    def actor(self, username: str) -> Any:
        return self.demo.actors[username]


def _update(actor: Any, item: Any, values: dict[str, Any], evidence: Any = ()) -> Any:
    """Change one item as it stands when the action runs (not as it was when planned)."""
    current = type(item).objects.get(pk=item.pk)
    return update_register_item(actor=actor, item=current, values=values, evidence=list(evidence))


# --- the registers, worked around the end date -------------------------------------------------


def deliver(story: Story) -> None:
    """Deliverables go out over the last weeks, each accepted a few days later; one the client
    accepts in the portal (if the story has a portal contact), the others by email."""
    demo, case = story.demo, story.case
    client, contact = demo.clients[story.key], demo.contacts[story.key]["primary"]
    in_portal = set(story.portal_items.get("deliverables", []))
    for n, d in enumerate(case.deliverables.order_by("id")):
        sent_day = min(-18 + 5 * n, -3) if d.pk not in in_portal else 2

        def send(d: Any = d, n: int = n) -> None:
            sent = demo.file(
                "oscar",
                f"{case.ref}-deliverable-{n + 1}.pdf",
                d.title,
                f"Delivered to {client.name} for case {case.ref}.",
                "Files listed with their SHA-256 in the delivery manifest.",
            )
            _update(
                story.actor("oscar"),
                d,
                {"status": "delivered", "delivery_method": "Client portal upload with manifest"},
                [sent],
            )

        story.do(story.on(sent_day, 11, 5 * n), send)
        if d.pk in in_portal:
            continue
        accept = {
            "status": "accepted",
            "acceptance_note": f"Accepted by {contact.name} by email ({contact.email}).",
        }
        story.do(
            story.on(sent_day + 1 + n % 3, 15, 10 * n),
            partial(_update, story.actor("alice"), d, accept),
        )


def hand_over(story: Story) -> None:
    """The handover takes a week before the end date; the client acknowledges some items in
    the portal, staff record the others — the last few days after it happened."""
    demo, case = story.demo, story.case
    client, tech = demo.clients[story.key], demo.contacts[story.key]["technical"]
    items = list(case.handover_items.order_by("id"))
    in_portal = set(story.portal_items.get("handover_items", []))
    staff_acks = [h for h in items if h.pk not in in_portal]
    late = staff_acks[len(staff_acks) // 2 :] if in_portal else []
    for n, h in enumerate(items):
        day = -9 + (8 * n) // max(1, len(items) - 1)
        handed = {
            "status": "handed_over",
            "new_owner": f"{tech.name}, {client.name}",
            "method": h.method or "Transferred to the client's own account",
        }
        story.do(
            story.on(day, 10, 7 * (n % 6)),
            partial(_update, story.actor("oscar"), h, handed),
        )
        if h.pk in in_portal:
            continue
        if h in late:
            values = {
                "status": "acknowledged",
                "acknowledged_at": story.on(2, 15),
                "notes": f"{tech.name} confirmed receipt by email; recorded when the email was "
                "filed to the case.",
            }
            when = story.on(9, 10, 5 * n)
        else:
            values = {"status": "acknowledged", "notes": f"Acknowledged by {tech.name}."}
            when = story.on(day + 1, 16, 5 * n)
        story.do(when, partial(_update, story.actor("alice"), h, values))


def client_answers(story: Story) -> None:
    """A portal link to the client's contact, and their acknowledgement through it the next
    morning: the page they saw (its manifest digest) and their typed name go on the record."""
    demo, case = story.demo, story.case
    contact = demo.contacts[story.key][story.portal_contact]
    wanted = {(register, pk) for register, ids in story.portal_items.items() for pk in ids}
    issued: list[Any] = []

    def send_link() -> None:
        base = base_url_for(f"http://{settings.SITE_HOST}")
        issued.append(
            issue_portal_link(actor=story.actor("alice"), case=case, contact=contact, base_url=base)
        )

    def acknowledge() -> None:
        token = issued[0].url.rstrip("/").rsplit("/", 1)[1]
        link = link_for_token(token)  # what opening the emailed URL does
        if link is None:
            raise RuntimeError("the demo's portal link does not open")
        shown = manifest(link.case)
        keys = [e.key for e in entries(shown) if (e.register, e.data["id"]) in wanted]
        acknowledge_items(
            link=link,
            items=keys,
            typed_name=contact.name,
            confirmed=True,
            manifest_sha256=manifest_digest(shown),
            ip=CLIENT_IP,
            user_agent=CLIENT_AGENT,
        )

    story.do(story.on(3, 14), send_link)
    story.do(story.on(4, 9, 12), acknowledge)


def revoke_access(story: Story) -> None:
    """Transfers first; their access to our systems the day before the end date; ours to
    theirs last, the day after. Each revocation is verified: attested with a screenshot, or
    (one) confirmed by the vendor's own document a few days later."""
    demo, case = story.demo, story.case
    oscar = story.actor("oscar")
    grants = list(case.access_grants.order_by("id"))
    transfers = [g for g in grants if g.planned_action == AccessGrant.PlannedAction.TRANSFER]
    keeps = [g for g in grants if g.planned_action == AccessGrant.PlannedAction.KEEP]
    revokes = [g for g in grants if g.planned_action == AccessGrant.PlannedAction.REVOKE]
    theirs = [g for g in revokes if g.direction == AccessGrant.Direction.CLIENT_IN_PROVIDER]
    ours = [g for g in revokes if g.direction == AccessGrant.Direction.PROVIDER_IN_CLIENT]
    for n, g in enumerate(transfers):
        story.do(
            story.on(-3, 11 + n),
            partial(_update, oscar, g, {"status": "transferred"}),
        )
    for g in keeps:

        def keep(g: Any = g) -> None:
            grant_waiver(
                actor=story.actor("bob"),
                case=case,
                target_type="access_grant",
                target_id=g.pk,
                expires_at=demo.moment(90),
                justification="The client asked us to keep read-only access for "
                "90 days of warranty support.",
            )

        story.do(story.on(-3, 15), keep)
    planned = [(g, story.on(-1, 14 + n)) for n, g in enumerate(theirs)]
    planned += [(g, story.on(1, 10 + n)) for n, g in enumerate(ours)]
    by_connector = theirs[0] if story.connector and theirs else None
    if by_connector is not None and demo.directory is not None:
        connector_revokes(story, by_connector, story.on(-1, 14))
        planned = [(g, when) for g, when in planned if g is not by_connector]
    for g, when in planned:
        story.do(when, partial(_update, oscar, g, {"status": "revoked"}))
        if story.vendor_confirmed and story.vendor_confirmed in g.system:
            story.do(story.on(3, 11), partial(vendor_confirms, story, g))
            continue

        def attest(g: Any = g) -> None:
            shot = demo.file(
                "oscar",
                f"{case.ref}-access-{g.pk}.pdf",
                f"Revocation statement: {g.system}",
                f"Principal: {g.principal}",
                "Screenshot of the user list after removal attached to the ticket.",
            )
            values = {
                "verification_level": "attested",
                "verification_note": f"Checked the user list of {g.system} after revoking: "
                f"no Brightline principal remains ({g.principal}). Screenshot attached.",
            }
            _update(oscar, g, values, [shot])

        story.do(when + dt.timedelta(minutes=40), attest)


def connector_revokes(story: Story, grant: AccessGrant, when: dt.datetime) -> None:
    """The demo directory (a real SCIM server while the demo loads) holds the client's
    account; the SCIM connector deactivates it, removes it from its group and reads it back:
    the grant is revoked and *observed*, with the reads as evidence."""
    from offboard.connectors.services import create_connection, run_revoke

    demo, case = story.demo, story.case
    directory = demo.directory
    assert directory is not None
    login = grant.principal or f"{story.key}-client"
    user = directory.user(login, f"{case.client.name} team")
    directory.group(f"{case.client.name} — shared workspace", [user])

    def connect() -> None:
        story.connection = create_connection(
            actor=demo.actors["alice"],
            name="Demo directory (SCIM)",
            kind="scim",
            config={"url": directory.url, "attempts": 2, "timeout": 5},
            secret=directory.token,
        )

    def revoke() -> None:
        from unittest import mock

        from offboard.connectors import http, scim
        from offboard.core import clock

        # The connector stamps its calls with the wall clock; the demo's history runs on its
        # pinned clock, so the calls are stamped on that (the SCIM module reads `_now` by name).
        with mock.patch.object(scim, "_now", clock.now), mock.patch.object(http, "_now", clock.now):
            run_revoke(
                actor=story.actor("oscar"),
                case=case,
                grants=[grant],
                connection=story.connection,
                idempotency_key=f"demo-{case.ref}-{grant.pk}",
            )

    story.do(when - dt.timedelta(hours=2), connect)
    story.do(when, revoke)


def vendor_confirms(story: Story, grant: AccessGrant) -> None:
    """The vendor's written confirmation arrives: it verifies the revocation and becomes the
    source of the fact (its document is attached and named)."""
    letter = story.demo.file(
        "oscar",
        f"{story.case.ref}-{grant.system.split()[0].lower()}-confirmation.pdf",
        f"{grant.system}: confirmation of removed partner access",
        f"Case {story.case.ref}. Partner business and staff access removed for {grant.principal}.",
        "Issued by the vendor's business support team on request.",
    )
    _update(
        story.actor("oscar"),
        grant,
        {
            "verification_level": "vendor_confirmed",
            "verification_note": f"{grant.system} support confirmed in writing that the agency's "
            "partner access and staff logins were removed.",
            "source": "vendor_document",
            "source_document": letter.sha256,
            "source_vendor": f"{grant.system.split()[0]} business support",
        },
        [letter],
    )


def dispose_of_data(story: Story) -> None:
    """The client's data is returned first, then deleted where we hold copies."""
    demo, case = story.demo, story.case
    oscar = story.actor("oscar")
    data = [d for d in case.data_dispositions.order_by("id") if d.action != "retain"]
    returns = [d for d in data if d.action == DataDisposition.Action.RETURN]
    deletes = [d for d in data if d.action != DataDisposition.Action.RETURN]
    first, *later = story.data_days
    days = [first] * len(returns) + [later[min(i, len(later) - 1)] for i in range(len(deletes))]
    for n, (d, day) in enumerate(zip(returns + deletes, days, strict=True)):

        def dispose(d: Any = d) -> None:
            title = "Data return receipt" if d.action == "return" else "Certificate of deletion"
            proof = demo.file(
                "oscar",
                f"{case.ref}-data-{d.pk}.pdf",
                f"{title}: {d.dataset}",
                f"Location: {d.location}",
                f"Method: {d.method or 'export'}",
            )
            values = {"status": "done", "method": d.method or "export"}
            _update(oscar, d, values, [proof])

        story.do(story.on(day, 11 + n % 5, 20), dispose)


def settle_accounts(story: Story, invoice: tuple[str, str]) -> None:
    """Credits with nothing to credit are written off; the final invoice is paid weeks after
    the end date (recorded from the bank statement, possibly a day or two later)."""
    demo, case = story.demo, story.case
    dave, client = story.actor("dave"), demo.clients[story.key]
    amount, reference = invoice
    for s in case.settlements.order_by("id"):
        if s.kind != "final_invoice":
            values = {
                "status": "written_off",
                "amount": "0.00",
                "currency": "GBP",
                "notes": "Nothing was prepaid beyond the end date; no balance remains.",
            }
            story.do(
                story.on(story.write_off_day, 11),
                partial(_update, dave, s, values),
            )
            continue
        paid_at = story.on(story.paid_day, 9, 30)

        def pay(s: Any = s, paid_at: dt.datetime = paid_at) -> None:
            receipt = demo.file(
                "dave",
                f"{case.ref}-{s.kind}.pdf",
                f"Remittance: {reference}",
                f"Amount: GBP {amount}",
                f"Client: {client.name}",
            )
            values = {
                "status": "paid",
                "amount": amount,
                "currency": "GBP",
                "reference": reference,
                "zero_balance_confirmed": True,
            }
            if story.paid_recorded_day is not None:
                values["settled_at"] = paid_at
            _update(dave, s, values, [receipt])

        recorded = story.paid_recorded_day
        when = story.on(recorded, 10) if recorded is not None else paid_at
        story.do(when, pay)


def work(story: Story, invoice: tuple[str, str]) -> None:
    deliver(story)
    hand_over(story)
    if story.portal_contact:
        client_answers(story)
    revoke_access(story)
    dispose_of_data(story)
    settle_accounts(story, invoice)


# --- the cases ----------------------------------------------------------------------------------


def northgate(demo: "Loader", label: str) -> None:
    """Closed: the contracts ended 75 days ago; closed three weeks ago, with an addendum since."""
    case = demo.open(
        "northgate",
        "contract_expiry",
        -120,
        trigger_notes="Fixed-fee relaunch campaign and paid social both end "
        "on the contract end date; the client confirmed it will not renew.",
    )
    report = case.deliverables.order_by("id").first()
    handover = list(case.handover_items.order_by("id").values_list("pk", flat=True))
    story = Story(
        demo,
        case,
        "northgate",
        label,
        end=(case.effective_end_date - demo.today).days,
        data_days=(5, 10, 12, 20),
        write_off_day=12,
        paid_day=28,
        paid_recorded_day=30,
        portal_contact="primary",
        portal_items={
            "deliverables": [report.pk] if report else [],
            "handover_items": handover[:4],
        },
        vendor_confirmed="Meta",
        connector=True,
    )
    work(story, ("24850.00", "INV-2025-0412"))
    last_step = demo.finish_steps(case, label, by=story.on(50, 16))
    closing = max(story.on(51, 9), last_step + dt.timedelta(hours=2))
    alice, bob, carol = demo.actors["alice"], demo.actors["bob"], demo.actors["carol"]
    digest: list[str] = []

    def enter() -> None:
        enter_closing(actor=alice, case=case)
        digest.append(state_digest(fresh(case)))

    def approve(actor: Any, comment: str) -> Callable[[], Any]:
        return lambda: approve_case(
            actor=actor,
            case=case,
            decision="approved",
            state_digest_seen=digest[0],
            comment=comment,
        )

    def close() -> None:
        with receipts.inline():  # no background thread: the receipt goes out now
            close_case(actor=alice, case=case)
        receipt = ClosureReceipt.objects.get(case=case)
        from offboard.demo import demo_mail

        receipts.process_pending(receipt_id=receipt.pk, connection=demo_mail())

    def addendum() -> None:
        copy = demo.file(
            "alice",
            f"{case.ref}-report-resent.pdf",
            "Final campaign report (copy)",
            "Sent again on request of the client's auditors.",
        )
        add_addendum(
            actor=alice,
            case=case,
            evidence=[copy],
            text="Northgate's finance team asked for another copy of the final campaign "
            "report for their auditors; sent from the archived copy (attached). "
            "Nothing else changed.",
        )

    demo.later(closing, label, enter)
    demo.later(
        closing + dt.timedelta(hours=2),
        label,
        approve(bob, "Checked deliverables and access: complete."),
    )
    demo.later(
        closing + dt.timedelta(days=1, hours=1, minutes=30),
        label,
        approve(carol, "Final invoice paid; data certificates on file."),
    )
    demo.later(closing + dt.timedelta(days=1, hours=6), label, close)
    demo.later(closing + dt.timedelta(days=9, hours=1), label, addendum)


def pemberton(demo: "Loader", label: str) -> None:
    """Closing: the contract ended eight days ago; one of two approvals given yesterday."""
    case = demo.open(
        "pemberton",
        "contract_expiry",
        -45,
        trigger_notes="Phase 2 of the portal build ends with the contract; "
        "the client's own team takes over maintenance.",
    )
    story = Story(
        demo,
        case,
        "pemberton",
        label,
        end=(case.effective_end_date - demo.today).days,
        data_days=(1, 2, 3),
        write_off_day=3,
        paid_day=4,
    )
    work(story, ("38400.00", "INV-2025-0457"))
    last_step = demo.finish_steps(case, label, by=demo.at(-2, 16))
    closing = max(demo.at(-1, 9), last_step + dt.timedelta(hours=1))

    def enter() -> None:
        enter_closing(actor=demo.actors["alice"], case=case)

    def approve() -> None:
        approve_case(
            actor=demo.actors["bob"],
            case=case,
            decision="approved",
            state_digest_seen=state_digest(fresh(case)),
            comment="Repositories transferred and secrets rotated; looks complete.",
        )

    demo.later(closing, label, enter)
    demo.later(closing + dt.timedelta(hours=5), label, approve)


def harbourview(demo: "Loader", label: str) -> None:
    """Active: the client gave notice three weeks ago; one step is overdue, one deliverable
    waived by agreement."""
    alice, bob, oscar = demo.actors["alice"], demo.actors["bob"], demo.actors["oscar"]
    notice = demo.file(
        "alice",
        "harbourview-termination-notice.pdf",
        "Termination notice - Harbourview Hotels Group",
        "We give 60 days' notice to end the paid media and SEO retainer.",
    )
    case = demo.open(
        "harbourview",
        "termination_by_client",
        -21,
        trigger_evidence=[notice],
        trigger_notes="Termination notice by email from Olivia Grant, "
        "giving the contractual 60 days.",
    )
    demo.later(demo.at(-19, 11), label, lambda: demo.complete(case, "confirm_notice"))
    demo.later(demo.at(-18, 15), label, lambda: demo.complete(case, "send_non_renewal_notice"))
    demo.later(
        demo.at(-17, 10),
        label,
        lambda: demo.complete(
            case,
            "exit_kickoff",
            note="Kickoff held: no new insertion orders after today; Bob speaks to "
            "the client; #exit-harbourview is the channel.",
        ),
    )
    # Started but not finished: its due date (trigger + 7 days) has passed, so it is overdue.
    demo.later(
        demo.at(-15, 9, 30),
        label,
        lambda: start_step(actor=oscar, step=get_step(case, "inventory_accounts")),
    )
    creative = case.deliverables.get(title__startswith="Outstanding creative")
    console = case.handover_items.get(name="Google Search Console property")

    def waive() -> None:
        grant_waiver(
            actor=bob,
            case=case,
            target_type="deliverable",
            target_id=creative.pk,
            expires_at=demo.moment(180),
            justification="Olivia Grant agreed by email that the three remaining "
            "summer banners are cancelled and will not be invoiced.",
        )

    demo.later(demo.at(-10, 14), label, waive)
    demo.later(
        demo.at(-10, 15),
        label,
        lambda: _update(
            alice,
            creative,
            {"status": "waived", "notes": "Cancelled by agreement; see the waiver."},
        ),
    )
    demo.later(
        demo.at(-5, 11),
        label,
        lambda: _update(
            oscar,
            console,
            {"status": "handed_over", "new_owner": "Ben Carter, Harbourview Hotels Group"},
        ),
    )


def kestrel(demo: "Loader", label: str) -> None:
    """Active: notice of non-renewal seven weeks ago, the contract ends in ten days; the
    cut-over is under way."""
    alice, oscar, dave = demo.actors["alice"], demo.actors["oscar"], demo.actors["dave"]
    case = demo.open(
        "kestrel",
        "non_renewal",
        -50,
        trigger_notes="Kestrel chose an in-house IT team and gave notice "
        "not to renew at the end of the term.",
    )

    def step(day: int, key: str, note: str = "") -> None:
        demo.later(demo.at(day, 14), label, lambda: demo.complete(case, key, note=note))

    step(-48, "confirm_notice")
    step(-47, "send_non_renewal_notice")
    step(
        -44,
        "transition_plan",
        "Agreed with Sam Nakamura: cut-over weekend before the end date, "
        "admin control first, our agents removed last.",
    )
    step(-40, "inventory_estate")
    step(-33, "handover_documentation")
    step(-26, "transfer_admin_control")
    step(-19, "transfer_licences")
    demo.later(
        demo.at(-12, 9),
        label,
        lambda: start_step(actor=oscar, step=get_step(case, "transfer_domains_dns")),
    )
    grants = {g.system: g for g in case.access_grants.all()}
    glass = grants["Shared break-glass accounts"]
    firewall = grants["Firewall, VPN and switches"]
    directory = grants["On-premises Active Directory"]
    demo.later(
        demo.at(-10, 10),
        label,
        lambda: _update(oscar, glass, {"status": "transferred"}),
    )
    demo.later(
        demo.at(-9, 10),
        label,
        lambda: _update(oscar, firewall, {"status": "revoked"}),
    )

    def attest(grant: AccessGrant, name: str, title: str, line: str, note: str) -> None:
        shot = demo.file("oscar", f"{case.ref}-{name}.pdf", title, line)
        values = {"verification_level": "attested", "verification_note": note}
        _update(oscar, grant, values, [shot])

    demo.later(
        demo.at(-9, 11),
        label,
        lambda: attest(
            firewall,
            "firewall-admins",
            "Firewall administrators after removal",
            "REST API listing of administrators: bl-admin and bl-vpn absent.",
            "Listed administrators over the firewall's REST API after removal: bl-admin and "
            "bl-vpn are gone; VPN profile 'brightline-support' deleted. Output attached.",
        ),
    )
    demo.later(
        demo.at(-8, 10),
        label,
        lambda: _update(oscar, directory, {"status": "revoked"}),
    )
    demo.later(
        demo.at(-8, 11),
        label,
        lambda: attest(
            directory,
            "domain-admins",
            "Domain Admins membership after removal",
            "Members: KF-Admin, svc-backup (client-owned). No Brightline accounts.",
            "Domain Admins membership after removal: no Brightline accounts (screenshot).",
        ),
    )
    items = {h.name: h for h in case.handover_items.all()}
    docs = items["IT documentation export (diagrams, asset list, runbooks, vendor contacts)"]
    sam = "Sam Nakamura, Kestrel Freight"
    demo.later(
        demo.at(-30, 10),
        label,
        lambda: _update(oscar, docs, {"status": "handed_over", "new_owner": sam}),
    )
    demo.later(
        demo.at(-29, 16),
        label,
        lambda: _update(alice, docs, {"status": "acknowledged"}),
    )
    for n, name in enumerate(
        ("Break-glass and privileged admin credentials", "Microsoft 365 CSP subscriptions")
    ):
        item = items[name]
        demo.later(
            demo.at(-20, 10 + n),
            label,
            partial(_update, oscar, item, {"status": "handed_over", "new_owner": sam}),
        )
    backup = case.data_dispositions.get(dataset="Final full backup")

    def return_backup() -> None:
        receipt = demo.file(
            "oscar",
            f"{case.ref}-backup-return.pdf",
            "Final backup handed over",
            "Backup vault restored into the client's Azure subscription.",
        )
        _update(oscar, backup, {"status": "done"}, [receipt])

    demo.later(demo.at(-6, 15), label, return_backup)
    invoice = case.settlements.get(kind="final_invoice")
    demo.later(
        demo.at(-3, 11),
        label,
        lambda: _update(
            dave,
            invoice,
            {"amount": "8640.00", "currency": "GBP", "reference": "INV-2025-0471"},
        ),
    )


def meridian(demo: "Loader", label: str) -> None:
    """Cancelled: the client withdrew its termination notice."""
    case = demo.open("meridian", "termination_by_client", -30)
    demo.later(demo.at(-28, 11), label, lambda: demo.complete(case, "confirm_notice"))
    demo.later(
        demo.at(-14, 16),
        label,
        lambda: cancel_case(
            actor=demo.actors["alice"],
            case=case,
            reason="Meridian withdrew its termination notice: the engagement continues "
            "under amendment BD-CON-2025-011-A1 with quarterly advisory days only.",
        ),
    )


def alder(demo: "Loader") -> None:
    """Draft: a partial exit just announced, opened for review."""
    demo.open(
        "alder",
        "scope_reduction",
        -3,
        draft=True,
        scope="partial",
        scope_notes="Only VAT returns and payroll move to the client's new in-house "
        "finance team; bookkeeping stays with us.",
        trigger_notes="Email from Helen Morris (finance) announcing the in-house hire.",
    )
