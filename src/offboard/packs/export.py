"""Export a case's evidence pack: a zipped BagIt bag (RFC 8493) that a third party checks
offline with `offboard verify` or with standard tools (docs/evidence-pack.md).

Two steps. `start_export` is the action: in one transaction it checks the role, snapshots
the case state, writes the pack's `case.json` and README, and records one `case.exported`
event that commits to them (their SHA-256, the case's state and state digest) — the event's
own place in the case's chain (`seq`, `prev`) commits to the number of the case's events and
their head. Still in that transaction, holding the log's lock, it signs a checkpoint whose
last leaf is that event: the pack proves it is complete (decision 0010).

`iter_pack(plan)` then streams the zip: members are written as they are read, evidence files
in 1 MiB chunks with their CRC-32 known first, so no member needs a data descriptor and any
streaming reader can extract the pack (packs/zipstream.py); SHA-256 is computed on the way
and the manifests go last. Memory stays bounded whatever the size of the files, and the
output needs no seeking: a file, a pipe or an HTTP response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import string
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.db import transaction
from rfc3161_client import decode_timestamp_response

from offboard import __version__
from offboard.cases.models import OffboardingCase
from offboard.cases.services.common import lock_case
from offboard.cases.state import case_state, fresh
from offboard.core import clock
from offboard.core.actor import Actor
from offboard.core.canonical import digest, to_jsonable
from offboard.core.errors import Conflict
from offboard.core.permissions import require
from offboard.evidence import storage
from offboard.evidence.models import EvidenceFile
from offboard.ledger import checkpoints, store, timestamps
from offboard.ledger.models import Checkpoint, LedgerEntry, SigningKey, Timestamp
from offboard.ledger.recorder import record_event
from offboard.ledger.tlogproof import encode_tlog_proof
from offboard.packs.verify import layout as fmt
from offboard.packs.zipstream import MemberChanged, ZipStream, crc32_of

CHUNK = 1024 * 1024
BATCH = 200  # events read per query
PACK_FORMAT = 2  # 2: the export event is inside the pack's checkpoint and commits to it
README_TEMPLATE = Path(__file__).parent / "templates" / "packs" / "pack_readme.txt"
Progress = Callable[[int], None]


@dataclass
class PackPlan:
    """Everything the pack will hold, fixed when the export was recorded."""

    case: OffboardingCase
    checkpoint: Checkpoint
    event_indices: list[int]
    files: list[EvidenceFile]
    state: dict[str, Any]
    state_digest: str
    made_at: dt.datetime
    case_json: bytes = b""
    readme: bytes = b""
    certificate: EvidenceFile | None = None  # the issued closure certificate (closed cases)
    keys: list[SigningKey] = field(default_factory=list)
    earlier_sizes: dict[int, bytes] = field(default_factory=dict)  # size -> root

    @property
    def base(self) -> str:
        return f"{self.case.ref}-evidence-pack"

    @property
    def filename(self) -> str:
        return f"{self.base}.zip"

    @property
    def file_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def closed(self) -> bool:
        return self.case.state == OffboardingCase.State.CLOSED


# --- the action --------------------------------------------------------------------------------


def _referenced_files(case: OffboardingCase, indices: list[int]) -> list[EvidenceFile]:
    wanted: dict[str, int] = {}
    for start in range(0, len(indices), BATCH):
        batch = indices[start : start + BATCH]
        rows = LedgerEntry.objects.filter(org_id=case.org_id, index__in=batch, redacted=False)
        for index, body in rows.values_list("index", "body"):
            for sha in json.loads(bytes(body)).get("files", []):
                wanted.setdefault(sha, index)
    found = {
        f.sha256: f for f in EvidenceFile.objects.filter(org_id=case.org_id, sha256__in=wanted)
    }
    absent = set(storage.missing([found[sha].storage_name for sha in wanted if sha in found]))
    for sha, index in sorted(wanted.items(), key=lambda kv: kv[1]):
        if sha not in found or found[sha].storage_name in absent:
            raise Conflict(
                f"Cannot export {case.ref}: evidence file {sha} referenced by event #{index} is "
                "missing from storage. Restore it from a backup (offboard ledger verify lists "
                "every missing file).",
                code="evidence_missing",
            )
    return sorted(found.values(), key=lambda f: f.sha256)


def _case_json(case: OffboardingCase, state: dict[str, Any], state_digest: str) -> bytes:
    doc = {
        "format": fmt.CASE_JSON_FORMAT,
        "case": {
            "ref": case.ref,
            "state": case.state,
            "client": case.client.name,
            "closed_at": case.closed_at,
            "organization": case.org.slug,
        },
        "state_digest": state_digest,
        "state": state,
    }
    text = json.dumps(to_jsonable(doc), indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def _readme(case: OffboardingCase, made_at: dt.datetime, event_count: int) -> bytes:
    """The pack's README. It names no key and no checkpoint: it is written before the
    checkpoint is signed, so that the export event can commit to its exact bytes."""
    closed = case.state == OffboardingCase.State.CLOSED
    base = f"{case.ref}-evidence-pack"
    values = {
        "ref": case.ref,
        "client": case.client.name,
        "org_name": case.org.name,
        "generated_at": made_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "state_line": case.state
        if closed
        else f"{case.state} - NOT CLOSED: this is an interim pack",
        "certificate_line": "the closure certificate (PDF, signed): the five questions"
        if closed
        else "an interim report (the case is not closed; not bound by any event)",
        "event_count": event_count,
        "zip_name": f"{base}.zip",
        "base": base,
        "receipt_name": f"{case.ref}-closure-receipt.txt",
    }
    text = string.Template(README_TEMPLATE.read_text(encoding="utf-8")).substitute(values)
    return text.encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@transaction.atomic
def _record_export(
    *, actor: Actor, case: OffboardingCase, certificate: EvidenceFile | None
) -> PackPlan:
    require(actor, "cases.export")
    case = lock_case(case)  # the state, the event count and the checkpoint agree
    loaded = fresh(case)
    closed = loaded.state == OffboardingCase.State.CLOSED
    # A closed case's state exactly as closed (its digest is the closure event's); an open one
    # as it stands now.
    state = loaded.closed_state if closed and loaded.closed_state else case_state(loaded)
    state_digest = digest(state)
    made_at = clock.now()
    earlier = list(
        LedgerEntry.objects.filter(org_id=case.org_id, case=case)
        .order_by("index")
        .values_list("index", flat=True)
    )
    files = _referenced_files(case, earlier)
    case_json = _case_json(loaded, state, state_digest)
    readme = _readme(loaded, made_at, len(earlier) + 1)
    exported = record_event(
        actor=actor,
        type="case.exported",
        case=case,
        data={
            "format": "bagit-zip",
            "pack_format": PACK_FORMAT,
            "case_state": loaded.state,
            "state_digest": state_digest,
            "case_json_sha256": _sha256(case_json),
            "readme_sha256": _sha256(readme),
            "certificate_sha256": certificate.sha256 if certificate is not None else None,
            "events": len(earlier) + 1,  # this one included: its `seq`
            "files": len(files),
            "file_bytes": sum(f.size for f in files),
        },
    )
    # Signed under the lock record_event took: no other event can come between, so the export
    # event is this checkpoint's last leaf.
    checkpoint = checkpoints.issue_checkpoint(org=actor.org, reason="export", case=case)
    if checkpoint.size != exported.index + 1:  # pragma: no cover - the lock guarantees it
        raise RuntimeError("the export checkpoint does not end at the export event")
    return PackPlan(
        case=loaded,
        checkpoint=checkpoint,
        event_indices=[*earlier, exported.index],
        files=files,
        state=state,
        state_digest=state_digest,
        made_at=made_at,
        case_json=case_json,
        readme=readme,
        certificate=certificate,
        keys=list(SigningKey.objects.filter(org_id=case.org_id).order_by("created_at", "id")),
        earlier_sizes={
            int(size): bytes(root)
            for size, root in Checkpoint.objects.filter(
                org_id=case.org_id, size__gt=0, size__lt=checkpoint.size
            ).values_list("size", "root")
        },
    )


def start_export(*, actor: Actor, case: OffboardingCase) -> PackPlan:
    """Record the export of `case` (auditor, manager, admin) and fix what the pack holds.

    Allowed on closed cases: it reads, and its event is like an addendum. A closed case's
    certificate is issued first if the outbox has not done it yet (the pack must hold it and
    its event). The export's checkpoint gets its timestamps now (bounded by the TSA timeout);
    a TSA that is down leaves the pack without that token and the worker retries later.
    """
    from offboard.notifications.receipts import issued_certificate

    require(actor, "cases.export")
    certificate = None
    if case.state == OffboardingCase.State.CLOSED:
        certificate = issued_certificate(case)
        if certificate is None:
            raise Conflict(
                f"Case {case.ref} is closed but has no closure certificate to pack; run "
                "`offboard worker` (or check its log) and export again.",
                code="certificate_missing",
            )
    with timestamps.inline():  # no after-commit thread: the requests are made just below
        plan = _record_export(actor=actor, case=case, certificate=certificate)
    cp = plan.checkpoint
    if settings.OFFBOARD_TSA_URLS and not cp.timestamps.filter(status="granted").exists():
        timestamps.process_pending(checkpoint_id=cp.pk)
    return plan


# --- the zip -----------------------------------------------------------------------------------


class _BagWriter:
    """Writes members under the bag's base directory and remembers their SHA-256 for the
    manifests: `data/…` payload files and the tag files."""

    def __init__(self, base: str, when: dt.datetime, progress: Progress | None) -> None:
        self.base = base
        self.zip = ZipStream(date_time=when.astimezone(dt.UTC).timetuple()[:6])
        self.payload: list[tuple[str, str]] = []
        self.tags: list[tuple[str, str]] = []
        self.payload_bytes = 0
        self.progress = progress

    def _note(self, path: str, sha256: str, size: int) -> None:
        if path.startswith("data/"):
            self.payload.append((sha256, path))
            self.payload_bytes += size
        else:
            self.tags.append((sha256, path))

    def add(self, path: str, content: bytes, *, compress: bool = True) -> Iterator[bytes]:
        member = yield from self.zip.add_bytes(f"{self.base}/{path}", content, compress=compress)
        self._note(path, member.sha256, member.size)

    def add_file(
        self,
        path: str,
        open_chunks: Callable[[], Iterable[bytes]],
        known: tuple[int, int] | None = None,
    ) -> Generator[bytes, None, str]:
        """A large file, stored, its CRC-32 and size in the member's header (the zip then needs
        no data descriptor): `known` as recorded when the file was stored, else read in a
        first pass. The streaming pass must match them, else MemberChanged."""
        crc, size = known if known is not None else crc32_of(open_chunks())
        chunks: Iterable[bytes] = open_chunks()
        if self.progress is not None:
            chunks = self._counted(chunks)
        member = yield from self.zip.add_stored(
            f"{self.base}/{path}", size=size, crc32=crc, chunks=chunks
        )
        self._note(path, member.sha256, member.size)
        return member.sha256

    def _counted(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        assert self.progress is not None
        for chunk in chunks:
            self.progress(len(chunk))
            yield chunk

    def finish(self, bag_info: str) -> Iterator[bytes]:
        manifest = "".join(fmt.manifest_line(sha, p) for sha, p in self.payload)
        yield from self.add(fmt.BAG_INFO, bag_info.encode())
        yield from self.add(fmt.MANIFEST, manifest.encode())
        tagmanifest = "".join(fmt.manifest_line(sha, p) for sha, p in self.tags)
        yield from self.add(fmt.TAGMANIFEST, tagmanifest.encode())
        yield from self.zip.finish()


def _stored(evidence: EvidenceFile) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        with storage.open_stored(evidence.storage_name, sha256=evidence.sha256) as stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    return chunks


def _stored_file(
    plan: PackPlan, writer: _BagWriter, path: str, evidence: EvidenceFile
) -> Iterator[bytes]:
    """Stream one stored file; its bytes must hash to its name. The storage's stream checks
    them as they are read and never hands out the last bytes of a file that does not hash to
    its name; the member's CRC-32 and size (recorded when the file was stored, or read in a
    first pass for a file stored before they were) are checked again as they are written, and
    so is the manifest's hash."""
    known = (evidence.crc32, evidence.size) if evidence.crc32 is not None else None
    try:
        sha = yield from writer.add_file(path, _stored(evidence), known)
    except storage.StoredFileCorrupted as exc:
        raise Conflict(
            f"Evidence file {evidence.sha256} is corrupted in storage ({exc.problem}); the "
            "export stopped. Restore it from a backup.",
            code="evidence_corrupted",
        ) from None
    except MemberChanged as exc:
        raise Conflict(
            f"Evidence file {evidence.sha256} changed in storage while {plan.case.ref} was "
            f"being exported ({exc}); the export stopped. Restore it from a backup.",
            code="evidence_corrupted",
        ) from None
    if sha != evidence.sha256:
        raise Conflict(
            f"Evidence file {evidence.sha256} is corrupted in storage (its bytes hash to "
            f"{sha}); the export stopped. Restore it from a backup.",
            code="evidence_corrupted",
        )


