"""The log proofs: the checkpoint and who signed it, the client's receipt, every entry's
inclusion, consistency with earlier checkpoints and with the ones the user holds.

Trust comes only from outside the pack (decision 0010): keys given with --key and the key in
the closure receipt. data/keys/ only says which key signed data/checkpoint.
"""

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
from offboard.ledger.receipt import ReceiptError, open_receipt
from offboard.ledger.tlogproof import TlogProofError, parse_tlog_proof
from offboard.packs.verify import layout as fmt
from offboard.packs.verify.run import Entry, Run


def _key_id(verifier_key: str) -> str:
    return verifier_key.split("+")[1] if verifier_key.count("+") >= 2 else "?"


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
    return keys


def _trusted_signer(raw: bytes, keys: list[Verifier]) -> Verifier | None:
    """The trusted key that signed this checkpoint for its own log, if one did."""
    for key in keys:
        try:
            open_checkpoint(raw, [key], origin=key.name)
        except NoteError:
            continue
        return key
    return None


def check_checkpoint(run: Run) -> None:
    problems: list[str] = []
    keys = _pack_keys(run, problems)
    if not run.has(fmt.CHECKPOINT):
        run.add("checkpoint", "", [*problems, f"{fmt.CHECKPOINT} is missing"])
        return
    raw = run.archive.members[fmt.CHECKPOINT].content or b""
    run.checkpoint_raw = raw
    try:
        run.checkpoint = Checkpoint.parse(parse_note(raw).text)
    except NoteError as exc:
        run.add("checkpoint", "", [*problems, f"{fmt.CHECKPOINT}: {exc}"])
        return
    cp = run.checkpoint
    # Which key signed it, as the pack tells it: informational, and the pack must at least
    # be consistent with itself.
    try:
        note = open_note(raw, keys) if keys else None
    except NoteError as exc:
        problems.append(f"{fmt.CHECKPOINT} is not signed by any key in {fmt.KEYS_DIR}: {exc}")
        note = None
    if note is not None:
        signed = {(s.name, s.key_id) for s in note.signatures if s.verified}
        signer = next(k for k in keys if (k.name, k.key_id) in signed)
        run.signed_by = signer.verifier_key()
        if signer.name != cp.origin:
            problems.append(
                f"{fmt.CHECKPOINT} is signed by key {signer.name}, not by a key of its log "
                f"{cp.origin}"
            )
    elif not keys:
        _name_missing_key(run, raw, problems)
    summary = (
        f"{fmt.CHECKPOINT}: log {cp.origin}, size {cp.size}, root {cp.root.hex()[:16]}…, "
        f"signed by key {_key_id(run.signed_by)} (named in {fmt.KEYS_DIR}: that says which key "
        "signed, not whether to trust it)"
    )
    run.add("checkpoint", summary, problems)
    if run.given_keys:
        _check_given_keys(run, raw)


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


def _check_given_keys(run: Run, raw: bytes) -> None:
    """With --key: data/checkpoint must be signed by one of those keys, for its own log."""
    shown = ", ".join(f"{k.name}+{k.key_id.hex()}" for k in run.given_keys)
    signer = _trusted_signer(raw, run.given_keys)
    if signer is None:
        run.add(
            "key",
            "",
            [
                f"{fmt.CHECKPOINT} is not signed by the key you gave with --key ({shown}): the "
                "pack is not the organization's record, or you gave another organization's key"
            ],
        )
        return
    run.pack_trusted = True
    run.add("key", f"{fmt.CHECKPOINT} is signed by the key you gave ({signer.key_id.hex()})", [])


def check_receipt(run: Run) -> None:
    """With --receipt: the receipt proves itself (its key signed its checkpoint, its closure
    event is a leaf of it), is of this case and of this log. Its key becomes trusted."""
    if run.receipt_raw is None:
        return
    try:
        receipt, checkpoint = open_receipt(run.receipt_raw)
    except ReceiptError as exc:
        run.add("receipt", "", [f"your closure receipt: {exc}"])
        return
    problems: list[str] = []
    if run.case_ref is not None and receipt.case_ref != run.case_ref:
        problems.append(
            f"your closure receipt is for case {receipt.case_ref}; this pack is of case "
            f"{run.case_ref}"
        )
    if run.checkpoint is not None and checkpoint.origin != run.checkpoint.origin:
        problems.append(
            f"your closure receipt is of log {checkpoint.origin}; this pack's is "
            f"{run.checkpoint.origin}"
        )
    if receipt.closed_index != checkpoint.size - 1:
        problems.append(
            f"your closure receipt's checkpoint (size {checkpoint.size}) does not end at its "
            f"closure event #{receipt.closed_index}: it is not a closure receipt Offboard issues"
        )
    if problems:
        run.add("receipt", "", problems)
        return
    run.receipt, run.receipt_checkpoint = receipt, checkpoint
    run.case_ref = receipt.case_ref
    signed = run.checkpoint_raw is not None and _trusted_signer(run.checkpoint_raw, [receipt.key])
    if signed and not run.given_keys:  # with --key, data/checkpoint must be signed by that
        run.pack_trusted = True
    run.add(
        "receipt",
        f"your closure receipt of case {receipt.case_ref} proves itself: its checkpoint (size "
        f"{checkpoint.size}) is signed by key {receipt.key.key_id.hex()}, and its closure event "
        f"#{receipt.closed_index} is that checkpoint's last leaf",
        [],
    )


