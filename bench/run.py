"""`make bench`: the ledger benchmarks on SQLite and (when reachable) PostgreSQL, the evidence
pack, the daily digests and the SCIM connector.

    .venv/bin/python bench/run.py [--quick] [--backends sqlite,postgres] [--entries N] …
    .venv/bin/python bench/run.py --only scim      # appends,proofs,verify,pack,s3pack,reminders,scim,web

Each backend runs in its own process (bench/ledger.py) against a scratch database: a
temporary SQLite file (WAL and the PRAGMAs of offboard.settings, which it goes through) and
a PostgreSQL database `offboard_bench`, created and dropped here; the other benchmarks
(bench/pack.py, reminders.py, scim.py) each on a scratch SQLite file. Every figure comes with
a baseline measured in the same run and the ratio; all of it goes to
bench/results/latest.json, merged into what is there (`--only X` replaces X's figures and
keeps the others; each result says `when`). Exit status: 0 when every benchmark that ran
did and every correctness check held (a missed performance target is reported, not an
error), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
POSTGRES_URL = os.environ.get(
    "OFFBOARD_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/offboard_bench"
)
console = Console() if sys.stdout.isatty() else Console(width=140)
LEDGER_BENCHMARKS = {"appends", "proofs", "verify"}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024**2, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import django

        info["django"] = django.get_version()
    except ImportError:
        pass
    return info


def _postgres_admin_url() -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + "/postgres"


def _postgres_db_name() -> str:
    return POSTGRES_URL.rsplit("/", 1)[1]


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        import psycopg

        psycopg.connect(_postgres_admin_url(), connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL is not reachable at {_postgres_admin_url()}: {str(exc).strip().splitlines()[0]}"
    return None


def _postgres_scratch(create: bool) -> None:
    import psycopg
    from psycopg import sql

    name = sql.Identifier(_postgres_db_name())
    with psycopg.connect(_postgres_admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out = workdir / f"{backend}.json"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "OFFBOARD_VAR_DIR": str(workdir / f"var-{backend}"),
        "OFFBOARD_KEY_DIR": str(workdir / f"keys-{backend}"),
        "OFFBOARD_TSA_ON_COMMIT": "off",
        "OFFBOARD_TSA_URLS": "",
        # As in production: with DEBUG on, Django also records every SQL statement.
        "OFFBOARD_DEBUG": "0",
        "OFFBOARD_SECRET_KEY": "bench-only-not-a-secret",
    }
    entries = args.entries if backend == "sqlite" else args.pg_entries or args.entries
    if backend == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        env["DATABASE_URL"] = POSTGRES_URL
        _postgres_scratch(create=True)
    cmd = [
        sys.executable,
        str(HERE / "ledger.py"),
        "--out",
        str(out),
        "--entries",
        str(entries),
        "--appends",
        str(args.appends),
        "--warmup",
        str(args.warmup),
        "--proofs",
        str(args.proofs),
        "--proof-budget",
        str(args.proof_budget),
        "--only",
        args.only,
    ]
    console.rule(f"[bold]{backend}[/bold]")
    t0 = time.perf_counter()
    try:
        code = subprocess.call(cmd, env=env)
    finally:
        if backend == "postgres":
            _postgres_scratch(create=False)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result["wall_s"] = time.perf_counter() - t0
    result["exit_code"] = code
    return result


def run_pack(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The evidence-pack benchmark (bench/pack.py) on a scratch SQLite database."""
    work = workdir / "pack"
    out = workdir / "pack.json"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "OFFBOARD_VAR_DIR": str(work / "var"),
        "OFFBOARD_KEY_DIR": str(work / "keys"),
        "OFFBOARD_TSA_ON_COMMIT": "off",
        "OFFBOARD_TSA_URLS": "",
        "OFFBOARD_DEBUG": "0",
        "OFFBOARD_SECRET_KEY": "bench-only-not-a-secret",
        "DATABASE_URL": f"sqlite:///{workdir / 'pack.sqlite3'}",
    }
    cmd = [
        sys.executable,
        str(HERE / "pack.py"),
        "--out",
        str(out),
        "--workdir",
        str(work),
        "--events",
        str(args.pack_events),
        "--mib",
        str(args.pack_mib),
    ]
    console.rule("[bold]evidence pack[/bold]")
    code = subprocess.call([*cmd[:2], "setup", *cmd[2:]], env=env)
    if code == 0:
        code = subprocess.call([*cmd[:2], "measure", *cmd[2:]], env=env)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result["exit_code"] = code
    result["ok"] = code == 0 and bool(result.get("ok"))
    return result


