"""SCIM connector benchmark on ONE database (a scratch SQLite file); bench/run.py drives it.

    python bench/scim.py --out RESULT.json --workdir DIR [--accounts 200] [--runs 5]

A real `scim2-server` on loopback (started here, `--dynamic-tenants`: each run gets a tenant
of its own, so every run starts from fresh users and groups). Per run, `--accounts` users,
each in one or two of `--accounts / 10` groups, then:
- ours: `offboard.connectors.services.run_revoke` on an active case with one access grant per
  user, each linked to its SCIM user (`LinkedAccount`): plan (a groups read per user), revoke
  (read each group, PATCH it to remove the member; read the user, PATCH `active=false`),
  verify (read the user and the groups listing it), then a `connector.revoked` and a
  `connector.verified` event per grant with the responses stored as evidence files and the
  grant set revoked + observed;
- baseline: the same requests, in the same order, from a bare `http.client.HTTPConnection`
  (one connection object, the JSON parsed only where a decision needs it), nothing recorded.
The requests each side made are counted from the server's own request log and compared
(method, path with ids masked, status): the result says whether both made the same ones.
Ours and the baseline alternate (ours first in even runs, the baseline first in odd ones);
the best of each is kept, medians are reported too. Target: ratio ≤ 1.5.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import http.client
import io
import json
import pstats
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

RATIO_TARGET = 1.5
SCIM_SERVER = Path(sys.executable).with_name("scim2-server")
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LOG_LINE = re.compile(r'"([A-Z]+) /([A-Za-z0-9_-]+)/v2(\S*) HTTP/1\.[01]" (\d{3})')
HEX_ID = re.compile(r"[0-9a-f]{32}")


# --- the server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`scim2-server --dynamic-tenants` with its request log in a file."""

    def __init__(self, workdir: Path) -> None:
        self.token = "bench-scim-" + uuid.uuid4().hex
        self.port = _free_port()
        self.log = workdir / "scim2-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, tenant: str) -> str:
        return f"http://127.0.0.1:{self.port}/{tenant}/v2"

    def start(self) -> Server:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(SCIM_SERVER),
                    *("--port", str(self.port), "--bearer-token", self.token),
                    "--dynamic-tenants",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.call("ready", "GET", "/ServiceProviderConfig")
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("scim2-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def call(self, tenant: str, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(
                method,
                f"/{tenant}/v2{path}",
                body=None if body is None else json.dumps(body),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/scim+json",
                },
            )
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: {resp.status} {data!r}")
        return json.loads(data) if data else None

    def seed(self, tenant: str, accounts: int) -> list[dict[str, Any]]:
        """`accounts` users in `accounts / 10` groups: user i in group i mod G, odd users also
        in group (i + 7) mod G. Returns each user's id, login and group ids, in order."""
        groups = max(2, accounts // 10)
        users = []
        for i in range(accounts):
            login = f"user{i:04d}@{tenant}.example"
            uid = self.call(
                tenant,
                "POST",
                "/Users",
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": login,
                    "displayName": f"User {i}",
                    "active": True,
                    "emails": [{"value": login, "primary": True}],
                },
            )["id"]
            member_of = [i % groups] + ([(i + 7) % groups] if i % 2 else [])
            users.append({"id": str(uid), "login": login, "groups": member_of})
        for g in range(groups):
            members = [u["id"] for u in users if g in u["groups"]]
            gid = self.call(
                tenant,
                "POST",
                "/Groups",
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": f"team-{g:02d}",
                    "members": [{"value": m} for m in members],
                },
            )["id"]
            for u in users:
                u["groups"] = [gid if x == g else x for x in u["groups"]]
        return users

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for the log to hold every request served: a thread writes its line after the
        response, so the client may be done a moment before. A last request, then until the
        file stops growing."""
        self.call("settled", "GET", "/ServiceProviderConfig")
        deadline = time.monotonic() + timeout
        size = -1
        while time.monotonic() < deadline:
            text = self.log.read_bytes()
            if b"/settled/v2/" in text and len(text) == size:
                return
            size = len(text)
            time.sleep(0.2)

    def requests(self) -> dict[str, Counter[tuple[str, str, str]]]:
        """Per tenant, the requests the server logged (method, path with ids masked, status),
        POSTs left out (only the seeding creates)."""
        seen: dict[str, Counter[tuple[str, str, str]]] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            m = LOG_LINE.search(line)
            if m is None or m.group(1) == "POST":
                continue
            method, tenant, path, status = m.groups()
            shape = HEX_ID.sub("{id}", urllib.parse.unquote(path))
            seen.setdefault(tenant, Counter())[(method, shape, status)] += 1
        return seen


# --- the baseline: the same requests from a bare http.client ----------------------------


def baseline(server: Server, tenant: str, users: list[dict[str, Any]]) -> float:
    """What the connector asks of the server, with nothing else: plan (a groups read per
    user), then the memberships (read the group, PATCH it if the user is still listed), then
    deactivation (read the user, PATCH active=false if active), then per user the verify
    reads (the user, the groups listing it). Timed from the first request to the last."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    prefix = f"/{tenant}/v2"
    headers = {
        "Authorization": f"Bearer {server.token}",
        "Accept": "application/scim+json",
        "Content-Type": "application/scim+json",
    }

    def call(method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, prefix + path, body=payload, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()

    def groups_of(uid: str) -> list[str]:
        query = urllib.parse.urlencode(
            {"filter": f"members.value eq {json.dumps(uid)}", "count": 1000}
        )
        _, data = call("GET", f"/Groups?{query}")
        return [str(g["id"]) for g in json.loads(data).get("Resources") or ()]

    t0 = time.perf_counter()
    plan = [(u["id"], groups_of(u["id"])) for u in users]
    for uid, gids in plan:
        for gid in gids:
            status, data = call("GET", f"/Groups/{gid}")
            members = json.loads(data).get("members") or () if status == 200 else ()
            if any(m.get("value") == uid for m in members):
                body = {
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {"op": "remove", "path": f"members[value eq {json.dumps(uid)}]"}
                    ],
                }
                call("PATCH", f"/Groups/{gid}", body)
    for uid, _ in plan:
        status, data = call("GET", f"/Users/{uid}")
        if status == 200 and json.loads(data).get("active") is not False:
            body = {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            }
            call("PATCH", f"/Users/{uid}", body)
    absent = 0
    for uid, _ in plan:
        status, data = call("GET", f"/Users/{uid}")
        gone = status == 404 or json.loads(data).get("active") is False
        absent += gone and not groups_of(uid)
    seconds = time.perf_counter() - t0
    conn.close()
    if absent != len(users):
        raise RuntimeError(f"baseline: {len(users) - absent} user(s) not revoked")
    return seconds


