"""People read words, not stored codes: no page of the staff app or the portal shows a code
(`time_and_materials`, `vault_entry:`, `case_owner`, a step's key such as
`inventory_accounts`) outside an element marked as code (`<code>`, `.code`), where a code sits
beside its words for whoever needs to copy it."""

import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from offboard import labels
from tests.factories import close_with_approvals, settle_everything
from tests.portal.conftest import deliver_work, token_of, upload_files

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class VisibleText(HTMLParser):
    """The text a page shows, without what sits in `<code>`/`.code`, scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, bool]] = []  # (tag, is code or not shown)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        self.open.append((tag, tag in ("code", "script", "style") or "code" in classes))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i][0] == tag:
                del self.open[i:]
                return

    def handle_data(self, data: str) -> None:
        if not any(hidden for _, hidden in self.open):
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def codes_in(text: str, codes: set[str]) -> list[str]:
    """Each code shown as a word of its own (not inside a file name such as
    `C-2026-0001-confirm_notice.pdf`), with a little of its context."""
    found = []
    for code in sorted(codes):
        for m in re.finditer(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text):
            found.append(f"{code!r} in …{text[max(0, m.start() - 40) : m.end() + 20]}…")
    return found


@pytest.fixture
def codes(playbooks: dict[str, Any]) -> set[str]:
    """Every code of the vocabularies, and every step key of the built-in playbooks, that a
    person could not mistake for a word: those with an underscore."""
    found = {code for words in labels.VOCABULARIES.values() for code in words if "_" in code}
    found |= {s.key for v in playbooks.values() for s in v.spec.steps if "_" in s.key}
    assert {"time_and_materials", "vault_entry", "case_owner", "client_ack"} <= found
    assert {"inventory_accounts", "final_invoice", "deliverables.not_accepted"} <= found
    return found


def _client_with_case(alice: Any, playbooks: dict[str, Any], name: str, fee: str, **kw: Any):
    from offboard.cases.services import open_case
    from offboard.clients.services import add_contact, create_client, create_contract

    client = create_client(actor=alice, name=name)
    add_contact(
        actor=alice, client=client, name=f"{name} Legal", email="legal@x.example", role="legal"
    )
    contract = create_contract(
        actor=alice,
        client=client,
        reference=f"{name.upper()}-1",
        service_type=kw.pop("service_type", "managed_it"),
        fee_type=fee,
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2026, 12, 31),
    )
    playbook = kw.pop("playbook", "managed_it")
    return open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="termination_by_provider",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbooks[playbook],
        **kw,
    )


@pytest.fixture
def cases(case, cast, playbooks) -> dict[str, Any]:
    """A case in every state, with what each state shows: the active one has files, a
    portal link and the client's answers, waivers (a step, a vault entry) and a timeline."""
    from offboard.cases.services import (
        add_register_item,
        approve_case,
        cancel_case,
        enter_closing,
        grant_waiver,
        update_register_item,
    )
    from offboard.cases.state import fresh, state_digest
    from offboard.portal.selectors import link_for_token, manifest, manifest_digest
    from offboard.portal.services import acknowledge_items, dispute_item, issue_portal_link

    alice, bob = cast["alice"], cast["bob"]
    active = deliver_work(case, cast, upload_files(alice))
    add_register_item(
        actor=alice,
        case=active,
        register="handover_items",
        values={"kind": "vault_entry", "name": "Ads admin password", "reference": "1Password"},
    )
    vault = active.handover_items.get(kind="vault_entry")
    expires = timezone.now() + dt.timedelta(days=30)
    grant_waiver(
        actor=bob,
        case=active,
        target_type="handover_item",
        target_id=vault.pk,
        justification="The client keeps its own vault",
        expires_at=expires,
    )
    step = active.steps.filter(required=True).order_by("position").last()
    grant_waiver(
        actor=bob,
        case=active,
        target_type="step",
        target_id=step.pk,
        justification="Agreed in the exit call",
        expires_at=expires,
    )
    nina = active.client.contacts.get()
    issued = issue_portal_link(
        actor=alice, case=active, contact=nina, base_url="http://testserver", send_email=False
    )
    token = token_of(issued.url)
    value = manifest(fresh(active))
    first = value["deliverables"][0]["id"]
    acknowledge_items(
        link=link_for_token(token),
        items=[f"deliverable:{first}"],
        typed_name="Nina North",
        confirmed=True,
        manifest_sha256=manifest_digest(value),
        ip=None,
        user_agent=None,
    )

    # A disputed handover item of a kind with a code (the dashboard's inbox lists it).
    add_register_item(
        actor=alice,
        case=active,
        register="handover_items",
        values={"kind": "vault_entry", "name": "Hosting root login", "reference": "1Password"},
    )
    disputed = update_register_item(
        actor=alice,
        item=active.handover_items.get(name="Hosting root login"),
        values={"status": "handed_over", "method": "Shared in the vault"},
    )
    dispute_item(
        link=link_for_token(token),
        item=f"handover_item:{disputed.pk}",
        comment="We never received it",
        manifest_sha256=manifest_digest(manifest(fresh(active))),
        ip=None,
        user_agent=None,
    )

    draft = _client_with_case(cast["alice"], playbooks, "Drafton", "time_and_materials", draft=True)
    cancelled = _client_with_case(alice, playbooks, "Cancello", "retainer")
    cancel_case(actor=alice, case=cancelled, reason="The client renewed after all")
    closing = settle_everything(
        _client_with_case(
            alice,
            playbooks,
            "Closingham",
            "fixed",
            service_type="software_development",
            playbook="software_development",
        ),
        cast,
    )
    enter_closing(actor=alice, case=closing)
    approve_case(
        actor=bob, case=closing, decision="approved", state_digest_seen=state_digest(fresh(closing))
    )
    closed = close_with_approvals(
        settle_everything(
            _client_with_case(
                alice,
                playbooks,
                "Closedale",
                "retainer",
                service_type="consulting",
                playbook="consulting",
            ),
            cast,
        ),
        cast,
    )
    return {
        "active": active,
        "draft": draft,
        "cancelled": cancelled,
        "closing": closing,
        "closed": closed,
        "token": token,
    }