def _events(plan: PackPlan, writer: _BagWriter) -> Iterator[bytes]:
    cp, org_id = plan.checkpoint, plan.case.org_id
    for start in range(0, len(plan.event_indices), BATCH):
        batch = plan.event_indices[start : start + BATCH]
        rows = LedgerEntry.objects.filter(org_id=org_id, index__in=batch).order_by("index")
        for index, body, leaf, redacted in rows.values_list(
            "index", "body", "leaf_hash", "redacted"
        ):
            if redacted:
                yield from writer.add(fmt.redacted_path(index), f"{bytes(leaf).hex()}\n".encode())
            else:
                yield from writer.add(fmt.event_path(index), bytes(body))
            proof = encode_tlog_proof(
                index, store.inclusion_proof(org_id, index, cp.size), cp.signed_note
            )
            yield from writer.add(fmt.proof_path(index), proof.encode())


def _chain_pem(token: bytes, roots: list[x509.Certificate]) -> bytes:
    """The TSA's certificates from its reply, up to the configured root that issued them."""
    embedded = [
        x509.load_der_x509_certificate(der)
        for der in decode_timestamp_response(token).signed_data.certificates
    ]
    chain = list(embedded)
    pool = embedded + roots
    while chain and chain[-1].issuer != chain[-1].subject:
        issuer = next((c for c in pool if c.subject == chain[-1].issuer and c not in chain), None)
        if issuer is None:
            break
        chain.append(issuer)
    return b"".join(c.public_bytes(Encoding.PEM) for c in chain)


