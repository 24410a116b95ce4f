"""Evidence pack from S3 (issue 16, part 6): export and verify of a pack whose evidence sits in
a moto_server bucket on loopback, against the same objects read and hashed by a bare boto3
client, in the same run. bench/run.py drives it (`--only s3pack`).

    python bench/s3pack.py --out RESULT.json --workdir DIR [--events 2000] [--mib 1024]

Setup (not timed): a moto_server (tests/s3server.py), a bucket, and bench/pack.py's case
(`--files` random files totalling `--mib` MiB) stored through Offboard with OFFBOARD_STORAGE=s3.
Then, alternating, twice each, the faster kept:
- ours: `offboard export REF --out pack.zip` (reads every object from the bucket, checks its
  SHA-256, streams the zip) and `offboard verify pack.zip`, real CLI processes;
- baseline: one boto3 client GETs every object and SHA-256es its body in 8 MiB chunks.
The ratios export/baseline and (export + verify)/baseline are the result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/s3server.py: the same server start-up as the tests

from pack import _timed  # noqa: E402
from tests.s3server import client, moto_server, new_bucket, s3_env  # noqa: E402

CHUNK = 8 * 1024 * 1024


def setup(args: argparse.Namespace) -> int:
    """In the S3-configured process: bench/pack.py's case, its files stored in the bucket."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import pack

    from offboard.evidence import storage

    storage.local_path = lambda name: name  # pack.py lists local paths; here: storage names
    print(f"[s3pack] a case with {args.events:,} events, {args.mib:,} MiB in S3", flush=True)
    t0 = time.perf_counter()
    ref, org, user, names, key = pack._build_case(args.events, args.mib, args.files, "closed")
    keys = [storage.default_storage.key(name) for name in names]  # type: ignore[attr-defined]
    info = {"ref": ref, "org": org, "user": user, "keys": keys, "key": key}
    info["setup_s"] = time.perf_counter() - t0
    (Path(args.workdir) / "case.json").write_text(json.dumps(info))
    return 0


def bare_read(url: str, bucket: str, keys: list[str]) -> tuple[float, int]:
    s3 = client(url)
    t = time.perf_counter()
    total = 0
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        while chunk := body.read(CHUNK):
            digest.update(chunk)
            total += len(chunk)
        assert digest.hexdigest() == key.rsplit("/", 1)[1]
    return time.perf_counter() - t, total


def measure(args: argparse.Namespace, url: str, bucket: str, env: dict[str, str]) -> int:
    work = Path(args.workdir)
    info = json.loads((work / "case.json").read_text())
    offboard = str(Path(sys.executable).with_name("offboard"))
    pack_zip = work / "pack.zip"
    export_cmd = [offboard, "export", info["ref"], "--out", str(pack_zip)]
    export_cmd += ["--as", info["user"], "--org", info["org"]]
    verify_cmd = [offboard, "verify", str(pack_zip), "--key", info["key"]]
    runs: dict[str, list[tuple[float, float, int, str]]] = {"export": [], "verify": []}
    baselines = []
    data_bytes = 0
    for _ in range(2):
        print("[s3pack] baseline: boto3 GET + sha256 of every object", flush=True)
        seconds, data_bytes = bare_read(url, bucket, info["keys"])
        baselines.append(seconds)
        print("[s3pack] offboard export (from S3)", flush=True)
        pack_zip.unlink(missing_ok=True)
        runs["export"].append(_timed(export_cmd, env))
        print("[s3pack] offboard verify", flush=True)
        runs["verify"].append(_timed(verify_cmd, env))
    base_s = min(baselines)
    result: dict[str, Any] = {
        "what": (
            f"export + verify of a closed case with {args.events:,} events and "
            f"{data_bytes / 2**20:,.0f} MiB of evidence in {args.files} objects in moto S3, vs "
            "a bare boto3 client reading and hashing the same objects"
        ),
        "events": args.events,
        "setup_s": info["setup_s"],
        "baseline_s": base_s,
        "baseline_runs_s": baselines,
        "data_bytes": data_bytes,
        "pack_bytes": pack_zip.stat().st_size if pack_zip.exists() else None,
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
    both = result["export"]["seconds"] + result["verify"]["seconds"]
    result["export_and_verify"] = {"seconds": both, "ratio": both / base_s}
    result["ok"] = ok
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"[s3pack] baseline {base_s:.2f} s · export {result['export']['seconds']:.2f} s "
        f"(×{result['export']['ratio']:.2f}, {result['export']['peak_rss_mb']:.0f} MB) · "
        f"export + verify {both:.2f} s (×{both / base_s:.2f})",
        flush=True,
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if args.setup:  # the child process, configured for S3 by the environment
        return setup(args)
    with moto_server(work) as url:
        bucket = new_bucket(url)
        env = {
            **os.environ,
            **s3_env(url, bucket),
            "DJANGO_SETTINGS_MODULE": "offboard.settings",
            "OFFBOARD_VAR_DIR": str(work / "var"),
            "OFFBOARD_KEY_DIR": str(work / "keys"),
            "OFFBOARD_TSA_ON_COMMIT": "off",
            "OFFBOARD_TSA_URLS": "",
            "OFFBOARD_DEBUG": "0",
            "OFFBOARD_SECRET_KEY": "bench-only-not-a-secret",
            "DATABASE_URL": f"sqlite:///{work / 's3pack.sqlite3'}",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
        }
        code = subprocess.call(
            [sys.executable, __file__, "--setup", *(argv or sys.argv[1:])], env=env
        )
        if code != 0:
            return code
        return measure(args, url, bucket, env)


if __name__ == "__main__":
    sys.exit(main())