def test_no_page_shows_a_stored_code_outside_a_code_element(cases, codes, cast, playbooks):
    from offboard.clients.models import Client as ClientModel

    staff = Client()
    staff.force_login(cast["alice"].user)
    urls = ["/", "/cases/", "/clients/", "/playbooks/", "/settings/"]
    urls += [f"/cases/{c.ref}/" for key, c in cases.items() if key != "token"]
    for client in ClientModel.objects.all():
        urls += [f"/clients/{client.pk}/", f"/clients/{client.pk}/contracts/new/"]
    urls += [f"/playbooks/{v.playbook.slug}/" for v in playbooks.values()]
    pages = {url: staff.get(url) for url in urls}

    draft = cases["draft"]
    contract = draft.contracts.get()
    pages["open-case preview"] = staff.post(
        "/cases/new/",
        {
            "client": draft.client_id,
            "contracts": [contract.pk],
            "trigger": "termination_by_client",
            "trigger_date": "2026-11-02",
            "scope": "full",
            "owner": cast["alice"].user.pk,
            "playbook_version": playbooks["managed_it"].pk,
            "action": "preview",
        },
    )
    pages["portal"] = Client().get(f"/portal/{cases['token']}/")

    shown = []
    for where, response in pages.items():
        assert response.status_code == 200, where
        shown += [f"{where}: {c}" for c in codes_in(visible_text(response.content.decode()), codes)]
    assert not shown, "\n".join(shown)


def test_the_check_sees_a_code_outside_a_code_element_and_not_inside_one():
    codes = {"vault_entry", "inventory_accounts"}
    html = (
        "<p>Handover · vault_entry: Ads admin</p><code>inventory_accounts</code>"
        '<span class="code">vault_entry</span><br><p>C-1-inventory_accounts.pdf</p>'
    )
    found = codes_in(visible_text(html), codes)
    assert len(found) == 1 and found[0].startswith("'vault_entry' in")