def run_s3pack(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Export and verify of a pack whose evidence is in moto S3 (bench/s3pack.py), against a
    bare boto3 client reading and hashing the same objects."""
    out = workdir / "s3pack.json"
    cmd = [sys.executable, str(HERE / "s3pack.py"), "--out", str(out)]
    cmd += ["--workdir", str(workdir / "s3pack"), "--events", str(args.pack_events)]
    cmd += ["--mib", str(args.pack_mib)]
    console.rule("[bold]evidence pack from S3[/bold]")
    code = subprocess.call(cmd)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result["exit_code"] = code
    result["ok"] = code == 0 and bool(result.get("ok"))
    return result


def run_web(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Web under load (bench/web.py): `offboard serve --prod` on the scratch PostgreSQL
    database (SQLite when it is unreachable), 20 clients, workspace and case list vs a trivial
    view."""
    out = workdir / "web.json"
    cmd = [sys.executable, str(HERE / "web.py"), "--out", str(out)]
    cmd += ["--workdir", str(workdir / "web")]
    if args.quick:
        cmd += ["--seconds", "2", "--rounds", "1"]
    postgres = postgres_reachable() is None
    if postgres:
        _postgres_scratch(create=True)
        cmd += ["--database-url", POSTGRES_URL]
    console.rule("[bold]web under load[/bold]")
    try:
        code = subprocess.call(cmd)
    finally:
        if postgres:
            _postgres_scratch(create=False)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result["exit_code"] = code
    result["ok"] = code == 0 and bool(result.get("ok"))
    return result


def _web_rows(table: Table, res: dict[str, Any]) -> None:
    if "figures" not in res:
        table.add_row("web", "web under load", "failed", "", "", "", _met(False))
        return
    f = res["figures"]
    trivial = f["trivial"]
    for name, label in (
        ("case_list", "case list"),
        ("workspace", "case workspace (+200 steps, +500 events)"),
    ):
        r = f[name]
        table.add_row(
            res["database"],
            f"{label}, {res['clients']} clients: p50 {r['p50_ms']:.0f} ms / p95 (vs /health/live)",
            f"{r['p95_ms']:.0f} ms",
            f"{trivial['p95_ms']:.0f} ms",
            f"{r['p95_ratio']:.2f}",
            f"p95 ratio <= {res['ratio_target']:.0f}",
            _met(r["p95_ratio"] <= res["ratio_target"]),
        )
    r = f.get("workspace_afresh")
    if r is not None:  # every page built: the cost right after each change to the case
        table.add_row(
            res["database"],
            f"case workspace built afresh each time (OFFBOARD_PAGE_CACHE=false): "
            f"p50 {r['p50_ms']:.0f} ms / p95 (vs /health/live of that server)",
            f"{r['p95_ms']:.0f} ms",
            f"{f['trivial_afresh']['p95_ms']:.0f} ms",
            f"{r['p95_ratio']:.2f}",
            "reported",
            "",
        )


def _s3pack_rows(table: Table, res: dict[str, Any]) -> None:
    if "baseline_s" not in res:
        table.add_row("sqlite+s3", "evidence pack from S3", "failed", "", "", "", _met(False))
        return
    size = f"{res['data_bytes'] / 2**20:,.0f} MiB in moto S3"
    for label, r in (("export", res["export"]), ("export + verify", res["export_and_verify"])):
        table.add_row(
            "sqlite+s3",
            f"{label} pack, {size} (vs boto3 GET + sha256)",
            _fmt(r["seconds"], "s"),
            _fmt(res["baseline_s"], "s"),
            f"{r['ratio']:.2f}",
            "reported",
            _met(True),
        )


def run_reminders(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The daily-digest benchmark (bench/reminders.py) on a scratch SQLite database."""
    work = workdir / "reminders"
    out = workdir / "reminders.json"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "OFFBOARD_VAR_DIR": str(work / "var"),
        "OFFBOARD_KEY_DIR": str(work / "keys"),
        "OFFBOARD_TSA_ON_COMMIT": "off",
        "OFFBOARD_TSA_URLS": "",
        "OFFBOARD_DEBUG": "0",
        "OFFBOARD_SECRET_KEY": "bench-only-not-a-secret",
        "DATABASE_URL": f"sqlite:///{workdir / 'reminders.sqlite3'}",
    }
    console.rule("[bold]daily digest[/bold]")
    code = subprocess.call(
        [sys.executable, str(HERE / "reminders.py"), "--out", str(out), "--people", "1000"],
        env=env,
    )
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result["exit_code"] = code
    result["ok"] = code == 0 and bool(result.get("ok"))
    return result


def run_scim(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The SCIM connector benchmark (bench/scim.py): a real scim2-server on loopback and a
    scratch SQLite database."""
    work = workdir / "scim"
    out = workdir / "scim.json"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "OFFBOARD_VAR_DIR": str(work / "var"),
        "OFFBOARD_KEY_DIR": str(work / "keys"),
        "OFFBOARD_TSA_ON_COMMIT": "off",
        "OFFBOARD_TSA_URLS": "",
        "OFFBOARD_DEBUG": "0",
        "OFFBOARD_SECRET_KEY": "bench-only-not-a-secret",
        "DATABASE_URL": f"sqlite:///{workdir / 'scim.sqlite3'}",
    }
    console.rule("[bold]SCIM connector[/bold]")
    cmd = [
        sys.executable,
        str(HERE / "scim.py"),
        "--out",
        str(out),
        "--workdir",
        str(work),
        "--accounts",
        str(args.scim_accounts),
        "--runs",
        str(args.scim_runs),
    ]
    code = subprocess.call(cmd, env=env)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result["exit_code"] = code
    result["ok"] = code == 0 and bool(result.get("ok"))
    return result


def _scim_rows(table: Table, res: dict[str, Any]) -> None:
    if "baseline_s" not in res:
        table.add_row("sqlite", "SCIM revoke + verify", "failed", "", "", "", _met(False))
        return
    same = "same" if res["same_requests"] else "[red]NOT the same[/red]"
    table.add_row(
        "sqlite",
        f"SCIM revoke + verify, {res['accounts']} accounts ({res['memberships']} memberships): "
        f"run_revoke vs bare http.client; {res['requests_ours']} / "
        f"{res['requests_baseline']} requests ({same}), best of {res['runs']}, "
        f"median ratio {res['ratio_median']:.2f}",
        _fmt(res["ours_s"], "s"),
        _fmt(res["baseline_s"], "s"),
        f"{res['ratio']:.2f}",
        res["target"],
        _met(res["met"]),
    )


def _reminder_rows(table: Table, res: dict[str, Any]) -> None:
    if "baseline_s" not in res:
        table.add_row("sqlite", "daily digest", "failed", "", "", "", _met(False))
        return
    table.add_row(
        "sqlite",
        f"daily digests: {res['people']:,} people × {res['steps'] // max(res['people'], 1)} "
        f"steps, {res['queries']} queries (baseline: one plain query of the same rows)",
        _fmt(res["ours_s"], "s"),
        _fmt(res["baseline_s"], "s"),
        f"{res['ratio']:.2f}",
        res["target"],
        _met(res["met"]),
    )


def _fmt(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "ms":
        return f"{value:.3f} ms"
    return f"{value:.2f} s"


def summarize(results: dict[str, Any]) -> Table:
    table = Table(title="Ledger benchmarks: ours vs a baseline measured in the same run")
    for col in ("db", "benchmark", "ours", "baseline", "ratio", "target", "met"):
        table.add_column(col)
    for backend, res in results.items():
        if backend == "pack":
            _pack_rows(table, res)
            continue
        if backend == "s3pack":
            _s3pack_rows(table, res)
            continue
        if backend == "web":
            _web_rows(table, res)
            continue
        if backend == "reminders":
            _reminder_rows(table, res)
            continue
        if backend == "scim":
            _scim_rows(table, res)
            continue
        if "skipped" in res:
            table.add_row(backend, "—", "skipped", res["skipped"], "", "", "")
            continue
        b = res.get("benchmarks", {})
        if "appends" in b:
            _append_row(table, backend, "appends, small log", b["appends"])
        for label, a in _with_after_analyze(b.get("appends_at_size")):
            _append_row(table, backend, f"appends @ {a['entries']:,}{label}", a)
        for label, p in _with_after_analyze(b.get("proofs")):
            sampled = f", {p['count']} in budget" if p["stopped_by_budget"] else ""
            table.add_row(
                backend,
                f"inclusion proof @ {p['entries']:,}, median{sampled}{label}",
                _fmt(p["ours"]["median_ms"], "ms"),
                _fmt(p["baseline"]["median_ms"], "ms"),
                f"{p['ratio']:.2f}",
                p["target"],
                _met(p["met"] and not p["proofs_failed"]),
            )
        if "verify" in b:
            v = b["verify"]
            if v.get("status") == "not run":
                table.add_row(
                    backend,
                    f"verify_log @ {v['entries']:,}",
                    "not run",
                    _fmt(v["baseline_s"], "s"),
                    "",
                    v["target"],
                    v["reason"],
                )
            else:
                table.add_row(
                    backend,
                    f"verify_log @ {v['entries']:,} (raw read alone: {v['raw_read_s']:.2f} s)",
                    _fmt(v["ours_s"], "s"),
                    _fmt(v["baseline_s"], "s"),
                    f"{v['ratio']:.2f}",
                    v["target"],
                    _met(v["met"]),
                )
    return table


def _pack_rows(table: Table, res: dict[str, Any]) -> None:
    if "baseline_s" not in res:
        table.add_row("sqlite", "evidence pack", "failed", "", "", "", _met(False))
        return
    for name in ("export", "verify"):
        r = res[name]
        table.add_row(
            "sqlite",
            f"{name} pack, {res.get('state', 'closed')} case: {res['events']:,} events, {res['data_bytes'] / 2**20:,.0f} MiB "
            f"(peak RSS {r['peak_rss_mb']:.0f} MB)",
            _fmt(r["seconds"], "s"),
            _fmt(res["baseline_s"], "s"),
            f"{r['ratio']:.2f}",
            f"ratio <= {res['ratio_target']}, RSS < {res['rss_target_mb']:.0f} MB",
            _met(r["met"]),
        )


def _with_after_analyze(result: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    if not result:
        return []
    rows = [("", result)]
    if "after_analyze" in result:
        rows.append((", after ANALYZE", result["after_analyze"]))
    return rows


def _append_row(table: Table, backend: str, label: str, a: dict[str, Any]) -> None:
    sampled = f", {a['count']} in budget" if a.get("stopped_by_budget") else ""
    table.add_row(
        backend,
        f"{label}{sampled}",
        _fmt(a["ours_per_s"], "/s"),
        _fmt(a["baseline_per_s"], "/s"),
        f"{a['ratio']:.2f}",
        a["target"],
        _met(a["met"]),
    )


def _met(value: Any) -> str:
    return {True: "[green]yes[/green]", False: "[red]NO[/red]"}.get(value, str(value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size for (b) and (c)")
    parser.add_argument(
        "--pg-entries", type=int, default=0, help="log size on PostgreSQL (default: --entries)"
    )
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument(
        "--proof-budget", type=float, default=60.0, help="seconds at most per proof series"
    )
    parser.add_argument("--only", default="appends,proofs,verify,pack,s3pack,reminders,scim,web")
    parser.add_argument("--pack-events", type=int, default=2000)
    parser.add_argument("--pack-mib", type=int, default=1024)
    parser.add_argument("--scim-accounts", type=int, default=200)
    parser.add_argument("--scim-runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.pack_events, args.pack_mib = 300, 64
        args.entries, args.pg_entries = 20_000, 0
        args.appends, args.warmup, args.proofs = 300, 100, 200
        args.scim_accounts, args.scim_runs = 50, 2
    only = set(args.only.split(","))

    results: dict[str, Any] = {}
    ok = True
    with tempfile.TemporaryDirectory(prefix="offboard-bench-") as tmp:
        ledger = only & LEDGER_BENCHMARKS
        for backend in args.backends.split(",") if ledger else ():
            if backend == "postgres":
                reason = postgres_reachable()
                if reason:
                    console.print(f"[yellow]SKIPPED PostgreSQL:[/yellow] {reason}")
                    results[backend] = {"skipped": reason}
                    continue
            elif backend != "sqlite":
                parser.error(f"unknown backend {backend!r}")
            res = run_backend(backend, args, Path(tmp))
            results[backend] = res
            b = res.get("benchmarks", {})
            ok &= res["exit_code"] == 0
            proofs = b.get("proofs", {})
            ok &= not proofs.get("proofs_failed")
            ok &= not proofs.get("after_analyze", {}).get("proofs_failed")
            ok &= b.get("verify", {}).get("status") != "FAILED"

        if "pack" in only:
            results["pack"] = run_pack(args, Path(tmp))
            ok &= bool(results["pack"].get("ok"))

        if "s3pack" in only:
            results["s3pack"] = run_s3pack(args, Path(tmp))
            ok &= bool(results["s3pack"].get("ok"))

        if "reminders" in only:
            results["reminders"] = run_reminders(args, Path(tmp))
            ok &= bool(results["reminders"].get("ok"))

        if "scim" in only:
            results["scim"] = run_scim(args, Path(tmp))
            ok &= bool(results["scim"].get("ok"))

        if "web" in only:
            results["web"] = run_web(args, Path(tmp))
            ok &= bool(results["web"].get("ok"))

    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for res in results.values():
        res["when"] = when
        for bench in res.get("benchmarks", {}).values():
            if isinstance(bench, dict):
                bench["when"] = when
    out = Path(args.out)
    report = merged(out, results)
    report.update(
        when=when,
        machine=machine(),
        parameters={
            k: getattr(args, k)
            for k in (
                "entries",
                "pg_entries",
                "appends",
                "warmup",
                "proofs",
                "proof_budget",
                "scim_accounts",
                "scim_runs",
            )
        },
        only=sorted(only),
        ok=ok,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(summarize(results))
    console.print(f"results: {out}")
    return 0 if ok else 1


def merged(out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The report already in `out` with this run's results put in: a run of some benchmarks
    (`--only`) replaces those and keeps the others' last figures (each result says `when`).
    A database's ledger benchmarks are merged one by one, so `--only appends` keeps the
    last proofs and verify figures."""
    try:
        report: dict[str, Any] = json.loads(out.read_text())
        if not isinstance(report.get("results"), dict):
            raise ValueError
    except (OSError, ValueError):
        report = {"results": {}}
    kept = report["results"]
    for name, res in results.items():
        old = kept.get(name)
        if isinstance(old, dict) and "benchmarks" in old:
            if "skipped" in res:  # PostgreSQL down this time: its last figures stay
                res = {**old, "skipped_last_run": res["skipped"]}
            elif "benchmarks" in res:
                res = {**res, "benchmarks": {**old["benchmarks"], **res["benchmarks"]}}
        kept[name] = res
    return report


if __name__ == "__main__":
    sys.exit(main())
