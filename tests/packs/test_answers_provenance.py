"""The verifier's answers say how each fact is known, and never more than the events show:
the client's acknowledgement only where a portal event by the client's contact backs it
(decision 0008, 0010)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from offboard.cases.models import AccessGrant, HandoverItem
from offboard.packs.verify import Report, parse_key, verify_pack
from tests.factories import close_with_approvals, settle_everything, upload

BASE = "https://offboard.example.com"


def _export(case: Any, cast: dict[str, Any], tmp_path: Path) -> tuple[Path, Any]:
    from offboard.packs.export import iter_pack, start_export

    plan = start_export(actor=cast["erin"], case=case)
    path = tmp_path / "pack.zip"
    path.write_bytes(b"".join(iter_pack(plan)))
    return path, parse_key(plan.checkpoint.key.verifier_key)


def _acknowledge_two_in_the_portal(case: Any, cast: dict[str, Any]) -> list[HandoverItem]:
    from offboard.portal.selectors import manifest, manifest_digest
    from offboard.portal.services import acknowledge_items, issue_portal_link

    nina = case.client.contacts.get(email="nina@northwind.example")
    issued = issue_portal_link(actor=cast["alice"], case=case, contact=nina, base_url=BASE)
    items = list(case.handover_items.filter(status="handed_over").order_by("id")[:2])
    acknowledge_items(
        link=issued.link,
        items=[f"handover_item:{h.pk}" for h in items],
        typed_name="Nina North",
        confirmed=True,
        manifest_sha256=manifest_digest(manifest(case)),
        ip="198.51.100.7",
        user_agent="Browser/1.0",
    )
    return items


def _q(report: Report, number: int) -> Any:
    return next(a for a in report.answers if a.number == number)


@pytest.fixture
def settled(case: Any, cast: dict[str, Any]) -> Any:
    return settle_everything(case, cast)


def test_the_client_s_portal_acknowledgement_and_staff_records_are_counted_apart(
    settled: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    acknowledged = _acknowledge_two_in_the_portal(settled, cast)
    case = close_with_approvals(settled, cast)
    path, key = _export(case, cast, tmp_path)
    report = verify_pack(path, key=key)
    assert report.outcome == "verified", [c.as_dict() for c in report.checks if not c.ok]
    q2 = _q(report, 2)
    assert q2.proven, q2.reasons
    total = case.handover_items.count()
    assert q2.reasons[0] == (
        f"{total} handover items: 2 acknowledged by the client in the portal (Nina North), "
        f"{total - 2} recorded by staff (Alice)"
    )
    for item in acknowledged:
        (line,) = [r for r in q2.reasons if r.startswith(f"“{item.name}”")]
        assert "acknowledged by the client in the portal: Nina North signed" in line
        assert "for the list with sha256" in line and "data/events/" in line
    staff = [
        r for r in q2.reasons
        if r.startswith("“") and "recorded by staff (Alice): their statement" in r
    ]  # fmt: skip
    assert len(staff) == total - 2


def test_a_client_acknowledgement_the_events_do_not_show_is_not_proven(
    settled: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    """An insider writes `client_portal` into a row by hand (no portal event): the closure
    binds that state, the pack is genuine and anchored — and the verifier still will not say
    the client acknowledged it."""
    item = settled.handover_items.filter(status="handed_over").order_by("id").first()
    HandoverItem.objects.filter(pk=item.pk).update(
        status="acknowledged",
        source="client_portal",
        source_detail={"contact": {"id": 1, "name": "Nina North"}, "typed_name": "Nina North"},
    )
    case = close_with_approvals(settled, cast)
    path, key = _export(case, cast, tmp_path)
    report = verify_pack(path, key=key)
    assert report.outcome == "verified"  # the record is what it is …
    q2 = _q(report, 2)
    assert not q2.proven  # … but it does not show the client's word
    (line,) = [r for r in q2.reasons if r.startswith(f"“{item.name}”")]
    assert "recorded as acknowledged by the client in the portal, but no acknowledgement" in line


def test_an_observed_revocation_without_a_connector_read_is_not_proven(
    settled: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    grant = settled.access_grants.filter(status="revoked").order_by("id").first()
    AccessGrant.objects.filter(pk=grant.pk).update(verification_level="observed")
    case = close_with_approvals(settled, cast)
    path, key = _export(case, cast, tmp_path)
    q3 = _q(verify_pack(path, key=key), 3)
    assert not q3.proven
    (line,) = [r for r in q3.reasons if r.startswith(str(grant.system))]
    assert "recorded as observed by a system read, but no connector read" in line


def test_a_vendor_confirmed_revocation_cites_the_vendor_s_document(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    from offboard.cases.services import update_register_item

    case = settle_everything(case, cast)  # every revocation attested by staff …
    grant = case.access_grants.filter(status="revoked").order_by("id").first()
    letter = upload(cast["alice"], b"%PDF-1.4 vendor: access removed\n", "vendor-letter.pdf")
    update_register_item(  # … then one confirmed by the vendor's letter
        actor=cast["alice"],
        item=grant,
        values={
            "verification_level": "vendor_confirmed",
            "source": "vendor_document",
            "source_document": letter.sha256,
            "source_vendor": "Acme Cloud",
        },
        evidence=[letter],
    )
    case = close_with_approvals(case, cast)
    path, key = _export(case, cast, tmp_path)
    q3 = _q(verify_pack(path, key=key), 3)
    assert q3.proven, q3.reasons
    (line,) = [r for r in q3.reasons if r.startswith(str(grant.system))]
    assert f"confirmed by a vendor's document from Acme Cloud (data/files/{letter.sha256})" in line
    assert "1 confirmed by the vendor's document (Acme Cloud)" in q3.reasons[0]
