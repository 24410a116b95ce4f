"""The log proofs: the checkpoint and its signature, every event's inclusion, consistency
with earlier checkpoints and with the one the client holds."""

from __future__ import annotations

import json
from typing import Any

from offboard.ledger.merkle import HASH_SIZE, leaf_hash, verify_consistency, verify_inclusion
from offboard.ledger.note import (
    Checkpoint,
    NoteError,
    Verifier,
    open_checkpoint,
    open_note,
    parse_note,
)
from offboard.ledger.tlogproof import TlogProofError, parse_tlog_proof
from offboard.packs.verify import layout as fmt
from offboard.packs.verify.answers import VerifiedEvent
from offboard.packs.verify.run import Run


def _pack_keys(run: Run, problems: list[str]) -> list[Verifier]:
    keys = []
    for path in run.paths("key"):
        try:
            text = run.archive.text(path)
            if not text.endswith("\n") or "\n" in text[:-1]:
                raise NoteError("must be one line ending with a newline")
            keys.append(Verifier.from_verifier_key(text[:-1]))
        except (ValueError, NoteError) as exc:
            problems.append(f"{path}: not a note verifier key: {exc}")
    if not keys and not problems:
        problems.append(f"{fmt.KEYS_DIR} holds no verifier key")
    return keys


def check_checkpoint(run: Run) -> None:
    problems: list[str] = []
    keys = _pack_keys(run, problems)
    summary = "data/checkpoint is a signed checkpoint that verifies with the key in data/keys/"
    if not run.has(fmt.CHECKPOINT):
        run.add("checkpoint", summary, problems or [f"{fmt.CHECKPOINT} is missing"])
        return
    raw = run.archive.members[fmt.CHECKPOINT].content or b""
    run.checkpoint_raw = raw
    try:
        run.checkpoint = Checkpoint.parse(parse_note(raw).text)
    except NoteError as exc:
        problems.append(f"{fmt.CHECKPOINT}: {exc}")
    if run.checkpoint is not None and not keys:
        _name_missing_key(run, raw, problems)
    if run.checkpoint is not None and keys:
        try:
            note = open_note(raw, keys)
        except NoteError as exc:
            problems.append(f"{fmt.CHECKPOINT} does not verify with the pack's keys: {exc}")
            _name_missing_key(run, raw, problems)
        else:
            signed = {(s.name, s.key_id) for s in note.signatures if s.verified}
            signer = next(k for k in keys if (k.name, k.key_id) in signed)
            run.signed_by = signer.verifier_key()
            if signer.name != run.checkpoint.origin:
                problems.append(
                    f"{fmt.CHECKPOINT} is signed by key {signer.name}, not by the key of its "
                    f"log {run.checkpoint.origin}"
                )
            else:
                run.trusted = run.key is None
    if run.checkpoint is not None:
        cp = run.checkpoint
        summary = (
            f"{fmt.CHECKPOINT}: log {cp.origin}, size {cp.size}, root {cp.root.hex()[:16]}…, "
            f"signed by {run.signed_by.split('+')[1] if run.signed_by else '?'} (key in "
            f"{fmt.KEYS_DIR})"
        )
    run.add("checkpoint", summary, problems)
    if run.key is not None:
        check_given_key(run, raw)


def _name_missing_key(run: Run, raw: bytes, problems: list[str]) -> None:
    """Name the key file the checkpoint's signatures call for, when it is not in the pack."""
    try:
        signatures = parse_note(raw).signatures
    except NoteError:
        return
    for sig in signatures:
        path = f"{fmt.KEYS_DIR}{sig.key_id.hex()}.pub"
        if not run.has(path) and path not in run.archive.unreadable:
            problems.append(f"{path} is missing: it is the key of the signature by {sig.name}")


def check_given_key(run: Run, raw: bytes) -> None:
    """With --key: the checkpoint must be signed by that key, and the key be its log's."""
    if run.key is None:
        return
    given = f"{run.key.name}+{run.key.key_id.hex()}"
    try:
        open_checkpoint(raw, [run.key], origin=run.key.name)
        run.trusted = run.checkpoint is not None
        run.add("key", f"{fmt.CHECKPOINT} is signed by the key you gave ({given})", [])
    except NoteError as exc:
        run.add(
            "key",
            "",
            [f"{fmt.CHECKPOINT} is not signed by the key given with --key ({given}): {exc}"],
        )