def _timestamps(plan: PackPlan, writer: _BagWriter) -> Iterator[bytes]:
    try:
        roots = timestamps.trust_roots()
    except timestamps.TimestampFailed:
        roots = []
    granted = plan.checkpoint.timestamps.filter(status=Timestamp.Status.GRANTED).order_by("id")
    for number, ts in enumerate(granted, start=1):
        token = bytes(ts.token or b"")
        yield from writer.add(f"{fmt.TIMESTAMPS_DIR}{number}.tsr", token)
        chain = _chain_pem(token, roots)
        if chain:
            yield from writer.add(f"{fmt.TIMESTAMPS_DIR}{number}.chain.pem", chain)


def _bag_info(plan: PackPlan, writer: _BagWriter) -> str:
    cp, case = plan.checkpoint, plan.case
    fields = [
        ("Source-Organization", case.org.name),
        ("External-Identifier", case.ref),
        (
            "External-Description",
            f"Evidence pack of offboarding case {case.ref} ({case.client.name}), "
            f"{'closed' if plan.closed else 'interim: the case is ' + case.state}",
        ),
        ("Bagging-Date", plan.made_at.astimezone(dt.UTC).date().isoformat()),
        ("Bag-Software-Agent", f"Offboard {__version__}"),
        ("Payload-Oxum", f"{writer.payload_bytes}.{len(writer.payload)}"),
        ("Offboard-Case-State", case.state),
        ("Offboard-Log", cp.signed_note.split("\n", 1)[0]),
        ("Offboard-Checkpoint-Size", str(cp.size)),
        ("Offboard-Checkpoint-Root", bytes(cp.root).hex()),
        ("Offboard-Events", str(len(plan.event_indices))),
        ("Offboard-State-Digest", plan.state_digest),
    ]
    return "".join(f"{label}: {value}\n" for label, value in fields)


