"""Seed a fleet test's scratch database (run once, in a subprocess, after `offboard init`):
bob the manager who approves, a small playbook, one client and contract per load thread, and
an API token each for alice and bob. Prints what the load needs as one JSON object."""

import datetime as dt
import json
import sys

PLAYBOOK = """\
slug: fleet-exit
name: Fleet test exit
service_type: consulting
fee_types: [fixed]
approval_policy:
  min_approvers: 1
  roles: [manager]
steps:
  - key: confirm_notice
    phase: notice
    title: Confirm the notice in writing
    owner_role: case_owner
    due: {from: trigger, offset_days: 2}
    evidence: [file]
    category: notice
    about: []
  - key: hand_over_report
    phase: handover
    title: Hand the final report over
    owner_role: case_owner
    due: {from: end, offset_days: 0}
    evidence: [note]
    category: general
    depends_on: [confirm_notice]
    about: []
seeds:
  deliverables:
    - {title: Final report}
  settlements:
    - {kind: final_invoice}
"""


def main(clients: int) -> dict[str, object]:
    import django

    django.setup()
    from offboard.accounts.models import Membership
    from offboard.accounts.services import create_api_token, create_user
    from offboard.clients.services import add_contact, create_client, create_contract
    from offboard.core.actor import Actor
    from offboard.playbooks.services import import_playbook

    admin = Membership.objects.select_related("org", "user").get(user__username="admin")
    alice = Actor.from_membership(admin, auth_method="cli")
    bob = Actor.from_membership(
        create_user(
            actor=alice,
            org=admin.org,
            username="bob",
            role="manager",
            password="a long enough passphrase 2",
            email="bob@acme.example",
        ),
        auth_method="cli",
    )
    import_playbook(actor=alice, source=PLAYBOOK)
    made = []
    for n in range(clients):
        client = create_client(actor=alice, name=f"Fleet client {n:02d}")
        contact = add_contact(
            actor=alice,
            client=client,
            name=f"Contact {n:02d}",
            email=f"contact{n:02d}@client.example",
            role="primary",
        )
        contract = create_contract(
            actor=alice,
            client=client,
            reference=f"FLEET-{n:02d}",
            service_type="consulting",
            fee_type="fixed",
            start_date=dt.date(2025, 1, 1),
            end_date=dt.date(2027, 12, 31),
        )
        made.append(
            {
                "client_id": client.pk,
                "contract_id": contract.pk,
                "contact_id": contact.pk,
                "contact_name": contact.name,
            }
        )
    return {
        "org": admin.org.slug,
        "alice": create_api_token(actor=alice, name="fleet")[1],
        "bob": create_api_token(actor=bob, name="fleet")[1],
        "clients": made,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
