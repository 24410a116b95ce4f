"""What the events refer to and commit to: evidence files, the case state, the README, the
certificate, and the timestamps over the checkpoint."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography import x509
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

from offboard.packs.verify import layout as fmt
from offboard.packs.verify.chain import closed_events, export_event
from offboard.packs.verify.run import Run


def check_files(run: Run) -> None:
    problems: list[str] = []
    referenced: dict[str, str] = {}
    for entry in run.ordered():
        files = (entry.body or {}).get("files")
        for sha in files if isinstance(files, list) else []:
            if isinstance(sha, str):
                referenced.setdefault(sha, entry.path)
    for sha, by in sorted(referenced.items()):
        path = fmt.file_path(sha)
        member = run.archive.members.get(path)
        if member is None:
            if path not in run.archive.unreadable:
                problems.append(f"{path} is missing (referenced by {by})")
        elif member.sha256 != sha:
            problems.append(
                f"{path} does not have the content its name promises: sha256 {member.sha256}"
            )
    for path in run.paths("file"):
        if path.rsplit("/", 1)[1] not in referenced:
            problems.append(f"{path} is not referenced by any event in the pack")
    run.add(
        "files",
        f"{len(referenced)} evidence files referenced by the events are present, each with the "
        "SHA-256 its name gives",
        problems,
    )


def _sha256_of(run: Run, path: str) -> str | None:
    member = run.archive.members.get(path)
    return member.sha256 if member is not None else None


def check_bound(run: Run) -> None:
    """The pack's own export event commits to the exact bytes of data/case.json and
    data/README.txt (and, for a closed case, of the issued certificate)."""
    problems: list[str] = []
    exported = export_event(run)
    if exported is None:
        run.add(
            "bound",
            "",
            [
                f"no case.exported event at the last leaf of {fmt.CHECKPOINT}: nothing binds "
                f"{fmt.CASE_JSON} and {fmt.README} to the record"
            ],
        )
        return
    data = exported.data
    for path, key in ((fmt.CASE_JSON, "case_json_sha256"), (fmt.README, "readme_sha256")):
        found = _sha256_of(run, path)
        if found is None:
            problems.append(f"{path} is missing or unreadable")
        elif found != data.get(key):
            problems.append(
                f"{path} is not the file {exported.path} committed to (sha256 {found[:16]}…, "
                f"the event says {str(data.get(key))[:16]}…)"
            )
    run.add(
        "bound",
        f"{fmt.CASE_JSON} and {fmt.README} are the files the export event {exported.path} "
        "committed to",
        problems,
    )


def check_case_json(run: Run) -> None:
    problems: list[str] = []
    path = fmt.CASE_JSON
    summary = f"{path} holds the case state with its state digest"
    if not run.has(path):
        unreadable = path in run.archive.unreadable
        run.add("case", summary, [f"{path} {'could not be read' if unreadable else 'is missing'}"])
        return
    try:
        doc = json.loads(run.archive.text(path))
        state, digest = doc["state"], doc["state_digest"]
        computed = fmt.state_digest(state)
    except (ValueError, KeyError, TypeError) as exc:
        run.add("case", summary, [f"{path} is not a case state document: {exc}"])
        return
    if computed != digest:
        problems.append(f"{path}: the state digest is {digest}, but the state hashes to {computed}")
    if doc.get("format") != fmt.CASE_JSON_FORMAT:
        problems.append(f"{path}: format is {doc.get('format')!r}, not {fmt.CASE_JSON_FORMAT!r}")
    if not isinstance(state, dict) or not isinstance(state.get("case"), dict):
        run.add("case", summary, [f"{path}: `state` is not a case state object"])
        return
    ref = state["case"].get("ref")
    if ref != run.case_ref:
        problems.append(f"{path} is the state of case {ref!r}, not {run.case_ref}")
    shown = doc.get("case") if isinstance(doc.get("case"), dict) else {}
    exported = export_event(run)
    if exported is not None:
        if exported.data.get("state_digest") != computed:
            problems.append(
                f"{path}: the state digest {computed[:16]}… is not the one {exported.path} recorded"
            )
        if shown.get("state") != exported.data.get("case_state") or shown.get("ref") != ref:
            problems.append(
                f"{path} says case {shown.get('ref')!r} is {shown.get('state')!r}; "
                f"{exported.path} says {exported.data.get('case_state')!r}"
            )
    closures = closed_events(run)
    if problems:
        summary = f"{path} is not a consistent case state"
    elif closures:
        closed = closures[0]
        recorded = closed.data.get("state_digest")
        if recorded != computed:
            problems.append(
                f"{path}: the state digest {computed} is not the one the case was closed on "
                f"({recorded}, {closed.path})"
            )
        else:
            run.bound_state = state
            summary = (
                f"{path} is exactly the state the case was closed on (state digest "
                f"{computed[:16]}… = {closed.path})"
            )
    else:
        summary = (
            f"{path} is the state the export event recorded (state digest {computed[:16]}…); "
            "the case is not closed, so no closure binds it"
        )
    run.add("case", summary, problems)


def check_certificate(run: Run) -> None:
    """A closed case's data/certificate.pdf is the certificate issued at closure: the file
    its `case.certificate_issued` event names (and the export event repeats). An interim
    pack's report is bound by nothing, and the check says so."""
    path = fmt.CERTIFICATE
    member = run.archive.members.get(path)
    if member is None:
        unreadable = path in run.archive.unreadable
        run.add(
            "certificate", "", [f"{path} {'could not be read' if unreadable else 'is missing'}"]
        )
        return
    issued = [e for e in run.ordered() if e.type == "case.certificate_issued"]
    if not closed_events(run):
        run.add(
            "certificate",
            f"{path} is an interim report rendered at export (the case is not closed): no event "
            "binds it, so nothing in it is evidence (informational)",
            [],
        )
        return
    if not issued:
        run.add("certificate", "", [f"{path}: no case.certificate_issued event issues it"])
        return
    files = issued[-1].body.get("files") if issued[-1].body else []
    exported = export_event(run)
    problems = []
    if member.sha256 not in (files or []):
        problems.append(
            f"{path} has sha256 {member.sha256}, but {issued[-1].path} issued "
            f"{', '.join(files or []) or 'no file'}"
        )
    if exported is not None and exported.data.get("certificate_sha256") != member.sha256:
        problems.append(f"{path} is not the certificate {exported.path} committed to")
    run.add(
        "certificate",
        f"{path} is the certificate issued at closure ({issued[-1].path}, sha256 "
        f"{member.sha256[:16]}…)",
        problems,
    )