def iter_pack(plan: PackPlan, progress: Progress | None = None) -> Iterator[bytes]:
    """The zip, as byte chunks. `progress(n)` is told of every n bytes of file content."""
    from offboard.reports.certificate import render_certificate

    cp, org_id = plan.checkpoint, plan.case.org_id
    writer = _BagWriter(plan.base, plan.made_at, progress)
    yield from writer.add(fmt.BAGIT_TXT, fmt.BAGIT_TXT_CONTENT)
    yield from writer.add(fmt.README, plan.readme)
    yield from writer.add(fmt.CHECKPOINT, timestamps.message_for(cp))
    for key in plan.keys:
        yield from writer.add(f"{fmt.KEYS_DIR}{key.key_id}.pub", f"{key.verifier_key}\n".encode())
    yield from _timestamps(plan, writer)
    yield from _events(plan, writer)
    for size, root in sorted(plan.earlier_sizes.items()):
        hashes = store.consistency_proof(org_id, size, cp.size)
        text = fmt.encode_consistency_proof(size, root, cp.size, bytes(cp.root), hashes)
        yield from writer.add(fmt.consistency_path(size), text.encode())
    yield from writer.add(fmt.CASE_JSON, plan.case_json)
    if plan.certificate is not None:  # the certificate the client received, byte for byte
        yield from _stored_file(plan, writer, fmt.CERTIFICATE, plan.certificate)
    else:  # an interim report: rendered now, bound by no event (the verifier says so)
        pdf = render_certificate(plan.case, checkpoint=cp)
        yield from writer.add(fmt.CERTIFICATE, pdf, compress=False)
    for evidence in plan.files:
        yield from _stored_file(plan, writer, fmt.file_path(evidence.sha256), evidence)
    yield from writer.finish(_bag_info(plan, writer))
