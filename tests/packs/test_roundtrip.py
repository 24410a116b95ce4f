"""A real pack, end to end: exported through the services, checked by our verifier and by the
standard tools a third party would use (sha256sum, openssl ts), read as a person would."""

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


def test_a_closed_case_pack_verifies_and_proves_all_five_questions(packs: BuiltPacks) -> None:
    report = verify(
        packs.closed, key=packs.key(), client_checkpoint=packs.closure, tsa_roots=packs.roots()
    )
    assert report.ok, [c.as_dict() for c in report.checks if not c.ok]
    assert report.case_ref == packs.closed_ref
    assert [c.name for c in report.checks] == [
        "bag", "fixity", "checkpoint", "key", "events", "files", "case", "certificate", "timestamps",
        "consistency", "client-checkpoint",
    ]  # fmt: skip
    got = answers(report)
    assert all(a.proven for a in got.values()), [a.as_dict() for a in got.values()]
    assert any("accepted" in r and "data/events/" in r for r in got[1].reasons)
    assert any("handed over to Client IT" in r for r in got[2].reasons)
    assert any("revoked" in r and "verified (attested)" in r for r in got[3].reasons)
    approvers = " ".join(got[4].reasons)
    assert "Bob (manager) approved" in approvers and "Carol (manager) approved" in approvers
    assert "Alice closed the case" in approvers
    proof = " ".join(got[5].reasons)
    assert "the key you gave with --key" in proof
    assert "anchored to --tsa-roots" in proof and "Test TSA timestamped" in proof
    assert "extension of the checkpoint of size" in proof


def test_without_outside_anchors_everything_checks_but_question_5_is_not_proven(
    packs: BuiltPacks,
) -> None:
    report = verify(packs.closed)
    assert report.ok
    got = answers(report)
    assert [got[n].proven for n in (1, 2, 3, 4)] == [True] * 4
    assert not got[5].proven
    assert "only against keys and certificates carried in the pack" in got[5].reasons[0]
    timestamps = next(c for c in report.checks if c.name == "timestamps")
    assert "not anchored" in timestamps.summary


def test_an_interim_pack_verifies_but_the_closure_questions_are_not_proven(
    packs: BuiltPacks,
) -> None:
    report = verify(packs.interim, key=packs.key(), tsa_roots=packs.roots())
    assert report.ok, [c.as_dict() for c in report.checks if not c.ok]
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
    assert (data / "checkpoint").read_bytes() == packs.closure  # the closure checkpoint
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
    assert [p.name for p in (data / "consistency").iterdir()] == [f"{earlier_size}.proof"]
    files = sorted(p.name for p in (data / "files").iterdir())
    assert len(files) == 2
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
        assert set(parsed) == {"v", "org", "case", "type", "actor", "at", "data", "files", "nonce"}
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


def test_the_readme_explains_both_ways_to_verify(unzipped: Path, packs: BuiltPacks) -> None:
    readme = (unzipped / "data" / "README.txt").read_text()
    assert (
        f"offboard verify {packs.closed_ref}-evidence-pack.zip --key '{packs.verifier_key}'"
        in readme
    )
    assert "sha256sum -c manifest-sha256.txt" in readme
    assert "bagit.py --validate" in readme
    assert "openssl ts -verify -data data/checkpoint -in data/timestamps/1.tsr" in readme
    assert "SHA-256(0x00 || the bytes of data/events/N.json)" in readme
    assert "case.exported" in readme and "not in this pack" in readme
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
    assert f"size {packs.closed_size}" in closed.replace("\n", " ")
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