# --- entries and their inclusion proofs --------------------------------------------------------


def _leaf_of(run: Run, index: int, problems: list[str]) -> tuple[bytes | None, Any, bool]:
    """The leaf hash of entry `index`, its parsed body, and whether it is a placeholder."""
    event, redacted = fmt.event_path(index), fmt.redacted_path(index)
    if run.has(event) and run.has(redacted):
        problems.append(f"{event} and {redacted} both exist; an event is one or the other")
        return None, None, False
    if run.has(redacted):
        try:
            text = run.archive.text(redacted)
            raw = bytes.fromhex(text[:-1]) if text.endswith("\n") else b""
        except ValueError:
            text, raw = "", b""
        if len(raw) != HASH_SIZE or text != raw.hex() + "\n":
            problems.append(f"{redacted} must hold the 64-hex-digit leaf hash and a newline")
            return None, None, True
        return raw, None, True
    body = run.archive.members[event].content or b""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        problems.append(f"{event} is not valid UTF-8")
        parsed = None
    except ValueError as exc:
        problems.append(f"{event} is not JSON: {exc}")
        parsed = None
    return leaf_hash(body), parsed, False


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
        placeholder = run.has(fmt.redacted_path(index))
        shown = fmt.redacted_path(index) if placeholder else fmt.event_path(index)
        leaf, body, placeholder = _leaf_of(run, index, problems)
        found = [] if body is None else _event_problems(run, shown, body)
        problems += found
        entry = Entry(
            index, shown, leaf, body if body is not None and not found else None, placeholder
        )
        run.entries[index] = entry
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
        entry.included = True
        included += 1
        redacted += placeholder
    size = cp.size if cp else "?"
    run.add(
        "events",
        f"{included} entries ({redacted} erased) of case {run.case_ref} are leaves of the log "
        f"at size {size}: each leaf hash and its {fmt.PROOFS_DIR} proof lead to the "
        "checkpoint root",
        problems,
    )


# --- consistency -------------------------------------------------------------------------------


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
    if run.receipt is not None and run.receipt_checkpoint is not None:
        size = _extends(run, "receipt-log", "your receipt's", run.receipt_checkpoint, proofs)
        run.receipt_size = size
    if run.client_checkpoint is not None:
        _check_client_checkpoint(run, proofs)


def _check_client_checkpoint(run: Run, proofs: dict[int, fmt.ConsistencyProof]) -> None:
    """With --checkpoint: it must be signed by a key the user trusts, and the pack's log must
    be it or extend it."""
    trusted = run.trusted_keys
    signer = _trusted_signer(run.client_checkpoint or b"", trusted)
    if signer is None:
        run.add(
            "client-checkpoint",
            "",
            ["your checkpoint (--checkpoint) is not signed by a key you gave (--key or the "
             "key in your receipt)"],
        )  # fmt: skip
        return
    theirs = open_checkpoint(run.client_checkpoint or b"", [signer], origin=signer.name)
    run.client_size = _extends(run, "client-checkpoint", "your", theirs, proofs)


def _extends(
    run: Run, name: str, whose: str, theirs: Checkpoint, proofs: dict[int, fmt.ConsistencyProof]
) -> int | None:
    """Check that data/checkpoint is `theirs` or extends it; the size it anchors, or None."""
    cp = run.checkpoint
    problems: list[str] = []
    summary = ""
    if cp is None:
        problems.append(f"{fmt.CHECKPOINT} is unusable, so {whose} checkpoint cannot be compared")
    elif theirs.origin != cp.origin:
        problems.append(f"{whose} checkpoint is of log {theirs.origin}, the pack's of {cp.origin}")
    elif theirs.size > cp.size:
        problems.append(
            f"{whose} checkpoint (size {theirs.size}) is newer than {fmt.CHECKPOINT} (size "
            f"{cp.size}): this pack cannot show it extends yours; ask for a newer pack"
        )
    elif theirs.size == cp.size:
        if theirs.root != cp.root:
            problems.append(
                f"{whose} checkpoint and {fmt.CHECKPOINT} have the same size {cp.size} but "
                "different roots: the log was forked or rewritten"
            )
        summary = f"{whose} checkpoint of size {theirs.size} is {fmt.CHECKPOINT} itself"
    else:
        path = fmt.consistency_path(theirs.size)
        proof = proofs.get(theirs.size)
        if proof is None:
            problems.append(
                f"{path} is missing or invalid: the pack does not show that {fmt.CHECKPOINT} "
                f"extends {whose} checkpoint of size {theirs.size}"
            )
        elif proof.old_root != theirs.root or not verify_consistency(
            theirs.size, cp.size, theirs.root, cp.root, proof.hashes
        ):
            problems.append(
                f"{fmt.CHECKPOINT} (size {cp.size}) is not an extension of {whose} checkpoint "
                f"of size {theirs.size}: {path} does not lead from its root "
                f"{theirs.root.hex()[:16]}… — the log was forked or rewritten"
            )
        summary = (
            f"{fmt.CHECKPOINT} (size {cp.size}) extends {whose} checkpoint of size "
            f"{theirs.size} ({path}): nothing it held was rewritten"
        )
    run.add(name, summary, problems)
    return None if problems else theirs.size