# --- timestamps --------------------------------------------------------------------------------


def _pem_certificates(run: Run, path: str, problems: list[str]) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(run.archive.members[path].content or b"")
    except ValueError as exc:
        problems.append(f"{path}: not PEM certificates: {exc}")
        return []


def unique_certificates(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for cert in certs:
        if cert not in out:
            out.append(cert)
    return out


def tsa_signer(response: Any) -> x509.Certificate | None:
    """The certificate that signed the token: the one its SignerInfo names (issuer and serial
    number), never one picked from the token's unordered certificate set."""
    infos = list(response.signed_data.signer_infos)
    if len(infos) != 1:
        return None
    info = infos[0]
    for der in response.signed_data.certificates:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        if cert.issuer == info.issuer and cert.serial_number == info.serial_number:
            return cert
    return None


def _name(cert: x509.Certificate | None) -> str:
    if cert is None:
        return "an unnamed TSA"
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string() or "an unnamed TSA"


def check_timestamps(run: Run) -> None:
    problems: list[str] = []
    tokens = run.paths("token")
    message = run.checkpoint_raw
    for path in run.paths("chain"):
        token = path.replace(".chain.pem", ".tsr")
        if token not in run.archive.members and token not in run.archive.unreadable:
            problems.append(f"{token} is missing: {path} has no token beside it")
    verified = 0
    for path in tokens:
        chain_path = path.replace(".tsr", ".chain.pem")
        chain = _pem_certificates(run, chain_path, problems) if run.has(chain_path) else []
        self_signed = [c for c in chain if c.subject == c.issuer]
        intermediates = [c for c in chain if c.subject != c.issuer]
        anchored = run.tsa_roots is not None
        roots = unique_certificates(run.tsa_roots if run.tsa_roots is not None else self_signed)
        try:
            response = decode_timestamp_response(run.archive.members[path].content or b"")
        except ValueError as exc:
            problems.append(f"{path} is not an RFC 3161 timestamp reply: {exc}")
            continue
        if not roots:
            problems.append(
                f"cannot check the signature of {path}: {chain_path} carries no root "
                "certificate; give the TSA's root with --tsa-roots"
            )
            continue
        if message is None:
            problems.append(f"{path} cannot be checked: {fmt.CHECKPOINT} is missing")
            continue
        try:
            builder = VerifierBuilder(roots=roots, intermediates=unique_certificates(intermediates))
            builder.build().verify_message(response, message)
        except (VerificationError, ValueError) as exc:
            where = "--tsa-roots" if anchored else chain_path
            problems.append(
                f"{path} is not a valid timestamp of {fmt.CHECKPOINT} (checked against {where}): {exc}"
            )
            continue
        verified += 1
        gen_time = response.tst_info.gen_time
        if gen_time.tzinfo is None:
            gen_time = gen_time.replace(tzinfo=dt.UTC)
        run.timestamps.append((path, gen_time, _name(tsa_signer(response)), anchored))
    if not tokens:
        summary = (
            f"no timestamp tokens in {fmt.TIMESTAMPS_DIR} (no time-stamping authority was "
            "configured, or none had answered when the pack was made)"
        )
    elif run.tsa_roots is not None:
        summary = (
            f"{verified} of {len(tokens)} timestamp tokens verify over {fmt.CHECKPOINT}, "
            "their TSA chains anchored to --tsa-roots (a timestamp proves when, never who)"
        )
    else:
        summary = (
            f"{verified} of {len(tokens)} timestamp tokens verify over {fmt.CHECKPOINT} with the "
            "TSA chain carried in the pack — not anchored: give --tsa-roots to anchor them"
        )
    run.add("timestamps", summary, problems)