# --- ours: run_revoke on a case -----------------------------------------------------------


class Ours:
    def __init__(self) -> None:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from offboard.accounts.services import create_organization, create_user
        from offboard.clients.services import create_client, create_contract
        from offboard.core.actor import Actor
        from offboard.playbooks.services import install_builtin_playbooks

        org = create_organization(slug="bench", name="Bench Ltd")
        member = create_user(
            actor=None, org=org, username="admin", role="admin", email="admin@bench.example"
        )
        self.actor = Actor.from_membership(member, auth_method="cli")
        versions = {v.playbook.service_type: v for v in install_builtin_playbooks(actor=self.actor)}
        self.playbook = versions["marketing_agency"]
        self.client = create_client(actor=self.actor, name="Northwind Traders")
        self.contract = create_contract(
            actor=self.actor,
            client=self.client,
            reference="NW-2025-01",
            service_type="marketing_agency",
            fee_type="retainer",
            start_date=dt.date(2025, 1, 1),
            end_date=dt.date(2026, 12, 31),
        )

    def prepare(self, server: Server, tenant: str, users: list[dict[str, Any]]) -> Any:
        """A connection to the tenant, an active case, one revoke grant per user linked to it."""
        from offboard.cases.services import activate_case, add_register_item, open_case
        from offboard.connectors import services
        from offboard.connectors.base import Account
        from offboard.connectors.models import LinkedAccount
        from offboard.core import clock

        actor = self.actor
        connection = services.create_connection(
            actor=actor,
            name=f"Directory {tenant}",
            kind="scim",
            config={"url": server.url(tenant)},
            secret=server.token,
        )
        case = open_case(
            actor=actor,
            client=self.client,
            contracts=[self.contract],
            trigger="non_renewal",
            trigger_date=dt.date(2026, 11, 2),
            owner_id=actor.user.pk,
            playbook_version=self.playbook,
            allow_duplicate=True,
        )
        if case.state != "active":
            case = activate_case(actor=actor, case=case)
        grants, links = [], []
        for u in users:
            grant = add_register_item(
                actor=actor,
                case=case,
                register="access_grants",
                values={
                    "direction": "client_in_provider",
                    "system": "SCIM directory",
                    "principal": u["login"],
                    "privilege": "member",
                    "planned_action": "revoke",
                },
            )
            account = Account(
                external_id=u["id"],
                login=u["login"],
                details={"emails": [u["login"]], "active": True, "groups": []},
            )
            grants.append(grant)
            links.append(
                LinkedAccount(
                    org=actor.org,
                    connection=connection,
                    grant=grant,
                    external_id=u["id"],
                    account=account.as_dict(),
                    created_at=clock.now(),
                )
            )
        LinkedAccount.objects.bulk_create(links)
        return case, grants, connection

    def run(self, case: Any, grants: list[Any], connection: Any, key: str) -> float:
        from offboard.connectors import services

        t0 = time.perf_counter()
        runs = services.run_revoke(
            actor=self.actor, case=case, grants=grants, connection=connection, idempotency_key=key
        )
        seconds = time.perf_counter() - t0
        bad = [r for r in runs if not r.observed_absent or r.problem]
        if bad:
            raise RuntimeError(f"ours: {len(bad)} grant(s) not observed absent: {bad[0].problem}")
        return seconds

    def recorded(self, case: Any) -> dict[str, int]:
        from offboard.cases.models import AccessGrant
        from offboard.ledger.models import LedgerEntry

        return {
            "connector_events": LedgerEntry.objects.filter(
                case=case, type__startswith="connector."
            ).count(),
            "grants_observed": AccessGrant.objects.filter(
                case=case, verification_level="observed", status="revoked"
            ).count(),
        }


