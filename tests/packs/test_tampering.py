"""Tampering with a real pack: every file of it, one way after another, must make the verifier
fail with a reason naming that file — with the manifests left as they were, and, for the files
the proofs bind, even with fresh manifests as a forger would make them."""

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from offboard.ledger.note import Checkpoint, Signer, parse_note, sign_note
from offboard.packs.verify import layout as fmt
from tests.packs.conftest import BuiltPacks, members_of, problems, tampered, verify

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline


def flip(position: str) -> Callable[[bytes], bytes]:
    def change(content: bytes) -> bytes:
        at = {"first": 0, "middle": len(content) // 2, "last": len(content) - 1}[position]
        return content[:at] + bytes([content[at] ^ 0x01]) + content[at + 1 :]

    return change


MUTATIONS: dict[str, Callable[[bytes], bytes] | None] = {
    "flip first byte": flip("first"),
    "flip middle byte": flip("middle"),
    "flip last byte": flip("last"),
    "truncate to half": lambda content: content[: len(content) // 2],
    "delete": None,
}


def _walk(
    packs: BuiltPacks, tmp_path: Path, mutation: str, fresh: bool, kinds: set[str] | None
) -> list[str]:
    """Mutate each member in turn; return the members whose mutation went unnoticed or
    unnamed."""
    _, members = members_of(packs.closed)
    missed = []
    for rel in members:
        if kinds is not None and fmt.kind_of(rel) not in kinds:
            continue
        change = MUTATIONS[mutation]

        def apply(
            m: dict[str, bytes], rel: str = rel, change: Callable[[bytes], bytes] | None = change
        ) -> None:
            if change is None:
                del m[rel]
            else:
                m[rel] = change(m[rel])

        path = tampered(tmp_path, packs.closed, apply, fresh_manifests=fresh)
        report = verify(path, key=packs.key(), tsa_roots=packs.roots())
        found = problems(report)
        if report.ok or not any(rel in p for p in found):
            missed.append(f"{rel}: ok={report.ok} {found[:3]}")
    return missed


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_every_file_of_a_pack_is_protected_and_named_when_changed(
    packs: BuiltPacks, tmp_path: Path, mutation: str
) -> None:
    assert verify(packs.closed, key=packs.key(), tsa_roots=packs.roots()).ok
    missed = _walk(packs, tmp_path, mutation, fresh=False, kinds=None)
    assert not missed, "\n".join(missed)


# Files the inclusion proofs, signatures, timestamps, state digest and the export event bind:
# rebuilding the manifests does not help a forger. (bag-info.txt and the TSA chain helper are
# covered by fixity only; docs/evidence-pack.md says so.)
BOUND = {
    *("event", "proof", "checkpoint", "key", "token", "consistency", "file", "case"),
    *("readme", "certificate"),  # the export event commits to both (decision 0010)
}


@pytest.mark.parametrize("mutation", ["flip middle byte", "truncate to half", "delete"])
def test_files_bound_by_the_proofs_fail_even_with_fresh_manifests(
    packs: BuiltPacks, tmp_path: Path, mutation: str
) -> None:
    # A consistency proof left out is only noticed by the client whose size it was for
    # (test_a_missing_consistency_proof_is_noticed_by_the_client_it_was_for).
    kinds = BOUND - {"consistency"} if mutation == "delete" else BOUND
    missed = _walk(packs, tmp_path, mutation, fresh=True, kinds=kinds)
    assert not missed, "\n".join(missed)


def test_a_missing_consistency_proof_is_noticed_by_the_client_it_was_for(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    size = int(packs.earlier.split(b"\n")[1])
    rel = fmt.consistency_path(size)
    path = tampered(tmp_path, packs.closed, lambda m: m.pop(rel), fresh_manifests=True)
    assert verify(path, key=packs.key()).ok
    report = verify(path, key=packs.key(), client_checkpoint=packs.earlier)
    assert not report.ok
    assert any(f"{rel} is missing or invalid" in p for p in problems(report))


def test_a_last_byte_changed_in_a_bound_file_with_fresh_manifests_is_caught(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    # The last byte of a signed note or proof is its closing newline: the parsers refuse it.
    missed = _walk(packs, tmp_path, "flip last byte", fresh=True, kinds=BOUND)
    assert not missed, "\n".join(missed)


def _resign(members: dict[str, bytes], signer: Signer) -> None:
    """Replace the checkpoint's signature and key by `signer`'s, everywhere it appears, and
    drop the timestamps (they cover the old bytes) — a self-consistent forgery."""
    old = members[fmt.CHECKPOINT].decode()
    new = sign_note(parse_note(old).text, signer)
    members[fmt.CHECKPOINT] = new.encode()
    for rel in list(members):
        kind = fmt.kind_of(rel)
        if kind == "proof":
            members[rel] = members[rel].decode().replace(old, new).encode()
        elif kind in ("key", "token", "chain"):
            del members[rel]
    members[f"{fmt.KEYS_DIR}{signer.key_id.hex()}.pub"] = (signer.verifier_key() + "\n").encode()


def test_a_pack_resigned_with_another_key_passes_alone_but_fails_against_the_real_key(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    origin = packs.closure.split(b"\n", 1)[0].decode()
    forger = Signer.generate(origin)
    path = tampered(tmp_path, packs.closed, lambda m: _resign(m, forger), fresh_manifests=True)

    alone = verify(path)
    # Self-consistent: the pack alone cannot tell — so it proves nothing and says so.
    assert alone.ok and alone.outcome == "unanchored" and alone.exit_code == 3, problems(alone)
    assert not any(a.proven for a in alone.answers)
    report = verify(path, key=packs.key())
    assert report.outcome == "failed" and report.exit_code == 1
    (key_check,) = [c for c in report.checks if c.name == "key"]
    assert not key_check.ok
    assert "data/checkpoint is not signed by the key you gave with --key" in key_check.problems[0]
    assert all(not a.proven for a in report.answers)
    assert "a check failed (key)" in report.answers[0].reasons[0]


def _signed_checkpoint(packs: BuiltPacks, size: int, root: bytes) -> bytes:
    origin = packs.closure.split(b"\n", 1)[0].decode()
    signer = Signer.from_signer_key(packs.signer_key)
    return sign_note(Checkpoint(origin, size, root).text(), signer).encode()


def test_the_checkpoints_a_client_holds_are_proven_to_be_extended(packs: BuiltPacks) -> None:
    for held in (packs.earlier, packs.closure):
        report = verify(packs.closed, key=packs.key(), client_checkpoint=held)
        (check,) = [c for c in report.checks if c.name == "client-checkpoint"]
        assert check.ok, check.problems
        assert report.outcome == "verified" and "--checkpoint" in report.anchors
        size = int(held.split(b"\n")[1])
        assert f"extends your checkpoint of size {size}" in check.summary


def test_a_pack_whose_checkpoint_does_not_extend_the_clients_fails(
    packs: BuiltPacks,
) -> None:
    earlier = Checkpoint.parse(parse_note(packs.earlier).text)
    forked = _signed_checkpoint(packs, earlier.size, bytes(32))  # same size, another history
    report = verify(packs.closed, key=packs.key(), client_checkpoint=forked)
    assert not report.ok
    (check,) = [c for c in report.checks if c.name == "client-checkpoint"]
    assert f"is not an extension of your checkpoint of size {earlier.size}" in check.problems[0]
    assert f"data/consistency/{earlier.size}.proof" in check.problems[0]

    same_size = _signed_checkpoint(packs, packs.closed_size, bytes(32))
    report = verify(packs.closed, key=packs.key(), client_checkpoint=same_size)
    (check,) = [c for c in report.checks if c.name == "client-checkpoint"]
    assert "same size" in check.problems[0] and "different roots" in check.problems[0]

    newer = _signed_checkpoint(packs, packs.closed_size + 5, bytes(32))
    report = verify(packs.closed, key=packs.key(), client_checkpoint=newer)
    (check,) = [c for c in report.checks if c.name == "client-checkpoint"]
    assert "is newer than data/checkpoint" in check.problems[0]

    no_proof = _signed_checkpoint(packs, 3, bytes(32))  # a size the org never checkpointed
    report = verify(packs.closed, key=packs.key(), client_checkpoint=no_proof)
    (check,) = [c for c in report.checks if c.name == "client-checkpoint"]
    assert "data/consistency/3.proof is missing" in check.problems[0]


def test_a_client_checkpoint_signed_by_another_key_is_refused(packs: BuiltPacks) -> None:
    origin = packs.closure.split(b"\n", 1)[0].decode()
    note = parse_note(packs.closure).text
    stranger = sign_note(note, Signer.generate(origin)).encode()
    report = verify(packs.closed, key=packs.key(), client_checkpoint=stranger)
    (check,) = [c for c in report.checks if c.name == "client-checkpoint"]
    assert not check.ok and "is not signed by a key you gave" in check.problems[0]
    assert report.outcome == "failed"


def test_a_placeholder_without_its_redaction_event_is_refused_even_with_the_right_hash(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    """An event swapped for its leaf hash hides what it said (a dispute, a failed revocation):
    the hash still proves inclusion, but only a redaction event of the case may justify it."""
    from offboard.ledger.merkle import leaf_hash

    _, members = members_of(packs.closed)
    index = min(fmt.number_in(p) for p in members if fmt.kind_of(p) == "event")

    def redact(m: dict[str, bytes]) -> None:
        body = m.pop(fmt.event_path(index))
        m[fmt.redacted_path(index)] = (leaf_hash(body).hex() + "\n").encode()

    path = tampered(tmp_path, packs.closed, redact, fresh_manifests=True)
    report = verify(path, key=packs.key())
    (events,) = [c for c in report.checks if c.name == "events"]
    assert events.ok, events.problems  # the hash is genuine …
    (complete,) = [c for c in report.checks if c.name == "completeness"]
    assert not complete.ok  # … but nothing justifies erasing that event
    assert (
        f"data/events/{index}.redacted stands for an erased event, but no" in complete.problems[0]
    )
    assert report.outcome == "failed" and not any(a.proven for a in report.answers)

    def wrong_hash(m: dict[str, bytes]) -> None:
        redact(m)
        m[fmt.redacted_path(index)] = (bytes(32).hex() + "\n").encode()

    path = tampered(tmp_path, packs.closed, wrong_hash, fresh_manifests=True)
    found = problems(verify(path, key=packs.key()))
    assert any(f"data/events/{index}.redacted is not included" in p for p in found), found


def test_an_event_of_another_case_slipped_in_is_refused(packs: BuiltPacks, tmp_path: Path) -> None:
    _, interim = members_of(packs.interim)
    foreign = max(fmt.number_in(p) for p in interim if fmt.kind_of(p) == "event")

    def slip(m: dict[str, bytes]) -> None:
        m[fmt.event_path(foreign)] = interim[fmt.event_path(foreign)]
        m[fmt.proof_path(foreign)] = interim[fmt.proof_path(foreign)]

    found = problems(verify(tampered(tmp_path, packs.closed, slip, fresh_manifests=True)))
    assert any(f"data/events/{foreign}.json is an event of case" in p for p in found), found
    assert any(
        f"data/proofs/{foreign}.tlog-proof is against another checkpoint" in p for p in found
    )


def test_case_json_that_is_not_the_closed_state_is_refused_even_when_self_consistent(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    import json

    def edit(m: dict[str, bytes]) -> None:
        doc = json.loads(m[fmt.CASE_JSON])
        doc["state"]["registers"]["deliverables"][0]["status"] = "rejected"
        doc["state_digest"] = fmt.state_digest(doc["state"])
        m[fmt.CASE_JSON] = json.dumps(doc).encode()

    report = verify(tampered(tmp_path, packs.closed, edit, fresh_manifests=True), key=packs.key())
    (case,) = [c for c in report.checks if c.name == "case"]
    assert any("is not the one data/events/" in p for p in case.problems)  # the export's
    (bound,) = [c for c in report.checks if c.name == "bound"]
    assert "data/case.json is not the file" in bound.problems[0]
    assert report.outcome == "failed" and not any(a.proven for a in report.answers)


def test_an_evidence_file_no_event_refers_to_is_refused(packs: BuiltPacks, tmp_path: Path) -> None:
    import hashlib

    extra = b"planted"
    name = fmt.file_path(hashlib.sha256(extra).hexdigest())
    found = problems(
        verify(
            tampered(
                tmp_path, packs.closed, lambda m: m.update({name: extra}), fresh_manifests=True
            )
        )
    )
    assert any(f"{name} is not referenced by any event" in p for p in found)


def test_the_consistency_proof_is_checked_even_without_a_client_checkpoint(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    _, members = members_of(packs.closed)
    rel = sorted(p for p in members if fmt.kind_of(p) == "consistency")[0]

    def wrong_root(m: dict[str, bytes]) -> None:
        lines = m[rel].decode().split("\n")
        lines[1] = lines[1].rsplit(" ", 1)[0] + " " + base64.b64encode(bytes(32)).decode()
        m[rel] = "\n".join(lines).encode()

    found = problems(verify(tampered(tmp_path, packs.closed, wrong_root, fresh_manifests=True)))
    assert any(f"{rel} does not prove that size" in p for p in found), found
