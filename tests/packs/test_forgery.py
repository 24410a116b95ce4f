"""A forger's attempts on an evidence pack, class by class (decision 0010). Each forgery is
built the way an attacker would: self-consistent, with fresh manifests, a rebuilt Merkle log,
their own signing key, genuine timestamps over their own checkpoint. The verifier must refuse
it (exit 1) or report it unanchored (exit 3) — and never answer a question PROVEN.

`Forger` rebuilds a pack from the case's events alone: the events renumbered 0..n-1 as a
log of their own (their `seq`/`prev` chain survives renumbering, since a leaf hash depends on
the bytes only), proofs, checkpoint and export event recomputed, signed with any key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

from offboard.ledger import merkle
from offboard.ledger.note import Checkpoint, Signer, parse_note, sign_note
from offboard.ledger.tlogproof import encode_tlog_proof
from offboard.packs.verify import Report
from offboard.packs.verify import layout as fmt
from tests.packs.conftest import BuiltPacks, members_of, problems, rebag, verify, write_pack

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline

Body = dict[str, Any]


def canonical(body: Body) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def refused(report: Report, *, exit_code: int | tuple[int, ...] = 1) -> None:
    """The verdict a forgery must get: nothing PROVEN, and a non-zero exit (1: failed, 3:
    unanchored — a forgery that is also internally flawed may fail outright)."""
    codes = exit_code if isinstance(exit_code, tuple) else (exit_code,)
    assert report.exit_code in codes, (report.outcome, problems(report))
    assert not any(a.proven for a in report.answers), [a.as_dict() for a in report.answers]


class Forger:
    """Takes a real pack apart and rebuilds it, signed with the forger's key."""

    def __init__(self, path: Path) -> None:
        self.base, self.members = members_of(path)
        indices = sorted(fmt.number_in(p) for p in self.members if fmt.kind_of(p) == "event")
        self.events: list[Body] = [json.loads(self.members[fmt.event_path(i)]) for i in indices]
        self.origin = parse_note(self.members[fmt.CHECKPOINT]).text.split("\n", 1)[0]

    def of_type(self, type_: str) -> list[Body]:
        return [e for e in self.events if e["type"] == type_]

    def build(
        self,
        tmp_path: Path,
        signer: Signer,
        *,
        edit: Callable[[list[Body], dict[str, bytes]], None] | None = None,
        rechain: bool = True,
        renumber: bool = True,
        relink: bool = True,
        tamper: Callable[[list[Body]], None] | None = None,
        timestamp_by: Any = None,
        name: str = "forged.zip",
    ) -> Path:
        events = [dict(e) for e in self.events]
        members = {
            k: v
            for k, v in self.members.items()
            if fmt.kind_of(k) not in ("event", "redacted", "proof", "consistency", "token", "chain")
            and fmt.kind_of(k) != "key"
        }
        if edit is not None:
            edit(events, members)
        if rechain:
            if renumber:
                for seq, event in enumerate(events, start=1):
                    event["seq"] = seq
            if tamper is not None:  # after numbering, before the links are hashed
                tamper(events)
            previous: bytes | None = None
            for event in events:
                if relink:
                    event["prev"] = previous.hex() if previous else None
                if event is events[-1] and event["type"] == "case.exported":
                    event["data"] = {
                        **event["data"],
                        "events": event["seq"],
                        "case_json_sha256": hashlib.sha256(members[fmt.CASE_JSON]).hexdigest(),
                        "readme_sha256": hashlib.sha256(members[fmt.README]).hexdigest(),
                    }
                previous = merkle.leaf_hash(canonical(event))
        bodies = [canonical(e) for e in events]
        tree = merkle.MerkleTree(merkle.leaf_hash(b) for b in bodies)
        note = sign_note(Checkpoint(self.origin, tree.size, tree.root()).text(), signer)
        members[fmt.CHECKPOINT] = note.encode()
        members[f"{fmt.KEYS_DIR}{signer.key_id.hex()}.pub"] = f"{signer.verifier_key()}\n".encode()
        for index, body in enumerate(bodies):
            members[fmt.event_path(index)] = body
            proof = encode_tlog_proof(index, tree.inclusion_proof(index), note)
            members[fmt.proof_path(index)] = proof.encode()
        if timestamp_by is not None:  # a genuine TSA's token over the forged checkpoint
            query = (
                TimestampRequestBuilder()
                .data(note.encode())
                .hash_algorithm(HashAlgorithm.SHA512)
                .nonce(nonce=True)
                .cert_request(cert_request=True)
                .build()
            )
            members[f"{fmt.TIMESTAMPS_DIR}1.tsr"] = timestamp_by.reply(query.as_bytes())
            members[f"{fmt.TIMESTAMPS_DIR}1.chain.pem"] = timestamp_by.ca_crt.read_bytes()
        return write_pack(tmp_path / name, self.base, rebag(members))


