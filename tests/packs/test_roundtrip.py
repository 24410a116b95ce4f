"""A real pack, end to end: exported through the services, checked by our verifier and by the
standard tools a third party would use (sha256sum, openssl ts), read as a person would."""

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader

from offboard.packs.verify import layout as fmt
from offboard.packs.verify.layout import state_digest
from tests.packs.conftest import BuiltPacks, members_of, verify


def answers(report):
    return {a.number: a for a in report.answers}


def test_with_the_closure_receipt_a_closed_case_pack_proves_all_five_questions(
    packs: BuiltPacks,
) -> None:
    report = verify(packs.closed, receipt=packs.receipt, tsa_roots=packs.roots())
    assert report.outcome == "verified", [c.as_dict() for c in report.checks if not c.ok]
    assert report.exit_code == 0 and report.anchors == ["--receipt"]
    assert report.case_ref == packs.closed_ref
    assert [c.name for c in report.checks] == [
        "bag", "fixity", "checkpoint", "receipt", "events", "consistency", "receipt-log",
        "completeness", "closure", "files", "bound", "case", "certificate", "timestamps",
    ]  # fmt: skip
    got = answers(report)
    assert all(a.proven for a in got.values()), [a.as_dict() for a in got.values()]
    # Each fact says how it is known: here every one was recorded by staff.
    assert got[1].reasons[0] == "3 deliverables: 3 recorded by staff (Alice)"
    assert any("accepted" in r and "recorded by staff (Alice)" in r for r in got[1].reasons)
    assert got[2].reasons[0].startswith("9 handover items: 9 recorded by staff (Alice)")
    assert any("handed over" in r and "to Client IT" in r for r in got[2].reasons)
    assert got[3].reasons[0] == "6 access grants: 6 attested by staff (Alice)"
    assert any("revoked" in r and "attested by staff (Alice)" in r for r in got[3].reasons)
    approvers = " ".join(got[4].reasons)
    assert "Bob (manager) approved" in approvers and "Carol (manager) approved" in approvers
    assert "Alice closed the case" in approvers
    proof = " ".join(got[5].reasons)
    assert "the log your closure receipt fixed at size" in proof and "none of those" in proof
    # Only the events up to the receipt count: the closure is the last of them.
    _, members = members_of(packs.closed)
    up_to_closure = [
        p for p in members
        if fmt.kind_of(p) == "event" and fmt.number_in(p) < int(packs.closure.split(b"\n")[1])
    ]  # fmt: skip
    assert f"the {len(up_to_closure)} events of case {packs.closed_ref} up to its closure" in proof
    assert "anchored to --tsa-roots" in proof and "Test TSA timestamped" in proof
    # The answers are the history up to the receipt; what came later is listed apart.
    after = [row["type"] for row in report.after_receipt]
    assert after == ["case.certificate_issued", "case.exported"]
    assert all(row["anchored"] for row in report.after_receipt)  # same key signs the pack


def test_with_the_organization_s_key_all_checks_pass_but_without_a_time_anchor_q5_is_not_proven(
    packs: BuiltPacks,
) -> None:
    report = verify(packs.closed, key=packs.key())
    assert report.outcome == "verified" and report.anchors == ["--key"]
    got = answers(report)
    assert [got[n].proven for n in (1, 2, 3, 4)] == [True] * 4
    assert not got[5].proven
    assert "nothing outside the organization fixes when" in got[5].reasons[0]
    # With the TSA's root the timestamp anchors the time: now it is.
    report = verify(packs.closed, key=packs.key(), tsa_roots=packs.roots())
    assert answers(report)[5].proven
    assert "the key you gave" in " ".join(answers(report)[5].reasons)


def test_without_an_outside_anchor_everything_checks_but_nothing_is_proven(
    packs: BuiltPacks,
) -> None:
    for kwargs in ({}, {"tsa_roots": packs.roots()}):  # a timestamp is when, never who
        report = verify(packs.closed, **kwargs)
        assert report.ok and report.outcome == "unanchored" and report.exit_code == 3
        got = answers(report)
        assert not any(a.proven for a in got.values())
        assert all("internally consistent but unanchored" in a.reasons[0] for a in got.values())
    timestamps = next(c for c in report.checks if c.name == "timestamps")
    assert "anchored to --tsa-roots" in timestamps.summary


