"""Evidence-pack benchmark on ONE database (SQLite in a scratch directory); bench/run.py drives it.

    python bench/pack.py setup|measure --out RESULT.json --workdir DIR [--events 2000] [--mib 1024]

A case with `--events` events and `--files` evidence files totalling `--mib` MiB, then:
- ours: `offboard export REF --out pack.zip` and `offboard verify pack.zip`, each a real CLI
  process (start-up included), timed, with its peak RSS from `wait4`;
- baseline, in the same run over the same stored files: `sha256sum FILES` followed by
  `zip -0 -q base.zip FILES` (hash everything once, store everything once).
Ours and the baseline alternate, twice each; the faster of each pair is kept. The ratios
export/baseline and verify/baseline are the result (targets: ≤ 1.5, peak RSS < 200 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RATIO_TARGET = 1.5
RSS_TARGET_MB = 200.0
CHUNK = 8 * 1024 * 1024


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run `cmd`; (seconds, peak RSS in MB, exit code, stderr tail)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    rss_mb = usage.ru_maxrss / 1024  # Linux: KiB
    return seconds, rss_mb, proc.returncode, err.decode(errors="replace")[-2000:]


def _build_case(
    events: int, mib: int, files: int, state: str
) -> tuple[str, str, str, list[str], str]:
    """The demo, plus `files` random evidence files and `events` events on its first case in
    `state` (closed: the pack carries the certificate issued at closure; active: an interim
    certificate is rendered during the export)."""
    from django.db import transaction

    from offboard.accounts.models import Membership
    from offboard.cases.models import OffboardingCase
    from offboard.core.actor import Actor
    from offboard.demo import load_demo
    from offboard.evidence import storage
    from offboard.evidence.services import store_file
    from offboard.ledger.models import LedgerEntry
    from offboard.ledger.recorder import record_event

    load_demo()
    case = OffboardingCase.objects.filter(state=state).select_related("org").order_by("ref").first()
    assert case is not None, f"the demo has a {state} case"
    admin = Membership.objects.select_related("user", "org").get(org=case.org, role="admin")
    actor = Actor.from_membership(admin, auth_method="cli")
    each = mib * 1024 * 1024 // files
    stored = []
    for i in range(files):
        path = Path(os.environ["OFFBOARD_VAR_DIR"]) / f"upload-{i}.bin"
        with path.open("wb") as f:
            left = each
            while left:
                n = min(CHUNK, left)
                f.write(os.urandom(n))
                left -= n
        with path.open("rb") as f, transaction.atomic():
            stored.append(store_file(actor=actor, stream=f, name=f"export-{i:02d}.bin"))
        path.unlink()
    already = LedgerEntry.objects.filter(case=case).count()
    for i in range(max(0, events - already)):
        with transaction.atomic():
            if i < len(stored):
                record_event(
                    actor=actor,
                    type="handover.file_attached",
                    case=case,
                    data={"note": f"bench file {i}", "file": stored[i].as_event_data()},
                    files=[stored[i]],
                )
            else:
                record_event(
                    actor=actor,
                    type="case.note",
                    case=case,
                    data={"note": f"bench event {i}: status call with the client's IT lead"},
                )
    paths = [storage.local_path(f.storage_name) for f in stored]
    from offboard.ledger.keys import active_key

    return case.ref, case.org.slug, admin.user.username, paths, active_key(case.org).verifier_key


def setup(args: argparse.Namespace) -> int:
    """Build the case (Django) and write what `measure` needs to `--workdir`/case.json."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    print(f"[pack] a case with {args.events:,} events and {args.mib:,} MiB of evidence", flush=True)
    t0 = time.perf_counter()
    ref, org, user, paths, key = _build_case(args.events, args.mib, args.files, args.state)
    info = {"ref": ref, "org": org, "user": user, "paths": paths, "key": key}
    info["setup_s"] = time.perf_counter() - t0
    (Path(args.workdir) / "case.json").write_text(json.dumps(info))
    return 0