@pytest.fixture
def forger(packs: BuiltPacks) -> Forger:
    return Forger(packs.closed)


def own_key(forger: Forger) -> Signer:
    return Signer.generate(forger.origin)  # the organization's name, not its key


def _set_status(events: list[Body], register: str, status: str) -> None:
    """Rewrite history: the latest event of one item now says another status."""
    prefix = {"deliverables": "deliverable", "access_grants": "access_grant"}[register]
    event = next(e for e in reversed(events) if e["type"].startswith(f"{prefix}."))
    event["data"]["item"]["status"] = status


# --- 1. trust comes only from outside the pack -------------------------------------------------


def test_a_self_consistent_forgery_with_the_forger_s_own_key_is_unanchored(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    path = forger.build(tmp_path, own_key(forger))
    alone = verify(path)
    assert alone.ok  # every internal check passes: that is what a good forgery looks like
    refused(alone, exit_code=3)
    assert all("unanchored" in a.reasons[0] for a in alone.answers)


@pytest.mark.parametrize("anchor", ["key", "receipt"])
def test_a_forgery_with_the_forger_s_own_key_fails_against_the_real_anchor(
    packs: BuiltPacks, forger: Forger, tmp_path: Path, anchor: str
) -> None:
    def rewrite(events: list[Body], members: dict[str, bytes]) -> None:
        _set_status(events, "deliverables", "rejected")

    path = forger.build(tmp_path, own_key(forger), edit=rewrite)
    kwargs = {"key": packs.key()} if anchor == "key" else {"receipt": packs.receipt}
    report = verify(path, **kwargs)
    refused(report)
    found = " ".join(problems(report))
    if anchor == "key":
        assert "is not signed by the key you gave with --key" in found
    else:  # the receipt's history is not a prefix of the forged log
        assert "your receipt's checkpoint" in found


def test_the_forger_s_key_given_as_a_second_key_does_not_make_the_real_key_optional(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    """--key is the user's own statement of trust; a pack cannot add to it."""
    signer = own_key(forger)
    path = forger.build(tmp_path, signer)
    report = verify(path, keys=[packs.key()])
    refused(report)
    assert report.anchors == []  # the key you gave did not sign it: it anchors nothing
    # …and the key carried in the pack is never used as an anchor on its own.
    assert verify(path).anchors == []


def test_a_genuine_timestamp_over_a_forged_checkpoint_proves_when_never_who(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    path = forger.build(tmp_path, own_key(forger), timestamp_by=packs.tsa)
    report = verify(path, tsa_roots=packs.roots())
    (stamps,) = [c for c in report.checks if c.name == "timestamps"]
    assert stamps.ok and "anchored to --tsa-roots" in stamps.summary  # the token is real
    refused(report, exit_code=3)  # … and still nothing is proven
    refused(verify(path, key=packs.key(), tsa_roots=packs.roots()))
    refused(verify(path, receipt=packs.receipt, tsa_roots=packs.roots()))


def test_a_tampered_receipt_or_another_case_s_receipt_is_refused(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    text = packs.receipt.decode()
    # A forger swaps in their own key: the receipt's checkpoint no longer verifies with it.
    key_line = next(line for line in text.split("\n") if line.startswith("key "))
    swapped = text.replace(key_line, f"key {own_key(forger).verifier_key()}").encode()
    report = verify(packs.closed, receipt=swapped)
    refused(report)
    assert "not signed by the receipt's key" in " ".join(problems(report))
    # A receipt of another case.
    other = text.replace(f"case {packs.closed_ref}\n", "case C-2020-0001\n").encode()
    report = verify(packs.closed, receipt=other)
    refused(report)
    assert f"for case C-2020-0001; this pack is of case {packs.closed_ref}" in " ".join(
        problems(report)
    )


# --- 2. the closure the client was told about is the closure -----------------------------------


def test_a_re_closure_appended_after_the_receipt_is_a_failure(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    """The insider's forgery: history kept up to the receipt, a second closure appended."""

    def reclose(events: list[Body], members: dict[str, bytes]) -> None:
        (closed,) = [e for e in events if e["type"] == "case.closed"]
        second = {**closed, "data": {**closed["data"], "approvals": []}, "at": events[-1]["at"]}
        events.insert(len(events) - 1, second)

    path = forger.build(tmp_path, own_key(forger), edit=reclose)
    for kwargs in ({"receipt": packs.receipt}, {}):
        report = verify(path, **kwargs)
        refused(report, exit_code=1)
        assert any("the case was closed 2 times" in p for p in problems(report))


def test_a_closure_that_is_not_the_receipt_s_is_a_failure(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    def move(events: list[Body], members: dict[str, bytes]) -> None:
        (closed,) = [e for e in events if e["type"] == "case.closed"]
        closed["data"] = {**closed["data"], "approvals": closed["data"]["approvals"][:1]}

    path = forger.build(tmp_path, own_key(forger), edit=move)
    report = verify(path, receipt=packs.receipt)
    refused(report)


def test_an_open_case_presented_as_closed_is_a_failure(packs: BuiltPacks, tmp_path: Path) -> None:
    base, members = members_of(packs.interim)
    info = members[fmt.BAG_INFO].decode()
    state = next(line for line in info.splitlines() if line.startswith("Offboard-Case-State"))
    members[fmt.BAG_INFO] = info.replace(state, "Offboard-Case-State: closed").encode()
    doc = json.loads(members[fmt.CASE_JSON])
    doc["case"]["state"] = "closed"
    members[fmt.CASE_JSON] = json.dumps(doc).encode()
    path = write_pack(tmp_path / "presented.zip", base, rebag(members))
    report = verify(path, key=packs.key(), tsa_roots=packs.roots())
    refused(report)
    found = " ".join(problems(report))
    assert "an open case presented as closed" in found
    assert "data/case.json is not the file" in found


def test_an_open_case_with_a_forged_closure_event_is_a_failure(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    interim = Forger(packs.interim)

    def close(events: list[Body], members: dict[str, bytes]) -> None:
        fake = {**events[0], "type": "case.closed", "data": {"state_digest": "0" * 64}}
        events.insert(len(events) - 1, fake)

    path = interim.build(tmp_path, own_key(interim), edit=close)
    refused(verify(path, key=packs.key()))
    refused(verify(path), exit_code=(1, 3))


# --- 3. a pack proves it is complete -----------------------------------------------------------


def _drop(predicate: Callable[[Body], bool]) -> Callable[[list[Body], dict[str, bytes]], None]:
    def edit(events: list[Body], members: dict[str, bytes]) -> None:
        events[:] = [e for e in events if not predicate(e)]

    return edit


def _omit_in_place(packs: BuiltPacks, tmp_path: Path, pick: Callable[[Body], bool]) -> Path:
    """Leave events out of the real pack, proofs and all, manifests rebuilt."""
    base, members = members_of(packs.closed)
    for rel in [p for p in members if fmt.kind_of(p) == "event"]:
        if pick(json.loads(members[rel])):
            index = fmt.number_in(rel)
            del members[rel], members[fmt.proof_path(index)]
    return write_pack(tmp_path / "omitted.zip", base, rebag(members))


OMISSIONS: dict[str, Callable[[Body], bool]] = {
    "a revocation": lambda e: e["type"] == "access_grant.revoked",
    "one person's work": lambda e: (
        e["actor"].get("username") == "alice"
        and e["type"].startswith(("deliverable.", "handover_item."))
    ),
    "the certificate's event": lambda e: e["type"] == "case.certificate_issued",
    "the first event": lambda e: e["type"] == "case.opened",
    "the export event": lambda e: e["type"] == "case.exported",
}


@pytest.mark.parametrize("what", list(OMISSIONS))
def test_leaving_events_out_of_the_real_pack_is_a_failure(
    packs: BuiltPacks, tmp_path: Path, what: str
) -> None:
    path = _omit_in_place(packs, tmp_path, OMISSIONS[what])
    for kwargs in ({"key": packs.key()}, {"receipt": packs.receipt}, {}):
        report = verify(path, **kwargs)
        refused(report)
        (complete,) = [c for c in report.checks if c.name == "completeness"]
        assert not complete.ok, what


@pytest.mark.parametrize("what", ["a revocation", "the certificate's event", "one person's work"])
def test_leaving_events_out_and_rechaining_with_a_forged_log_is_caught_by_any_anchor(
    packs: BuiltPacks, forger: Forger, tmp_path: Path, what: str
) -> None:
    """The omission repaired as well as a forger can: chain renumbered and relinked, log and
    export event rebuilt. Internally consistent — so only an anchor can tell, and does."""
    path = forger.build(tmp_path, own_key(forger), edit=_drop(OMISSIONS[what]))
    alone = verify(path)
    refused(alone, exit_code=(1, 3))  # consistent enough at best: unanchored
    if what == "the certificate's event":  # a closed case must hold its certificate's event
        assert any("holds no case.certificate_issued event" in p for p in problems(alone))
    refused(verify(path, key=packs.key()))
    refused(verify(path, receipt=packs.receipt))


def test_reordered_events_are_a_failure(packs: BuiltPacks, tmp_path: Path) -> None:
    base, members = members_of(packs.closed)
    events = sorted(fmt.number_in(p) for p in members if fmt.kind_of(p) == "event")
    a, b = events[3], events[4]
    ea, eb = members[fmt.event_path(a)], members[fmt.event_path(b)]
    pa, pb = members[fmt.proof_path(a)], members[fmt.proof_path(b)]
    members[fmt.event_path(a)], members[fmt.event_path(b)] = eb, ea
    members[fmt.proof_path(a)], members[fmt.proof_path(b)] = pb, pa
    path = write_pack(tmp_path / "swapped.zip", base, rebag(members))
    refused(verify(path, key=packs.key()))


def test_an_unjustified_placeholder_and_a_foreign_redaction_are_failures(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    """A placeholder hides what an event said; only a redaction event of THIS case, naming
    that index and leaf hash, may justify it. A redaction of another event does not."""
    base, members = members_of(packs.closed)
    revoked = next(
        p for p in sorted(members)
        if fmt.kind_of(p) == "event" and b'"type":"access_grant.revoked"' in members[p]
    )  # fmt: skip
    index = fmt.number_in(revoked)
    members[fmt.redacted_path(index)] = (
        merkle.leaf_hash(members.pop(revoked)).hex() + "\n"
    ).encode()
    path = write_pack(tmp_path / "hidden.zip", base, rebag(members))
    report = verify(path, key=packs.key())
    refused(report)
    assert any(
        "stands for an erased event, but no ledger.event_redacted" in p for p in problems(report)
    )

    # A forger adds a redaction event — for another index (a foreign justification).
    def foreign(events: list[Body], members: dict[str, bytes]) -> None:
        redaction = {
            **events[0],
            "type": "ledger.event_redacted",
            "data": {"index": 0, "leaf_hash": "00" * 32, "case_seq": 1, "reason": "x"},
        }
        events.insert(len(events) - 1, redaction)

    path = forger.build(tmp_path, own_key(forger), edit=foreign)
    refused(verify(path, key=packs.key()))


# --- 4. everything the verifier uses is bound ------------------------------------------------


def test_if_any_check_fails_no_question_is_proven(packs: BuiltPacks, tmp_path: Path) -> None:
    base, members = members_of(packs.closed)
    members[fmt.file_path(hashlib.sha256(b"planted").hexdigest())] = b"planted"
    path = write_pack(tmp_path / "planted.zip", base, rebag(members))
    report = verify(path, receipt=packs.receipt, tsa_roots=packs.roots())
    refused(report)
    assert [c.name for c in report.checks if not c.ok] == ["files"]


def test_a_rewritten_readme_with_an_unsafe_command_is_a_failure(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    base, members = members_of(packs.closed)
    readme = members[fmt.README].decode()
    members[fmt.README] = readme.replace(
        "--key 'THE-KEY-YOU-OBTAINED'", "--key $(cat data/keys/*.pub)"
    ).encode()
    path = write_pack(tmp_path / "readme.zip", base, rebag(members))
    report = verify(path, receipt=packs.receipt)
    refused(report)
    assert any("data/README.txt is not the file" in p for p in problems(report))


def test_the_signed_note_of_a_real_checkpoint_cannot_be_reused_for_another_tree(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    """With the real key's signature copied from an older checkpoint onto a new tree."""
    path = forger.build(tmp_path, own_key(forger))
    base, members = members_of(path)
    members[fmt.CHECKPOINT] = packs.closure
    path = write_pack(tmp_path / "reused.zip", base, rebag(members))
    refused(verify(path, key=packs.key()))


def test_the_tsa_named_is_the_one_whose_certificate_signed_the_token(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    """A certificate slipped into the token's (unsigned, unordered) certificate set must not
    lend its name to the timestamp: the name comes from the SignerInfo's certificate."""
    from asn1crypto import cms, tsp
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Trusted Global Timestamping")])
    decoy = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(7)
        .not_valid_before(x509.load_pem_x509_certificate(packs.roots_pem.read_bytes()).not_valid_before_utc)
        .not_valid_after(x509.load_pem_x509_certificate(packs.roots_pem.read_bytes()).not_valid_after_utc)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    base, members = members_of(packs.closed)
    reply = tsp.TimeStampResp.load(members[f"{fmt.TIMESTAMPS_DIR}1.tsr"])
    signed = reply["time_stamp_token"]["content"]
    certs = [
        cms.CertificateChoices(
            {"certificate": asn1_x509.Certificate.load(decoy.public_bytes(Encoding.DER))}
        )
    ]
    signed["certificates"] = cms.CertificateSet(certs + list(signed["certificates"]))
    members[f"{fmt.TIMESTAMPS_DIR}1.tsr"] = reply.dump(force=True)
    path = write_pack(tmp_path / "decoy.zip", base, rebag(members))
    report = verify(path, receipt=packs.receipt, tsa_roots=packs.roots())
    (stamps,) = [c for c in report.checks if c.name == "timestamps"]
    assert stamps.ok, stamps.problems  # the certificate set is not signed: still a valid token
    proof = " ".join(report.answers[4].reasons)
    assert "Test TSA timestamped" in proof
    assert "Trusted Global Timestamping" not in proof


def _receipt_for(packs: BuiltPacks, signer: Signer, checkpoint_note: str, proof_index: int,
                 hashes: list[bytes], leaf: bytes) -> bytes:  # fmt: skip
    from offboard.ledger.receipt import encode_receipt

    return encode_receipt(
        case_ref=packs.closed_ref,
        closed_leaf=leaf,
        verifier_key=signer.verifier_key(),
        tlog_proof=encode_tlog_proof(proof_index, hashes, checkpoint_note),
    ).encode()


def test_a_receipt_must_end_at_its_closure_and_be_of_the_pack_s_log(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    """A receipt is the closure checkpoint of this log: a later checkpoint dressed up as one,
    or a receipt of another log, is refused for what it is."""
    _, members = members_of(packs.closed)
    closed_path = next(
        p for p in members if fmt.kind_of(p) == "event" and b'"type":"case.closed"' in members[p]
    )
    leaf = merkle.leaf_hash(members[closed_path])
    proof = members[fmt.proof_path(fmt.number_in(closed_path))].decode()
    # The pack's own (later) checkpoint, signed by the real key, presented as the receipt's.
    from offboard.ledger.tlogproof import parse_tlog_proof

    parsed = parse_tlog_proof(proof)
    real = Signer.from_signer_key(packs.signer_key)
    later = _receipt_for(packs, real, parsed.checkpoint_text, parsed.index, parsed.hashes, leaf)
    report = verify(packs.closed, receipt=later)
    refused(report)
    assert any("does not end at its closure event" in p for p in problems(report))
    # A receipt of another log (another origin), self-consistent.
    stranger = Signer.generate("other.example/offboard/acme")
    tree = merkle.MerkleTree([leaf])
    note = sign_note(Checkpoint(stranger.name, 1, tree.root()).text(), stranger)
    foreign = _receipt_for(packs, stranger, note, 0, [], leaf)
    report = verify(packs.closed, receipt=foreign)
    refused(report)
    assert any("your closure receipt is of log other.example/offboard/acme" in p
               for p in problems(report))  # fmt: skip


def _completeness(report: Report) -> list[str]:
    (check,) = [c for c in report.checks if c.name == "completeness"]
    return check.problems


def test_a_forger_who_links_every_event_but_numbers_one_wrong_is_caught_by_the_numbers(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    def renumber(events: list[Body]) -> None:
        events[5]["seq"] = events[4]["seq"]  # every `prev` will still be right

    path = forger.build(tmp_path, own_key(forger), tamper=renumber)
    found = _completeness(verify(path))
    assert any("is event 5 of the case but the pack's event 6" in p for p in found), found


def test_a_forger_who_renumbers_after_dropping_an_event_but_cannot_relink_is_caught(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    """Numbers made consecutive again after a drop, links left as recorded: the links alone
    show the gap (each `prev` is a hash a forger cannot choose)."""
    path = forger.build(
        tmp_path, own_key(forger), edit=lambda events, m: events.pop(7), relink=False
    )
    found = _completeness(verify(path))
    assert any("does not follow" in p for p in found), found
    assert not any("is event" in p for p in found), found  # the numbers are consecutive


def test_a_pack_ending_with_an_earlier_export_than_its_own_is_incomplete(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    """Two exports; the second pack with its own export event left out ends with the first
    export event — numbered and linked, but not the checkpoint's last leaf."""
    from offboard.packs.export import iter_pack, start_export
    from offboard.packs.verify import parse_key, verify_pack
    from tests.factories import close_with_approvals, settle_everything

    case = close_with_approvals(settle_everything(case, cast), cast)
    start_export(actor=cast["erin"], case=case)
    plan = start_export(actor=cast["erin"], case=case)
    path = tmp_path / "second.zip"
    path.write_bytes(b"".join(iter_pack(plan)))
    base, members = members_of(path)
    last = plan.event_indices[-1]
    del members[fmt.event_path(last)], members[fmt.proof_path(last)]
    cut = write_pack(tmp_path / "cut.zip", base, rebag(members))
    report = verify_pack(cut, key=parse_key(plan.checkpoint.key.verifier_key))
    refused(report)
    found = _completeness(report)
    assert any("does not end with its own case.exported event at the last leaf" in p
               for p in found), found  # fmt: skip


def test_a_pack_whose_closure_event_is_erased_cannot_be_the_receipt_s_closure(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    """The closure the client was told about must be in the pack as itself: a placeholder,
    even a lawfully justified one, does not show it."""
    from offboard.ledger.models import Checkpoint as StoredCheckpoint
    from offboard.ledger.models import LedgerEntry
    from offboard.ledger.services import redact_event
    from offboard.notifications.receipt_email import closure_receipt_file
    from offboard.packs.export import iter_pack, start_export
    from offboard.packs.verify import verify_pack
    from tests.factories import close_with_approvals, settle_everything

    case = close_with_approvals(settle_everything(case, cast), cast)
    closure = StoredCheckpoint.objects.get(case=case, reason="case_closed")
    receipt = closure_receipt_file(case, closure).encode()
    closed = LedgerEntry.objects.get(case=case, type="case.closed")
    redact_event(actor=cast["alice"], index=closed.index, reason="test: erase the closure")
    plan = start_export(actor=cast["erin"], case=case)
    path = tmp_path / "erased.zip"
    path.write_bytes(b"".join(iter_pack(plan)))
    report = verify_pack(path, receipt=receipt)
    refused(report)
    assert any(
        f"the closure in your receipt (event #{closed.index}" in p for p in problems(report)
    ), problems(report)


def test_the_export_event_binds_the_certificate_too(
    packs: BuiltPacks, forger: Forger, tmp_path: Path
) -> None:
    def other_certificate(events: list[Body], members: dict[str, bytes]) -> None:
        events[-1]["data"] = {**events[-1]["data"], "certificate_sha256": "0" * 64}

    path = forger.build(tmp_path, own_key(forger), edit=other_certificate)
    (check,) = [c for c in verify(path).checks if c.name == "certificate"]
    assert any("is not the certificate data/events/" in p for p in check.problems), check


def test_after_a_key_rotation_the_receipt_still_anchors_the_closure_and_later_events_are_not(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    """The organization rotates its key after closure: the pack's checkpoint is signed by the
    new key, which the receipt does not hold. The history up to the receipt is still proven
    (through the consistency proof); what came after is listed as not anchored — until the
    user gives the new key too."""
    from offboard.ledger.models import Checkpoint as StoredCheckpoint
    from offboard.ledger.services import rotate_signing_key
    from offboard.notifications.receipt_email import closure_receipt_file
    from offboard.packs.export import iter_pack, start_export
    from offboard.packs.verify import parse_key, verify_pack
    from tests.factories import close_with_approvals, settle_everything

    case = close_with_approvals(settle_everything(case, cast), cast)
    closure = StoredCheckpoint.objects.get(case=case, reason="case_closed")
    receipt = closure_receipt_file(case, closure).encode()
    new_key = rotate_signing_key(actor=cast["alice"])
    plan = start_export(actor=cast["erin"], case=case)
    assert plan.checkpoint.key == new_key
    path = tmp_path / "rotated.zip"
    path.write_bytes(b"".join(iter_pack(plan)))

    report = verify_pack(path, receipt=receipt)
    assert report.outcome == "verified", problems(report)
    assert report.anchors == ["--receipt"]
    assert all(a.proven for a in report.answers[:4])
    after = report.after_receipt
    assert [row["type"] for row in after] == ["case.certificate_issued", "case.exported"]
    assert not any(row["anchored"] for row in after)
    assert report.checkpoint is not None and report.checkpoint["trusted"] is False

    both = verify_pack(path, receipt=receipt, keys=[parse_key(new_key.verifier_key)])
    assert both.outcome == "verified" and all(row["anchored"] for row in both.after_receipt)