def test_an_interim_pack_verifies_but_the_closure_questions_are_not_proven(
    packs: BuiltPacks,
) -> None:
    report = verify(packs.interim, key=packs.key(), tsa_roots=packs.roots())
    assert report.outcome == "verified", [c.as_dict() for c in report.checks if not c.ok]
    got = answers(report)
    for n in (1, 2, 3, 4):
        assert not got[n].proven
        assert "case not closed" in got[n].reasons[0]
    assert got[5].proven  # the records it holds are proven, just not a closure
    case_check = next(c for c in report.checks if c.name == "case")
    assert "not closed" in case_check.summary


def test_the_bag_passes_sha256sum_and_holds_the_layout_of_the_design(
    packs: BuiltPacks, unzipped: Path
) -> None:
    for manifest in (fmt.MANIFEST, fmt.TAGMANIFEST):
        done = subprocess.run(
            ["sha256sum", "--strict", "-c", manifest], cwd=unzipped, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "FAILED" not in done.stdout
    assert unzipped.name == f"{packs.closed_ref}-evidence-pack"
    assert (unzipped / "bagit.txt").read_bytes() == fmt.BAGIT_TXT_CONTENT
    info = (unzipped / "bag-info.txt").read_text()
    assert f"External-Identifier: {packs.closed_ref}\n" in info
    assert "Bag-Software-Agent: Offboard" in info and "Bagging-Date: " in info
    payload = [p for p in (unzipped / "data").rglob("*") if p.is_file()]
    oxum = f"{sum(p.stat().st_size for p in payload)}.{len(payload)}"
    assert f"Payload-Oxum: {oxum}\n" in info
    listed = (unzipped / fmt.MANIFEST).read_text().splitlines()
    assert len(listed) == len(payload)
    data = unzipped / "data"
    # The export's own checkpoint, which ends at the export event; the closure checkpoint the
    # client holds is one of the sizes proven to be its prefixes.
    checkpoint = (data / "checkpoint").read_bytes()
    assert int(checkpoint.split(b"\n")[1]) == packs.closed_size
    assert sorted(p.name for p in (data / "keys").iterdir()) == [
        f"{packs.verifier_key.split('+')[1]}.pub"
    ]
    assert (data / "keys" / f"{packs.verifier_key.split('+')[1]}.pub").read_text() == (
        packs.verifier_key + "\n"
    )
    events = sorted(int(p.stem) for p in (data / "events").iterdir())
    assert (
        events and sorted(int(p.name.split(".")[0]) for p in (data / "proofs").iterdir()) == events
    )
    assert {p.name for p in (data / "timestamps").iterdir()} == {"1.tsr", "1.chain.pem"}
    earlier_size = int(packs.earlier.split(b"\n")[1])
    closure_size = int(packs.closure.split(b"\n")[1])
    assert sorted(p.name for p in (data / "consistency").iterdir()) == sorted(
        [f"{earlier_size}.proof", f"{closure_size}.proof"]
    )
    files = sorted(p.name for p in (data / "files").iterdir())
    # Two uploads and the closure certificate (its case.certificate_issued event refers to it).
    assert len(files) == 3
    assert hashlib.sha256((data / "certificate.pdf").read_bytes()).hexdigest() in files
    for p in (data / "files").iterdir():
        done = subprocess.run(["sha256sum", str(p)], capture_output=True, text=True, check=True)
        assert done.stdout.split()[0] == p.name


def test_event_files_hold_the_exact_leaf_bytes_and_proofs_are_c2sp_tlog_proofs(
    unzipped: Path,
) -> None:
    from offboard.ledger.merkle import leaf_hash, verify_inclusion
    from offboard.ledger.note import Checkpoint, parse_note
    from offboard.ledger.tlogproof import parse_tlog_proof

    data = unzipped / "data"
    checkpoint_text = (data / "checkpoint").read_text()
    cp = Checkpoint.parse(parse_note(checkpoint_text).text)
    for event in (data / "events").iterdir():
        body = event.read_bytes()
        parsed = json.loads(body)
        assert set(parsed) == {
            *("v", "org", "case", "seq", "prev", "type", "actor", "at", "data", "files", "nonce")
        }
        # canonical JSON: the bytes are exactly what the ledger hashed
        assert (
            body
            == json.dumps(
                parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
        )
        proof_text = (data / "proofs" / f"{event.stem}.tlog-proof").read_text()
        assert proof_text.startswith(f"c2sp.org/tlog-proof@v1\nindex {event.stem}\n")
        proof = parse_tlog_proof(proof_text)
        assert proof.checkpoint_text == checkpoint_text
        assert verify_inclusion(leaf_hash(body), proof.index, cp.size, proof.hashes, cp.root)


def test_case_json_is_the_state_the_case_was_closed_on(unzipped: Path) -> None:
    doc = json.loads((unzipped / "data" / "case.json").read_text())
    assert doc["format"] == fmt.CASE_JSON_FORMAT
    assert doc["case"]["state"] == "closed"
    assert state_digest(doc["state"]) == doc["state_digest"]
    closing = [
        json.loads(p.read_bytes())
        for p in (unzipped / "data" / "events").iterdir()
        if b'"type":"case.closed"' in p.read_bytes()
    ]
    assert [e["data"]["state_digest"] for e in closing] == [doc["state_digest"]]


def test_openssl_accepts_every_timestamp_over_data_checkpoint(
    packs: BuiltPacks, unzipped: Path
) -> None:
    tokens = sorted((unzipped / "data" / "timestamps").glob("*.tsr"))
    assert tokens
    for token in tokens:
        for ca in (str(packs.roots_pem), str(token).replace(".tsr", ".chain.pem")):
            done = subprocess.run(
                ["openssl", "ts", "-verify", "-data", "data/checkpoint", "-in",
                 str(token.relative_to(unzipped)), "-CAfile", ca],
                cwd=unzipped, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stderr
    # and the token is over exactly those bytes
    (unzipped / "data" / "checkpoint").write_bytes(packs.closure + b"\n")
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-data", "data/checkpoint", "-in", "data/timestamps/1.tsr",
         "-CAfile", str(packs.roots_pem)],
        cwd=unzipped, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0


@pytest.mark.skipif(shutil.which("unzip") is None, reason="unzip is not installed")
def test_unzip_accepts_the_streamed_zip(packs: BuiltPacks) -> None:
    done = subprocess.run(["unzip", "-t", str(packs.closed)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert "No errors detected" in done.stdout


def test_the_readme_names_only_safe_commands_and_explains_checking_without_offboard(
    unzipped: Path, packs: BuiltPacks
) -> None:
    readme = (unzipped / "data" / "README.txt").read_text()
    ref = packs.closed_ref
    assert f"offboard verify {ref}-evidence-pack.zip --receipt {ref}-closure-receipt.txt" in readme
    assert f"offboard verify {ref}-evidence-pack.zip --key 'THE-KEY-YOU-OBTAINED'" in readme
    # Never the key from the pack itself: that command would trust whoever made the pack.
    assert packs.verifier_key not in readme
    assert "Never copy the key from data/keys/" in readme
    assert "0 verified" in readme and "3" in readme and "unanchored" in readme
    assert "sha256sum -c manifest-sha256.txt" in readme
    assert "bagit.py --validate" in readme
    assert "openssl ts -verify -data data/checkpoint -in data/timestamps/1.tsr" in readme
    assert "SHA-256(0x00 || the bytes of data/events/N.json)" in readme
    assert '"seq"' in readme and '"prev"' in readme and "case.exported" in readme
    assert "$" not in readme  # every placeholder filled


def test_the_certificate_in_the_pack_is_the_closure_certificate_and_the_interim_one_says_so(
    packs: BuiltPacks,
) -> None:
    def text(path: Path) -> str:
        pdf = members_of(path)[1][fmt.CERTIFICATE]
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)

    closed = text(packs.closed)
    assert packs.closed_ref in closed and "Interim" not in closed
    assert "Who approved final closure?" in closed
    closure_size = int(packs.closure.split(b"\n")[1])
    assert f"size {closure_size}" in closed.replace("\n", " ")  # signed at closure
    interim = text(packs.interim)
    assert packs.interim_ref in interim and "Interim" in interim


def test_evidence_files_are_stored_not_deflated_and_text_is_compressed(packs: BuiltPacks) -> None:
    with zipfile.ZipFile(packs.closed) as zf:
        for info in zf.infolist():
            rel = info.filename.split("/", 1)[1]
            expected = (
                zipfile.ZIP_STORED
                if fmt.kind_of(rel) in ("file", "certificate")
                else zipfile.ZIP_DEFLATED
            )
            assert info.compress_type == expected, rel
            assert (info.external_attr >> 16) == 0o100644
