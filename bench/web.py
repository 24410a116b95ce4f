"""Web under load (issue 16): p50/p95 latency of the case workspace (a case with 200 steps and
500 events) and of the case list, with 20 concurrent clients, against a trivial view
(`/health/live`) of the same server in the same run; bench/run.py drives it.

    python bench/web.py --out RESULT.json --workdir DIR [--clients 20] [--seconds 8]
                        [--rounds 3] [--workers 4] [--database-url URL]

The server is `offboard serve --prod` (gunicorn, debug off, JSON logs to a file) on a scratch
database: PostgreSQL when `--database-url` names one (bench/run.py passes a scratch database,
created and dropped there), else a SQLite file. The demo is loaded, its first active case gets
200 more steps and 500 more events, and alice signs in once through the login form. Then each
of `--clients` threads, with its own keep-alive connection, requests one target as fast as it
answers for `--seconds`; the three targets take turns for `--rounds` rounds, so drift in the
machine hits all three alike. Every answer must be 200. The result is each target's p50/p95
and the ratio of its p95 to the trivial view's (target: ≤ 5).

The workspace is then kept whole between answers (web/page_cache.py): twenty clients reading
one unchanged case read it from the cache. So the server is started a second time with
`OFFBOARD_PAGE_CACHE=false` and the workspace measured again against that server's trivial
view: what a page costs every time, as right after each change to its case (reported, no
target).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

RATIO_TARGET = 5.0
STEPS = 200
EVENTS = 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup() -> int:
    """In a child process with the server's environment: migrate, load the demo, grow its first
    active case to 200 more steps and 500 more events; print the case's reference."""
    import datetime as dt

    import django
    from django.core.management import call_command

    django.setup()
    from django.db import transaction

    from offboard.accounts.models import Membership
    from offboard.cases.models import OffboardingCase, Step
    from offboard.core.actor import Actor
    from offboard.demo import load_demo
    from offboard.ledger.recorder import record_event

    call_command("migrate", verbosity=0)
    load_demo()
    case = OffboardingCase.objects.filter(state="active").order_by("ref").first()
    assert case is not None, "the demo has an active case"
    Step.objects.bulk_create(
        Step(
            org=case.org,
            case=case,
            key=f"bench_{i}",
            position=1000 + i,
            phase=f"phase {i % 5}",
            title=f"Bench step {i}",
            owner_role="operator",
            owner=case.owner,
            due_anchor="end",
            due_offset_days=0,
            due_date=dt.date(2027, 1, 1),
            evidence_required=["note"],
        )
        for i in range(STEPS)
    )
    admin = Membership.objects.select_related("user", "org").get(
        org=case.org, user__username="alice"
    )
    alice = Actor.from_membership(admin, auth_method="cli")
    with transaction.atomic():
        for i in range(EVENTS):
            record_event(
                actor=alice,
                type="case.note",
                case=case,
                data={"text": f"bench note {i}: a call with the client's IT lead"},
            )
    print(json.dumps({"ref": case.ref, "steps": case.steps.count()}))
    return 0


