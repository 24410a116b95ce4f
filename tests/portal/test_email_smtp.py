"""The portal's emails through a real SMTP server on loopback (tests/smtp.py)."""

from django.test import Client

from offboard.portal.services import issue_portal_link
from tests.portal.conftest import BASE, shown_digest, token_of


def test_the_link_and_the_confirmation_reach_a_real_smtp_server(smtp, portal_case, alice, nina):
    issued = issue_portal_link(actor=alice, case=portal_case, contact=nina, base_url=BASE)
    (invitation,) = smtp.received
    assert invitation.rcpt_tos == ["nina@northwind.example"]
    assert issued.url in invitation.text()
    assert invitation.message["Reply-To"] == "alice@acme.example"

    token = token_of(issued.url)
    visitor = Client(HTTP_USER_AGENT="SMTP-test browser")
    report = portal_case.deliverables.order_by("id").first()
    seen = shown_digest(visitor.get(f"/portal/{token}/").content.decode())
    response = visitor.post(
        f"/portal/{token}/acknowledge/",
        {
            "item": f"deliverable:{report.pk}",
            "typed_name": "Nina North",
            "confirm": "yes",
            "manifest_sha256": seen,
        },
    )
    assert response.status_code == 303

    confirmation = smtp.received[1]
    text = confirmation.text()
    assert confirmation.rcpt_tos == ["nina@northwind.example"]
    assert "Confirmation: you acknowledged 1 item" in confirmation.message["Subject"]
    assert report.title in text
    assert seen in text
    assert "SMTP-test browser" in text