def profile(ours: Ours, server: Server, accounts: int, top: int = 30) -> list[str]:
    users = server.seed("profile", accounts)
    case, grants, connection = ours.prepare(server, "profile", users)
    prof = cProfile.Profile()
    prof.enable()
    ours.run(case, grants, connection, "bench-profile")
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue().splitlines()


# --- main -------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    ours = Ours()
    server = Server(Path(args.workdir)).start()
    try:
        # Warm-up on both sides (imports, the server's first requests), not measured.
        warm = server.seed("warmours", 10)
        ours.run(*ours.prepare(server, "warmours", warm), "bench-warm")
        baseline(server, "warmbase", server.seed("warmbase", 10))
        ours_s: list[float] = []
        base_s: list[float] = []
        recorded: list[dict[str, int]] = []
        groups = max(2, args.accounts // 10)
        memberships = 0
        for r in range(args.runs):
            sides = ["ours", "base"] if r % 2 == 0 else ["base", "ours"]
            for side in sides:
                tenant = f"{side}{r}"
                users = server.seed(tenant, args.accounts)
                memberships = sum(len(u["groups"]) for u in users)
                if side == "ours":
                    case, grants, connection = ours.prepare(server, tenant, users)
                    ours_s.append(ours.run(case, grants, connection, f"bench-{tenant}"))
                    recorded.append(ours.recorded(case))
                else:
                    base_s.append(baseline(server, tenant, users))
                print(
                    f"[scim] run {r + 1}/{args.runs} {side}: "
                    f"{(ours_s if side == 'ours' else base_s)[-1]:.2f} s",
                    flush=True,
                )
        best_ours, best_base = min(ours_s), min(base_s)
        result: dict[str, Any] = {
            "accounts": args.accounts,
            "groups": groups,
            "memberships": memberships,
            "runs": args.runs,
            "ours_s": best_ours,
            "ours_runs_s": ours_s,
            "ours_median_s": statistics.median(ours_s),
            "baseline_s": best_base,
            "baseline_runs_s": base_s,
            "baseline_median_s": statistics.median(base_s),
            "ratio": best_ours / best_base,
            "ratio_median": statistics.median(ours_s) / statistics.median(base_s),
            "target": f"ratio <= {RATIO_TARGET:g}",
            "met": best_ours / best_base <= RATIO_TARGET,
            "recorded": recorded,
        }
        if args.profile or not result["met"]:
            print("[scim] cProfile of one more run of ours", flush=True)
            result["profile"] = profile(ours, server, args.accounts)
        # The server's log: the requests of each side.
        server.settle()
        seen = server.requests()
    finally:
        server.stop()
    per_run = []
    for r in range(args.runs):
        o, b = seen.get(f"ours{r}", Counter()), seen.get(f"base{r}", Counter())
        per_run.append(
            {
                "ours": o.total(),
                "baseline": b.total(),
                "same_requests": o == b,
                "only_ours": {" ".join(k): v for k, v in (o - b).items()},
                "only_baseline": {" ".join(k): v for k, v in (b - o).items()},
            }
        )
    result["requests"] = per_run
    result["requests_ours"] = per_run[0]["ours"]
    result["requests_baseline"] = per_run[0]["baseline"]
    result["same_requests"] = all(p["same_requests"] for p in per_run)
    result["request_kinds"] = {
        " ".join(k): v for k, v in sorted(seen.get("ours0", Counter()).items())
    }
    expected_events = 2 * args.accounts
    result["ok"] = result["same_requests"] and all(
        rec["connector_events"] == expected_events and rec["grants_observed"] == args.accounts
        for rec in recorded
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="add a cProfile of ours")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    result = measure(args)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    shown = {k: v for k, v in result.items() if k not in ("profile", "requests")}
    print(json.dumps(shown, indent=2))
    for line in result.get("profile", [])[:60]:
        print(line)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
