"""Export a case's evidence pack: a zipped BagIt bag (RFC 8493) that a third party checks
offline with `offboard verify` or with standard tools (docs/evidence-pack.md).

Two steps. `start_export` is the action: in one transaction it checks the role, picks (or
signs) a checkpoint that covers every event of the case, snapshots the case state and
records one `case.exported` event — appended after the checkpoint, so never in the pack it
describes. `iter_pack(plan)` then streams the zip: members are written as they are read,
evidence files in 1 MiB chunks, SHA-256 computed on the way, and the manifests last (a zip
may hold them after the payload). Memory stays bounded whatever the size of the files, and
the output needs no seeking: a file, a pipe or an HTTP response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import string
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from rfc3161_client import decode_timestamp_response

from offboard import __version__
from offboard.cases.models import OffboardingCase
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

CHUNK = 1024 * 1024
BATCH = 200  # events read per query
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


# --- the action --------------------------------------------------------------------------------


def _covering(case: OffboardingCase, last_index: int) -> Checkpoint | None:
    """The newest checkpoint covering `last_index` with a granted timestamp, else the newest."""
    covering = list(
        Checkpoint.objects.filter(org_id=case.org_id, size__gt=last_index)
        .select_related("key")
        .order_by("-size", "-id")[:20]
    )
    granted = set(
        Timestamp.objects.filter(
            checkpoint__in=covering, status=Timestamp.Status.GRANTED
        ).values_list("checkpoint_id", flat=True)
    )
    return next((c for c in covering if c.pk in granted), covering[0] if covering else None)


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
    for sha, index in sorted(wanted.items(), key=lambda kv: kv[1]):
        if sha not in found or not default_storage.exists(found[sha].storage_name):
            raise Conflict(
                f"Cannot export {case.ref}: evidence file {sha} referenced by event #{index} is "
                "missing from storage. Restore it from a backup (offboard ledger verify lists "
                "every missing file).",
                code="evidence_missing",
            )
    return sorted(found.values(), key=lambda f: f.sha256)


@transaction.atomic
def _record_export(*, actor: Actor, case: OffboardingCase) -> PackPlan:
    require(actor, "cases.export")
    indices = list(
        LedgerEntry.objects.filter(org_id=case.org_id, case=case)
        .order_by("index")
        .values_list("index", flat=True)
    )
    checkpoint = _covering(case, indices[-1]) if indices else None
    if checkpoint is None:
        checkpoint = checkpoints.issue_checkpoint(org=actor.org, reason="export", case=case)
    loaded = fresh(case)
    state = case_state(loaded)
    plan = PackPlan(
        case=loaded,
        checkpoint=checkpoint,
        event_indices=[i for i in indices if i < checkpoint.size],
        files=_referenced_files(case, [i for i in indices if i < checkpoint.size]),
        state=state,
        state_digest=digest(state),
        made_at=clock.now(),
        keys=list(SigningKey.objects.filter(org_id=case.org_id).order_by("created_at", "id")),
        earlier_sizes={
            int(size): bytes(root)
            for size, root in Checkpoint.objects.filter(
                org_id=case.org_id, size__gt=0, size__lt=checkpoint.size
            ).values_list("size", "root")
        },
    )
    record_event(
        actor=actor,
        type="case.exported",
        case=case,
        data={
            "format": "bagit-zip",
            "checkpoint": {"size": checkpoint.size, "root": bytes(checkpoint.root).hex()},
            "events": len(plan.event_indices),
            "files": len(plan.files),
            "file_bytes": plan.file_bytes,
            "state_digest": plan.state_digest,
        },
    )
    return plan


def start_export(*, actor: Actor, case: OffboardingCase) -> PackPlan:
    """Record the export of `case` (auditor, manager, admin) and fix what the pack holds.

    Allowed on closed cases: it reads, and its event is like an addendum. If the checkpoint
    has no granted timestamp yet, its due requests are made now (bounded by the TSA timeout);
    a TSA that is down leaves the pack without that token and the worker retries later.
    """
    with timestamps.inline():  # no after-commit thread: the requests are made just below
        plan = _record_export(actor=actor, case=case)
    cp = plan.checkpoint
    if settings.OFFBOARD_TSA_URLS and not cp.timestamps.filter(status="granted").exists():
        timestamps.process_pending(checkpoint_id=cp.pk)
    return plan


# --- the zip -----------------------------------------------------------------------------------


class _Sink:
    """The write-only stream zipfile writes into; the generator hands out what it holds."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class _BagWriter:
    """Writes members under the bag's base directory and remembers their SHA-256."""

    def __init__(self, base: str, when: dt.datetime, progress: Progress | None) -> None:
        self.base = base
        self.date_time = when.astimezone(dt.UTC).timetuple()[:6]
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w")  # closed in finish()
        self.payload: list[tuple[str, str]] = []
        self.tags: list[tuple[str, str]] = []
        self.payload_bytes = 0
        self.progress = progress

    def add(self, path: str, content: bytes, *, compress: bool = True) -> Iterator[bytes]:
        return self.add_stream(path, [content], len(content), compress=compress)

    def add_stream(
        self, path: str, chunks: Iterable[bytes], size: int, *, compress: bool = False
    ) -> Iterator[bytes]:
        info = zipfile.ZipInfo(f"{self.base}/{path}", date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        info.file_size = size
        sha, written = hashlib.sha256(), 0
        with self.zip.open(info, "w", force_zip64=size > zipfile.ZIP64_LIMIT // 2) as out:
            for chunk in chunks:
                out.write(chunk)
                sha.update(chunk)
                written += len(chunk)
                if self.progress and not compress:
                    self.progress(len(chunk))
                yield self.sink.drain()
        if path.startswith("data/"):
            self.payload.append((sha.hexdigest(), path))
            self.payload_bytes += written
        else:
            self.tags.append((sha.hexdigest(), path))
        yield self.sink.drain()

    def finish(self, bag_info: str) -> Iterator[bytes]:
        manifest = "".join(fmt.manifest_line(sha, p) for sha, p in self.payload)
        yield from self.add(fmt.BAG_INFO, bag_info.encode())
        yield from self.add(fmt.MANIFEST, manifest.encode())
        tagmanifest = "".join(fmt.manifest_line(sha, p) for sha, p in self.tags)
        yield from self.add(fmt.TAGMANIFEST, tagmanifest.encode())
        self.zip.close()
        yield self.sink.drain()


def _stored_chunks(evidence: EvidenceFile) -> Iterator[bytes]:
    with storage.open_stored(evidence.storage_name) as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _issued_certificate(case: OffboardingCase) -> EvidenceFile | None:
    """The closure certificate stored at closure (and mailed to the client), if issued yet;
    open cases, and closed ones whose certificate is still queued, get a fresh rendering."""
    from offboard.notifications.selectors import receipt_for

    if case.state != OffboardingCase.State.CLOSED:
        return None
    receipt = receipt_for(case)
    return receipt.certificate if receipt is not None else None


def _evidence_files(plan: PackPlan, writer: _BagWriter) -> Iterator[bytes]:
    """Every referenced file, streamed; its bytes must hash to its name (checked once written:
    the hash the manifest needs is the one that checks the storage)."""
    for evidence in plan.files:
        path = fmt.file_path(evidence.sha256)
        yield from writer.add_stream(path, _stored_chunks(evidence), evidence.size)
        sha = writer.payload[-1][0]
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


def _case_json(plan: PackPlan) -> bytes:
    case = plan.case
    doc = {
        "format": fmt.CASE_JSON_FORMAT,
        "case": {
            "ref": case.ref,
            "state": case.state,
            "client": case.client.name,
            "closed_at": case.closed_at,
            "organization": case.org.slug,
        },
        "state_digest": plan.state_digest,
        "state": plan.state,
    }
    text = json.dumps(to_jsonable(doc), indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def _timestamps_line(plan: PackPlan) -> str:
    rows = list(plan.checkpoint.timestamps.order_by("id"))
    if not rows:
        return "none (no time-stamping authority was configured)"
    granted = [t for t in rows if t.status == Timestamp.Status.GRANTED]
    times = ", ".join(t.gen_time.strftime("%Y-%m-%d %H:%M:%S UTC") for t in granted if t.gen_time)
    line = f"{len(granted)} granted ({times or 'none'})"
    pending = len(rows) - len(granted)
    return line + (f"; {pending} requested, not yet granted" if pending else "")


def _readme(plan: PackPlan) -> bytes:
    cp, case = plan.checkpoint, plan.case
    closed = case.state == OffboardingCase.State.CLOSED
    values = {
        "ref": case.ref,
        "client": case.client.name,
        "org_name": case.org.name,
        "generated_at": plan.made_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "state_line": case.state
        if closed
        else f"{case.state} - NOT CLOSED: this is an interim pack",
        "origin": cp.signed_note.split("\n", 1)[0],
        "size": cp.size,
        "root_hex": bytes(cp.root).hex(),
        "verifier_key": cp.key.verifier_key,
        "timestamps_line": _timestamps_line(plan),
        "certificate_line": "the closure certificate: the five questions answered"
        if closed
        else "an interim report (the case is not closed)",
        "event_count": len(plan.event_indices),
        "zip_name": plan.filename,
        "base": plan.base,
    }
    text = string.Template(README_TEMPLATE.read_text(encoding="utf-8")).substitute(values)
    return text.encode("utf-8")


def _bag_info(plan: PackPlan, writer: _BagWriter) -> str:
    cp, case = plan.checkpoint, plan.case
    fields = [
        ("Source-Organization", case.org.name),
        ("External-Identifier", case.ref),
        (
            "External-Description",
            f"Evidence pack of offboarding case {case.ref} ({case.client.name}), "
            f"{'closed' if case.state == 'closed' else 'interim: the case is ' + case.state}",
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
    yield from writer.add(fmt.README, _readme(plan))
    yield from writer.add(fmt.CHECKPOINT, timestamps.message_for(cp))
    for key in plan.keys:
        yield from writer.add(f"{fmt.KEYS_DIR}{key.key_id}.pub", f"{key.verifier_key}\n".encode())
    yield from _timestamps(plan, writer)
    yield from _events(plan, writer)
    for size, root in sorted(plan.earlier_sizes.items()):
        hashes = store.consistency_proof(org_id, size, cp.size)
        text = fmt.encode_consistency_proof(size, root, cp.size, bytes(cp.root), hashes)
        yield from writer.add(fmt.consistency_path(size), text.encode())
    yield from writer.add(fmt.CASE_JSON, _case_json(plan))
    issued = _issued_certificate(plan.case)
    if issued is not None:  # the certificate the client received at closure, byte for byte
        yield from writer.add_stream(fmt.CERTIFICATE, _stored_chunks(issued), issued.size)
    else:
        pdf = render_certificate(plan.case, checkpoint=cp)
        yield from writer.add(fmt.CERTIFICATE, pdf, compress=False)
    yield from _evidence_files(plan, writer)
    yield from writer.finish(_bag_info(plan, writer))
