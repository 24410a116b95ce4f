"""What the events refer to and say: evidence files, the case state, the timestamps."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography import x509
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

from offboard.packs.verify import layout as fmt
from offboard.packs.verify.run import Run


def check_files(run: Run) -> None:
    problems: list[str] = []
    referenced: dict[str, str] = {}
    for index in sorted({fmt.number_in(p) for p in run.paths("event")}):
        path = fmt.event_path(index)
        try:
            body = json.loads((run.archive.members[path].content or b"").decode("utf-8"))
        except ValueError:
            continue  # reported by the events check
        files = body.get("files") if isinstance(body, dict) else None
        for sha in files if isinstance(files, list) else []:
            if isinstance(sha, str):
                referenced.setdefault(sha, path)
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
    closed = run.evidence.last("case.closed")
    if problems:
        summary = f"{path} is not a consistent case state"
    elif closed is not None:
        recorded = closed.body["data"].get("state_digest")
        if recorded != computed:
            problems.append(
                f"{path}: the state digest {computed} is not the one the case was closed on "
                f"({recorded}, {closed.path})"
            )
        else:
            run.evidence.state = state
            summary = (
                f"{path} is exactly the state the case was closed on (state digest "
                f"{computed[:16]}… = {closed.path})"
            )
    else:
        summary = (
            f"{path} is consistent with its state digest {computed[:16]}…; the case is not "
            "closed, so no event binds it (informational)"
        )
    run.evidence.case_document = doc if isinstance(doc, dict) else {}
    run.add("case", summary, problems)


def check_certificate(run: Run) -> None:
    """For a closed case, data/certificate.pdf must be the certificate issued at closure: the
    file a verified `case.certificate_issued` event names. Otherwise only fixity covers it."""
    path = fmt.CERTIFICATE
    member = run.archive.members.get(path)
    issued = run.evidence.last("case.certificate_issued")
    if member is None:
        unreadable = path in run.archive.unreadable
        run.add(
            "certificate",
            f"{path}",
            [f"{path} {'could not be read' if unreadable else 'is missing'}"],
        )
        return
    if issued is None:
        run.add(
            "certificate",
            f"{path} is covered by the bag's fixity only: no verified event issues it (an open "
            "case, or a closed one exported before its certificate was issued) (informational)",
            [],
        )
        return
    files = issued.body.get("files") or []
    if member.sha256 in files:
        run.add(
            "certificate",
            f"{path} is the certificate issued at closure ({issued.path}, sha256 "
            f"{member.sha256[:16]}…)",
            [],
        )
    else:
        run.add(
            "certificate",
            f"{path} is not the certificate issued at closure",
            [
                f"{path} has sha256 {member.sha256}, but {issued.path} issued "
                f"{', '.join(files) or 'no file'}"
            ],
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


def _tsa_name(response: Any) -> str:
    try:
        for der in response.signed_data.certificates:
            cert = x509.load_der_x509_certificate(der)
            names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            if names:
                return str(names[0].value)
    except ValueError:
        pass
    return "an unnamed TSA"


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
        run.evidence.timestamps.append((path, gen_time, _tsa_name(response), anchored))
    if not tokens:
        summary = (
            f"no timestamp tokens in {fmt.TIMESTAMPS_DIR} (no time-stamping authority was "
            "configured, or none had answered when the pack was made)"
        )
    elif run.tsa_roots is not None:
        summary = (
            f"{verified} of {len(tokens)} timestamp tokens verify over {fmt.CHECKPOINT}, "
            "their TSA chains anchored to --tsa-roots"
        )
    else:
        summary = (
            f"{verified} of {len(tokens)} timestamp tokens verify over {fmt.CHECKPOINT} with the "
            "TSA chain carried in the pack — not anchored: give --tsa-roots to anchor them"
        )
    run.add("timestamps", summary, problems)
