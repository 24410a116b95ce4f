"""Evidence-pack fixtures: real packs built once per test process, and helpers to take them
apart, tamper with them and put them back together (with or without fresh manifests).

`packs` builds, inside a transaction that is rolled back at once, a closed case (timestamped
by the local TSA of tests/tsa.py, with an earlier checkpoint of the log) and an open one,
exports both through the services and keeps only the zip files, the keys and the signed
checkpoints the tests need. Nothing it wrote stays in the database.
"""

import datetime as dt
import functools
import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from offboard.packs.verify import Report, parse_key, parse_roots, verify_pack
from offboard.packs.verify import layout as fmt
from tests.tsa import LocalTSA, tsa

__all__ = ["tsa"]

CAST = {
    "alice": "admin",
    "bob": "manager",
    "carol": "manager",
    "dave": "finance",
    "erin": "auditor",
    "oscar": "operator",
}


@dataclass
class BuiltPacks:
    closed: Path  # a closed case, timestamped, exported by erin (auditor)
    interim: Path  # an open case, exported by bob (manager)
    closed_ref: str
    interim_ref: str
    verifier_key: str  # the organization's note verifier key
    signer_key: str  # its private key (to forge notes signed with the real key)
    earlier: bytes  # a signed checkpoint issued while the closed case was under way
    closure: bytes  # the checkpoint signed at closure
    receipt: bytes  # the closure receipt the client received
    closed_size: int  # the closed pack's checkpoint size
    tsa: LocalTSA
    roots_pem: Path

    def key(self) -> Any:
        return parse_key(self.verifier_key)

    def roots(self) -> Any:
        return parse_roots(self.roots_pem.read_bytes())

    def receipt_file(self, directory: Path) -> Path:
        path = directory / f"{self.closed_ref}-closure-receipt.txt"
        path.write_bytes(self.receipt)
        return path


def _open_case(alice: Any, playbook: Any, name: str, reference: str) -> Any:
    from offboard.cases.services import open_case
    from offboard.clients.services import add_contact, create_client, create_contract

    client = create_client(actor=alice, name=name)
    add_contact(
        actor=alice, client=client, name="Nina North", email="nina@example.org", role="primary"
    )
    contract = create_contract(
        actor=alice,
        client=client,
        reference=reference,
        service_type="marketing_agency",
        fee_type="retainer",
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2026, 12, 31),
    )
    return open_case(
        actor=alice,
        client=client,
        contracts=[contract],
        trigger="non_renewal",
        trigger_date=dt.date(2026, 11, 2),
        owner_id=alice.user.pk,
        playbook_version=playbook,
    )


def _export(actor: Any, case: Any, path: Path) -> Any:
    from offboard.packs.export import iter_pack, start_export

    plan = start_export(actor=actor, case=case)
    with path.open("wb") as f:
        for chunk in iter_pack(plan):
            f.write(chunk)
    return plan