def measure(args: argparse.Namespace) -> int:
    """Time ours and the baseline. This process never imports Django: a forked child's peak
    RSS starts at its parent's size, so the parent must stay small."""
    work = Path(args.workdir)
    info = json.loads((work / "case.json").read_text())
    ref, org, user, paths = info["ref"], info["org"], info["user"], info["paths"]
    offboard = str(Path(sys.executable).with_name("offboard"))
    env = {**os.environ}
    pack = work / "pack.zip"
    base = work / "base.zip"
    export_cmd = [offboard, "export", ref, "--out", str(pack), "--as", user, "--org", org]
    # Anchored by the organization's key, as a third party given it would run it (exit 0).
    verify_cmd = [offboard, "verify", str(pack), "--key", info["key"]]

    def baseline(hasher: tuple[str, ...] = ("sha256sum",)) -> float:
        base.unlink(missing_ok=True)
        t = time.perf_counter()
        subprocess.run([*hasher, *paths], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["zip", "-0", "-q", "-j", str(base), *paths], check=True)
        return time.perf_counter() - t

    runs: dict[str, list[tuple[float, float, int, str]]] = {"export": [], "verify": []}
    baselines = []
    for _ in range(2):
        print("[pack] baseline: sha256sum + zip -0", flush=True)
        baselines.append(baseline())
        print("[pack] offboard export", flush=True)
        pack.unlink(missing_ok=True)
        runs["export"].append(_timed(export_cmd, env))
        print("[pack] offboard verify", flush=True)
        runs["verify"].append(_timed(verify_cmd, env))
    base_s = min(baselines)
    # Context: coreutils' sha256sum does not use the CPU's SHA extensions; OpenSSL (which
    # Python's hashlib uses) does, several times faster on this machine.
    openssl_s = min(baseline(("openssl", "dgst", "-sha256")) for _ in range(2))
    result: dict[str, Any] = {
        "what": (
            f"export and verify of a {args.state} case with {args.events:,} events and "
            f"{args.mib:,} MiB of "
            f"evidence in {args.files} files, vs sha256sum + zip -0 of the same files"
        ),
        "events": args.events,
        "state": args.state,
        "setup_s": info["setup_s"],
        "baseline_s": base_s,
        "baseline_runs_s": baselines,
        "baseline_openssl_dgst_s": openssl_s,
        "pack_bytes": pack.stat().st_size if pack.exists() else None,
        "data_bytes": sum(Path(p).stat().st_size for p in paths),
        "ratio_target": RATIO_TARGET,
        "rss_target_mb": RSS_TARGET_MB,
    }
    ok = True
    for name, series in runs.items():
        best = min(series, key=lambda r: r[0])
        failed = [r for r in series if r[2] != 0]
        ok &= not failed
        result[name] = {
            "seconds": best[0],
            "runs_s": [r[0] for r in series],
            "peak_rss_mb": max(r[1] for r in series),
            "exit_codes": [r[2] for r in series],
            "ratio": best[0] / base_s,
            "stderr_tail": failed[0][3] if failed else "",
        }
        result[name]["met"] = (
            not failed
            and best[0] / base_s <= RATIO_TARGET
            and result[name]["peak_rss_mb"] < RSS_TARGET_MB
        )
    result["ok"] = ok
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"[pack] baseline {base_s:.2f} s (with openssl dgst instead: {openssl_s:.2f} s) · export {result['export']['seconds']:.2f} s "
        f"(×{result['export']['ratio']:.2f}, {result['export']['peak_rss_mb']:.0f} MB) · verify "
        f"{result['verify']['seconds']:.2f} s (×{result['verify']['ratio']:.2f}, "
        f"{result['verify']['peak_rss_mb']:.0f} MB)",
        flush=True,
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["setup", "measure"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--state", choices=["closed", "active"], default="closed")
    args = parser.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    return setup(args) if args.step == "setup" else measure(args)


if __name__ == "__main__":
    sys.exit(main())