# --- events and their inclusion proofs ---------------------------------------------------------


def _leaf_of(run: Run, index: int, problems: list[str]) -> tuple[bytes | None, Any]:
    """The leaf hash of entry `index` and its parsed body (None when redacted or unusable)."""
    event, redacted = fmt.event_path(index), fmt.redacted_path(index)
    if run.has(event) and run.has(redacted):
        problems.append(f"{event} and {redacted} both exist; an event is one or the other")
        return None, None
    if run.has(redacted):
        try:
            text = run.archive.text(redacted)
            raw = bytes.fromhex(text[:-1]) if text.endswith("\n") else b""
        except ValueError:
            text, raw = "", b""
        if len(raw) != HASH_SIZE or text != raw.hex() + "\n":
            problems.append(f"{redacted} must hold the 64-hex-digit leaf hash and a newline")
            return None, None
        return raw, None
    body = run.archive.members[event].content or b""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        problems.append(f"{event} is not valid UTF-8")
        parsed = None
    except ValueError as exc:
        problems.append(f"{event} is not JSON: {exc}")
        parsed = None
    return leaf_hash(body), parsed


def _event_problems(run: Run, path: str, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return [f"{path} is not an event object"]
    problems = []
    for name, kind in (
        ("type", str),
        ("at", str),
        ("actor", dict),
        ("data", dict),
        ("files", list),
    ):
        if not isinstance(body.get(name), kind):
            problems.append(f"{path}: `{name}` is missing or not a {kind.__name__}")
    if run.case_ref and body.get("case") != run.case_ref:
        problems.append(f"{path} is an event of case {body.get('case')!r}, not {run.case_ref}")
    if run.checkpoint and body.get("org") != run.checkpoint.origin.rsplit("/", 1)[-1]:
        problems.append(
            f"{path} is an event of organization {body.get('org')!r}, not of the log "
            f"{run.checkpoint.origin}"
        )
    files = body.get("files")
    if isinstance(files, list) and not all(
        isinstance(f, str) and fmt.kind_of(fmt.file_path(f)) == "file" for f in files
    ):
        problems.append(f"{path}: `files` must list lowercase hex SHA-256 hashes")
    return problems


def check_events(run: Run) -> None:
    problems: list[str] = []
    events = {fmt.number_in(p) for p in run.paths("event") + run.paths("redacted")}
    proofs = {fmt.number_in(p) for p in run.paths("proof")}
    unreadable = {fmt.number_in(p) for p in run.archive.unreadable if fmt.kind_of(p) == "proof"}
    if not events:
        problems.append(f"{fmt.EVENTS_DIR} holds no event")
    for index in sorted(proofs - events):
        problems.append(f"{fmt.proof_path(index)} has no event file ({fmt.event_path(index)})")
    cp, note_text = run.checkpoint, (run.checkpoint_raw or b"").decode("utf-8", "replace")
    included = redacted = 0
    for index in sorted(events):
        shown = (
            fmt.redacted_path(index) if run.has(fmt.redacted_path(index)) else fmt.event_path(index)
        )
        leaf, body = _leaf_of(run, index, problems)
        found = [] if body is None else _event_problems(run, shown, body)
        problems += found
        if index not in proofs:
            if index not in unreadable:
                problems.append(f"{shown} has no inclusion proof ({fmt.proof_path(index)})")
            continue
        path = fmt.proof_path(index)
        try:
            proof = parse_tlog_proof(run.archive.members[path].content or b"")
        except TlogProofError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if proof.index != index:
            problems.append(f"{path} proves entry {proof.index}, not {index}")
            continue
        if proof.checkpoint_text != note_text:
            problems.append(f"{path} is against another checkpoint than {fmt.CHECKPOINT}")
            continue
        if leaf is None or cp is None:
            continue
        if not verify_inclusion(leaf, index, cp.size, proof.hashes, cp.root):
            problems.append(
                f"{shown} is not included in the checkpointed log (leaf hash "
                f"{leaf.hex()[:16]}… with {path} does not lead to the root of {fmt.CHECKPOINT})"
            )
            continue
        included += 1
        if body is None:  # redacted, or not JSON (said above)
            if run.has(fmt.redacted_path(index)):
                redacted += 1
                if run.trusted:
                    run.evidence.redacted.append(index)
            continue
        if not found and run.trusted:
            run.evidence.events.append(VerifiedEvent(index, body, shown))
    size = cp.size if cp else "?"
    run.add(
        "events",
        f"{included} events ({redacted} redacted) of case {run.case_ref} are leaves of the log at "
        f"size {size}: each leaf hash and its {fmt.PROOFS_DIR} proof lead to the checkpoint root",
        problems,
    )


def _proofs_by_size(run: Run, problems: list[str]) -> dict[int, fmt.ConsistencyProof]:
    found: dict[int, fmt.ConsistencyProof] = {}
    cp = run.checkpoint
    for path in run.paths("consistency"):
        try:
            proof = fmt.parse_consistency_proof(run.archive.text(path))
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if proof.old_size != fmt.number_in(path):
            problems.append(f"{path} is a proof from size {proof.old_size}, not its name's")
            continue
        if cp is None:
            continue
        if (proof.new_size, proof.new_root) != (cp.size, cp.root):
            problems.append(f"{path} does not end at {fmt.CHECKPOINT} (size {cp.size})")
            continue
        if not 0 < proof.old_size < cp.size or not verify_consistency(
            proof.old_size, cp.size, proof.old_root, cp.root, proof.hashes
        ):
            problems.append(
                f"{path} does not prove that size {proof.old_size} (root "
                f"{proof.old_root.hex()[:16]}…) is a prefix of {fmt.CHECKPOINT}"
            )
            continue
        found[proof.old_size] = proof
    return found


def check_consistency(run: Run) -> None:
    problems: list[str] = []
    proofs = _proofs_by_size(run, problems)
    run.add(
        "consistency",
        f"{len(proofs)} consistency proofs in {fmt.CONSISTENCY_DIR} lead from the organization's "
        f"earlier checkpoint sizes to {fmt.CHECKPOINT}",
        problems,
    )
    if run.client_checkpoint is not None:
        check_client_checkpoint(run, proofs)


def check_client_checkpoint(run: Run, proofs: dict[int, fmt.ConsistencyProof]) -> None:
    """With --checkpoint: the pack's checkpoint must be the client's or extend it."""
    if run.client_checkpoint is None:
        return
    cp = run.checkpoint
    trusted = [run.key] if run.key is not None else _pack_keys(run, [])
    problems: list[str] = []
    summary = ""
    try:
        theirs = open_checkpoint(run.client_checkpoint, trusted)
    except NoteError as exc:
        which = "--key" if run.key is not None else "the pack's key"
        run.add("client-checkpoint", "", [f"your checkpoint does not verify with {which}: {exc}"])
        return
    if cp is None:
        problems.append(f"{fmt.CHECKPOINT} is unusable, so your checkpoint cannot be compared")
    elif theirs.origin != cp.origin:
        problems.append(f"your checkpoint is of log {theirs.origin}, the pack's of {cp.origin}")
    elif theirs.size > cp.size:
        problems.append(
            f"your checkpoint (size {theirs.size}) is newer than {fmt.CHECKPOINT} (size "
            f"{cp.size}): this pack cannot show it extends yours; ask for a newer pack"
        )
    elif theirs.size == cp.size:
        if theirs.root != cp.root:
            problems.append(
                f"your checkpoint and {fmt.CHECKPOINT} have the same size {cp.size} but different "
                "roots: the log was forked or rewritten"
            )
        summary = f"your checkpoint of size {theirs.size} is {fmt.CHECKPOINT} itself (same root)"
    else:
        path = fmt.consistency_path(theirs.size)
        proof = proofs.get(theirs.size)
        if proof is None:
            problems.append(
                f"{path} is missing or invalid: the pack does not show that {fmt.CHECKPOINT} "
                f"extends your checkpoint of size {theirs.size}"
            )
        elif proof.old_root != theirs.root or not verify_consistency(
            theirs.size, cp.size, theirs.root, cp.root, proof.hashes
        ):
            problems.append(
                f"{fmt.CHECKPOINT} (size {cp.size}) is not an extension of your checkpoint of "
                f"size {theirs.size}: {path} does not lead from your root "
                f"{theirs.root.hex()[:16]}… to it — the log was forked or rewritten"
            )
        summary = (
            f"{fmt.CHECKPOINT} (size {cp.size}) extends your checkpoint of size {theirs.size} "
            f"({path})"
        )
    if not problems:
        run.evidence.client_size = theirs.size
    run.add("client-checkpoint", summary, problems)