def _sign_in(base: str) -> str:
    """alice signs in through the login form; the Cookie header that carries her session (the
    cookies are Secure with debug off: a client on plain-HTTP loopback sends them by hand)."""
    import requests

    session = requests.Session()
    form = session.get(f"{base}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, "no CSRF token on the login page"
    csrf = form.cookies["csrftoken"]
    signed = session.post(
        f"{base}/login/",
        data={"username": "alice", "password": "offboard-demo", "csrfmiddlewaretoken": token[1]},
        headers={"Cookie": f"csrftoken={csrf}"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed.status_code == 302, f"sign-in answered {signed.status_code}"
    name = next(c.name for c in signed.cookies if c.name.endswith("sessionid"))
    return f"{name}={signed.cookies[name]}; csrftoken={csrf}"


def _hammer(url: str, cookie: str, clients: int, seconds: float) -> tuple[list[float], int]:
    """`clients` threads request `url` back to back for `seconds`; (latencies in s, non-200s)."""
    import requests

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client() -> None:
        session = requests.Session()
        mine: list[float] = []
        bad = 0
        start.wait()
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            response = session.get(url, headers={"Cookie": cookie}, timeout=60)
            mine.append(time.perf_counter() - t0)
            bad += response.status_code != 200
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def _phase(
    args: argparse.Namespace,
    work: Path,
    env: dict[str, str],
    ref: str,
    names: tuple[str, ...],
    label: str,
) -> tuple[dict[str, list[float]], dict[str, int]] | None:
    """Start `offboard serve --prod` with `env`, sign alice in, warm up, then measure `names`
    in turns for `--rounds` rounds; the server is stopped at the end. None: it did not start."""
    import requests

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    offboard = str(Path(sys.executable).with_name("offboard"))
    log = (work / f"server-{label}.log").open("wb")
    server = subprocess.Popen(
        [offboard, "serve", "--prod", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{base}/health/live", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"[web] the server did not start: see {log.name}", file=sys.stderr)
                return None
            time.sleep(0.5)
        cookie = _sign_in(base)
        every = {
            "trivial": f"{base}/health/live",
            "case_list": f"{base}/cases/",
            "workspace": f"{base}/cases/{ref}/",
        }
        targets = {name: every[name] for name in names}
        page = requests.get(every["workspace"], headers={"Cookie": cookie}, timeout=60)
        assert page.status_code == 200 and "Bench step 199" in page.text, "the workspace is big"
        samples: dict[str, list[float]] = {name: [] for name in targets}
        errors = dict.fromkeys(targets, 0)
        for url in targets.values():  # warm every worker's caches and connections
            _hammer(url, cookie, args.clients, 1.0)
        for r in range(args.rounds):
            for name, url in targets.items():
                got, bad = _hammer(url, cookie, args.clients, args.seconds)
                samples[name] += got
                errors[name] += bad
                print(
                    f"[web] {label}, round {r + 1}: {name}: {len(got)} requests, "
                    f"p95 {_quantile(got, 0.95) * 1000:.0f} ms",
                    flush=True,
                )
        return samples, errors
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def measure(args: argparse.Namespace) -> int:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    database_url = args.database_url or f"sqlite:///{work / 'web.sqlite3'}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "offboard.settings",
        "OFFBOARD_DEBUG": "false",
        "OFFBOARD_SECRET_KEY": "bench-only-not-a-secret-" + "x" * 40,
        "OFFBOARD_VAR_DIR": str(work / "var"),
        "OFFBOARD_KEY_DIR": str(work / "keys"),
        "OFFBOARD_TSA_URLS": "",
        "OFFBOARD_TSA_ON_COMMIT": "off",
        "OFFBOARD_RECEIPT_ON_COMMIT": "off",
        "OFFBOARD_EMAIL_BACKEND": "locmem",
        "OFFBOARD_DB_CONN_MAX_AGE": "60",
        "DATABASE_URL": database_url,
        "OFFBOARD_WEB_WORKERS": str(args.workers),
    }
    print(f"[web] demo + a case with {STEPS} more steps and {EVENTS} more events", flush=True)
    made = subprocess.run(
        [sys.executable, __file__, "setup"], env=env, capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        print(made.stderr[-3000:], file=sys.stderr)
        return 1
    ref = json.loads(made.stdout.strip().splitlines()[-1])["ref"]
    kept = _phase(args, work, env, ref, ("trivial", "case_list", "workspace"), "kept")
    # The same server with every workspace built afresh: what a page costs when its case has
    # just changed (web/page_cache.py), against the trivial view of that same server.
    afresh = _phase(
        args, work, {**env, "OFFBOARD_PAGE_CACHE": "false"}, ref, ("trivial", "workspace"), "afresh"
    )
    if kept is None or afresh is None:
        return 1
    samples, errors = kept
    samples["trivial_afresh"], errors["trivial_afresh"] = afresh[0]["trivial"], afresh[1]["trivial"]
    samples["workspace_afresh"] = afresh[0]["workspace"]
    errors["workspace_afresh"] = afresh[1]["workspace"]
    figures = {
        name: {
            "requests": len(values),
            "per_second": round(len(values) / (args.seconds * args.rounds), 1),
            "p50_ms": round(_quantile(values, 0.50) * 1000, 1),
            "p95_ms": round(_quantile(values, 0.95) * 1000, 1),
            "non_200": errors[name],
        }
        for name, values in samples.items()
    }
    afresh_ratio = figures["workspace_afresh"]["p95_ms"] / figures["trivial_afresh"]["p95_ms"]
    figures["workspace_afresh"]["p95_ratio"] = round(afresh_ratio, 2)
    trivial_p95 = figures["trivial"]["p95_ms"]
    for name in ("case_list", "workspace"):
        figures[name]["p95_ratio"] = round(figures[name]["p95_ms"] / trivial_p95, 2)
    met = all(figures[n]["p95_ratio"] <= RATIO_TARGET for n in ("case_list", "workspace"))
    result = {
        "database": "postgresql" if database_url.startswith("postgres") else "sqlite",
        "clients": args.clients,
        "workers": args.workers,
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "steps_added": STEPS,
        "events_added": EVENTS,
        "figures": figures,
        "ratio_target": RATIO_TARGET,
        "met": met,
        "ok": not any(errors.values()),
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(figures, indent=2))
    return 0 if result["ok"] else 1


def main() -> int:
    if sys.argv[1:2] == ["setup"]:
        return setup()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database-url", default="")
    return measure(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