def _build(directory: Path, local_tsa: LocalTSA) -> BuiltPacks:
    from offboard.accounts.services import create_organization, create_user
    from offboard.core.actor import Actor
    from offboard.ledger import checkpoints, keys, timestamps
    from offboard.ledger.models import Checkpoint
    from offboard.playbooks.services import install_builtin_playbooks
    from tests.factories import close_with_approvals, settle_everything, upload

    org = create_organization(slug="acme", name="Acme Digital")
    cast = {}
    for name, role in CAST.items():
        m = create_user(
            actor=None, org=org, username=name, role=role, password="correct horse 1",
            email=f"{name}@acme.example", first_name=name.capitalize(),
        )  # fmt: skip
        cast[name] = Actor.from_membership(m, auth_method="test")
    alice = cast["alice"]
    playbook = next(
        v for v in install_builtin_playbooks(actor=alice)
        if v.playbook.service_type == "marketing_agency"
    )  # fmt: skip
    case = settle_everything(_open_case(alice, playbook, "Northwind Traders", "NW-1"), cast)
    # A second evidence file, larger than one chunk of the exporter.
    from offboard.cases.services import update_register_item

    big = upload(alice, b"%PDF-1.4 " + bytes(range(256)) * 5000, "big-handover.pdf")
    update_register_item(actor=alice, item=case.handover_items.first(), values={}, evidence=[big])
    earlier = checkpoints.issue_checkpoint(org=org, reason="requested")
    case = close_with_approvals(case, cast)
    closure = Checkpoint.objects.get(case=case, reason="case_closed")
    assert timestamps.process_pending()["failed"] == 0
    from offboard.notifications.receipt_email import closure_receipt_file

    receipt = closure_receipt_file(case, closure).encode()
    closed_plan = _export(cast["erin"], case, directory / "closed.zip")
    assert closed_plan.checkpoint.timestamps.filter(status="granted").exists()

    open_case = _open_case(alice, playbook, "Contoso Ltd", "CO-1")
    _export(cast["bob"], open_case, directory / "interim.zip")
    key = keys.active_key(org)
    return BuiltPacks(
        closed=directory / "closed.zip",
        interim=directory / "interim.zip",
        closed_ref=case.ref,
        interim_ref=open_case.ref,
        verifier_key=key.verifier_key,
        signer_key=keys.load_signer(key).to_signer_key(),
        earlier=earlier.signed_note.encode(),
        closure=closure.signed_note.encode(),
        receipt=receipt,
        closed_size=closed_plan.checkpoint.size,
        tsa=local_tsa,
        roots_pem=local_tsa.ca_crt,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using the packs need the test database set up (pytest-django sets up only the
    databases that collected tests ask for)."""
    for item in items:
        if "packs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.django_db)


@pytest.fixture(scope="session")
def packs(
    django_db_setup: Any,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    tsa: LocalTSA,
) -> BuiltPacks:
    from django.db import transaction
    from django.test import override_settings

    directory = tmp_path_factory.mktemp("packs")
    with (
        django_db_blocker.unblock(),
        override_settings(
            MEDIA_ROOT=str(directory / "files"),
            OFFBOARD_KEY_DIR=directory / "keys",
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            OFFBOARD_TSA_URLS=[tsa.url],
            OFFBOARD_TSA_ROOTS=tsa.ca_pem_path,
            OFFBOARD_TSA_TIMEOUT=5.0,
            OFFBOARD_TSA_ON_COMMIT="off",
            OFFBOARD_RECEIPT_ON_COMMIT="off",
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        ),
        transaction.atomic(),
    ):
        built = _build(directory, tsa)
        transaction.set_rollback(True)  # keep the files, not the rows
    return built


# --- taking packs apart and putting them together -----------------------------------------------


@functools.cache
def _read_members(path: Path, stamp: tuple[int, int]) -> tuple[str, dict[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        base = names[0].split("/", 1)[0]
        return base, {n[len(base) + 1 :]: zf.read(n) for n in names}


def members_of(path: Path) -> tuple[str, dict[str, bytes]]:
    """The bag's base directory and its members (relative path -> bytes), in zip order."""
    stat = path.stat()
    base, members = _read_members(path, (stat.st_mtime_ns, stat.st_size))
    return base, dict(members)


def write_pack(path: Path, base: str, members: dict[str, bytes]) -> Path:
    """Zip members as a third party re-zipping the bag might: text deflated, files stored."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for rel, content in members.items():
            stored = fmt.kind_of(rel) in ("file", "certificate")
            zf.writestr(
                f"{base}/{rel}", content, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            )
    return path


def rebag(members: dict[str, bytes]) -> dict[str, bytes]:
    """Fresh manifests, tag manifest and Payload-Oxum for changed members, as a forger would."""
    out = {k: v for k, v in members.items() if k not in fmt.TAG_FILES}
    payload = {k: v for k, v in out.items() if k.startswith("data/")}
    manifest = "".join(
        fmt.manifest_line(hashlib.sha256(v).hexdigest(), k) for k, v in payload.items()
    )
    info = members[fmt.BAG_INFO].decode()
    oxum = f"{sum(len(v) for v in payload.values())}.{len(payload)}"
    info = "".join(
        f"Payload-Oxum: {oxum}\n" if line.startswith("Payload-Oxum:") else line + "\n"
        for line in info.splitlines()
    )
    tags = {
        fmt.BAGIT_TXT: members[fmt.BAGIT_TXT],
        fmt.BAG_INFO: info.encode(),
        fmt.MANIFEST: manifest.encode(),
    }
    tagmanifest = "".join(
        fmt.manifest_line(hashlib.sha256(v).hexdigest(), k) for k, v in tags.items()
    )
    return {**out, **tags, fmt.TAGMANIFEST: tagmanifest.encode()}


def verify(path: Path, **kwargs: Any) -> Report:
    return verify_pack(path, **kwargs)


def problems(report: Report) -> list[str]:
    """Every reason a report gives for failing."""
    found = [p for c in report.checks if not c.ok for p in c.problems]
    return found + ([report.error] if report.error else [])


def tampered(
    tmp_path: Path, packs_path: Path, change: Any, *, fresh_manifests: bool = False
) -> Path:
    """A copy of a pack with `change(members)` applied (it edits the dict in place)."""
    base, members = members_of(packs_path)
    change(members)
    if fresh_manifests:
        members = rebag(members)
    return write_pack(tmp_path / "tampered.zip", base, members)


@pytest.fixture
def unzipped(packs: BuiltPacks, tmp_path: Path) -> Iterator[Path]:
    """The closed pack unzipped as `unzip` would (for the tools that read directories)."""
    with zipfile.ZipFile(packs.closed) as zf:
        zf.extractall(tmp_path)  # our own pack, made by the test: safe to extract
    (bag,) = tmp_path.iterdir()
    yield bag
