"""`offboard export` and `offboard verify`: exit codes, output, and a verifier that runs in a
bare environment — no Django settings, no database."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from offboard.cli import app
from tests.factories import close_with_approvals, settle_everything
from tests.packs.conftest import BuiltPacks, tampered

OFFBOARD = Path(sys.executable).with_name("offboard")


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def bare_env() -> dict[str, str]:
    """What a third party's shell has: no Django settings, no database, no Offboard config."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "OFFBOARD"))
    }
    env["COLUMNS"] = "200"
    return env


def test_export_writes_a_pack_that_verify_accepts_with_the_closure_receipt(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    from offboard.ledger.models import Checkpoint
    from offboard.notifications.receipt_email import closure_receipt_file

    case = close_with_approvals(settle_everything(case, cast), cast)
    receipt = tmp_path / f"{case.ref}-closure-receipt.txt"
    closure = Checkpoint.objects.get(case=case, reason="case_closed")
    receipt.write_text(closure_receipt_file(case, closure))
    out = tmp_path / "out" / "pack.zip"
    done = run("export", case.ref, "--out", str(out), "--org", "acme", "--as", "erin")
    assert done.exit_code == 0, done.output
    assert f"Evidence pack of {case.ref} written to {out}" in done.output
    assert out.is_file() and not list(out.parent.glob(".*.part"))
    # The command it suggests is the safe one: the receipt, never the pack's own key.
    assert f"--receipt {case.ref}-closure-receipt.txt" in done.output
    assert "--key '" not in done.output

    checked = run("verify", str(out), "--receipt", str(receipt))
    assert checked.exit_code == 0, checked.output
    assert "1. Were all contractual deliverables completed?\n   PROVEN" in checked.output
    assert "VERIFIED: all 14 checks passed, anchored by --receipt." in checked.output
    assert "Recorded after your receipt" in checked.output

    report = run("verify", str(out), "--receipt", str(receipt), "--json")
    assert report.exit_code == 0
    parsed = json.loads(report.output)
    assert parsed["outcome"] == "verified" and parsed["case"] == case.ref
    assert parsed["anchors"] == ["--receipt"]
    assert [q["proven"] for q in parsed["questions"]] == [True] * 5
    assert parsed["receipt"]["case"] == case.ref

    alone = run("verify", str(out), "--json")
    assert alone.exit_code == 3  # unanchored: its own exit code
    parsed = json.loads(alone.output)
    assert parsed["outcome"] == "unanchored" and not any(q["proven"] for q in parsed["questions"])
    text = run("verify", str(out))
    assert text.exit_code == 3 and "UNANCHORED: all 12 checks passed" in text.output


def test_export_as_json_and_for_an_open_case(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "interim.zip"
    done = run("export", case.ref, "--out", str(out), "--as", "bob", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["interim"] is True and summary["case"] == case.ref
    assert summary["bytes"] == out.stat().st_size
    import hashlib

    assert summary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_export_refuses_an_operator_and_an_unknown_case(
    case: Any, cast: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "pack.zip"
    done = run("export", case.ref, "--out", str(out), "--as", "oscar")
    assert done.exit_code == 1
    assert "error: Your role 'operator' may not do this (cases.export)" in done.output
    assert not out.exists()
    done = run("export", "C-1999-0001", "--out", str(out), "--as", "erin")
    assert done.exit_code == 1
    assert "error: No case C-1999-0001 in this organization." in done.output


def test_export_without_out_is_a_usage_error(case: Any) -> None:
    assert run("export", case.ref).exit_code == 2


def test_verify_exits_1_naming_the_tampered_file(packs: BuiltPacks, tmp_path: Path) -> None:
    def change(m: dict[str, bytes]) -> None:
        m["data/case.json"] = m["data/case.json"].replace(b"Northwind", b"Southwind")

    path = tampered(tmp_path, packs.closed, change)
    done = run("verify", str(path), "--key", packs.verifier_key)
    assert done.exit_code == 1
    assert "FAILED  fixity: data/case.json does not match manifest-sha256.txt" in done.output
    assert "FAILED  bound: data/case.json is not the file" in done.output
    assert "FAILED  case: data/case.json: the state digest" in done.output
    assert "NOT VERIFIED: 3 of 13 checks failed; nothing is proven." in done.output


def test_verify_usage_errors_exit_2(packs: BuiltPacks, tmp_path: Path) -> None:
    assert run("verify", str(tmp_path / "nope.zip")).exit_code == 2
    bad_key = run("verify", str(packs.closed), "--key", "name+zz+notakey")
    assert bad_key.exit_code == 2 and "not a note verifier key" in bad_key.output
    roots = tmp_path / "roots.pem"
    roots.write_text("not pem")
    bad_roots = run("verify", str(packs.closed), "--tsa-roots", str(roots))
    assert bad_roots.exit_code == 2 and "not PEM certificates" in bad_roots.output
    held = tmp_path / "held.txt"
    held.write_bytes(packs.closure)
    lonely = run("verify", str(packs.closed), "--checkpoint", str(held))
    assert lonely.exit_code == 2 and "a checkpoint names no key you can trust" in lonely.output
    bad_receipt = run("verify", str(packs.closed), "--receipt", str(held))
    assert bad_receipt.exit_code == 1  # a file that is not a receipt: a failed check
    assert "your closure receipt: not a closure receipt" in bad_receipt.output


def test_verify_reads_the_key_from_a_file(packs: BuiltPacks, tmp_path: Path) -> None:
    key_file = tmp_path / "org.vkey"
    key_file.write_text(packs.verifier_key + "\n")
    done = run(
        "verify", str(packs.closed), "--key", str(key_file), "--json",
        "--tsa-roots", str(packs.roots_pem),
    )  # fmt: skip
    assert done.exit_code == 0
    assert json.loads(done.output)["questions"][4]["proven"] is True


def test_the_verifier_runs_without_django_settings_or_a_database(
    packs: BuiltPacks, tmp_path: Path
) -> None:
    receipt = packs.receipt_file(tmp_path)
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('django loaded:', any(m == 'django' or "
        "m.startswith('django.') for m in sys.modules), file=sys.stderr))\n"
        "from offboard.cli import main\n"
        "main()\n"
    )
    args = ["verify", str(packs.closed), "--receipt", str(receipt)]
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        env=bare_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "django loaded: False" in done.stderr
    assert "VERIFIED: all 14 checks passed, anchored by --receipt." in done.stdout
    assert "5. Can this be proven later?\n   PROVEN" in done.stdout
    assert not (tmp_path / "var").exists()  # nothing touched a database directory


@pytest.mark.skipif(not OFFBOARD.exists(), reason="the offboard script is not installed")
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a zip", "is not a zip archive, or it is truncated or corrupted"),
        (None, "is not a zip archive, or it is truncated or corrupted"),  # truncated pack
    ],
)
def test_the_installed_command_reports_malformed_packs_in_one_line(
    packs: BuiltPacks, tmp_path: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(content if content is not None else packs.closed.read_bytes()[:5000])
    done = subprocess.run(
        [str(OFFBOARD), "verify", str(path)],
        env=bare_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: bad.zip ") and reason in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_the_installed_command_checks_a_path_traversal_zip_in_one_line(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../../etc/cron.d/evil", b"* * * * * root rm -rf /\n")
    done = subprocess.run(
        [str(OFFBOARD), "verify", str(path), "--json"],
        env=bare_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False and "'..'" in report["error"]
    assert not (tmp_path.parent / "etc").exists()
