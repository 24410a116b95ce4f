"""The fleet test's clients: threads that run client exits end to end over the REST API and
the portal, spread over every web process, and remember only what was acknowledged.

A request that meets a closed or reset connection goes to the next web process; a write that
was never answered is not recorded (it may or may not have happened), and a journey whose
retried write is refused (say 409: the lost attempt did commit) stops there. What a 2xx
answered — with the ids it returned — is an `Ack`, checked afterwards by `check_acks`.
"""

import datetime as dt
import hashlib
import io
import itertools
import re
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

import requests

TODAY = dt.date.today().isoformat()


@dataclass
class Ack:
    """One acknowledged write: what it was, the ids it answered, what it must have stored."""

    kind: str
    ref: str
    detail: dict[str, Any] = field(default_factory=dict)


class Refused(Exception):
    """An answer that ends a journey (a retried write refused, say): nothing is recorded."""


@dataclass
class Tally:
    acks: list[Ack] = field(default_factory=list)
    journeys: int = 0
    abandoned: list[str] = field(default_factory=list)
    connection_errors: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, kind: str, ref: str, **detail: Any) -> None:
        with self.lock:
            self.acks.append(Ack(kind, ref, detail))


class Spread:
    """Requests over several web processes: each call starts at the next one; a connection
    error moves on to the following one, for up to `deadline` seconds."""

    def __init__(self, bases: list[str], tally: Tally, *, deadline: float = 20.0) -> None:
        self.bases = bases
        self.tally = tally
        self.deadline = deadline
        self.turn = itertools.count()
        self.session = requests.Session()

    def call(self, method: str, path: str, *, token: str = "", **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        start = next(self.turn)
        give_up = time.monotonic() + self.deadline
        for attempt in itertools.count():
            base = self.bases[(start + attempt) % len(self.bases)]
            with self.tally.lock:
                self.tally.requests += 1
            try:
                return self.session.request(
                    method,
                    base + path,
                    headers=headers,
                    timeout=30,
                    allow_redirects=False,
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout):
                with self.tally.lock:
                    self.tally.connection_errors += 1
                if time.monotonic() > give_up:
                    raise
                self.session = requests.Session()  # never reuse a socket to a dead process
                time.sleep(0.05)
        raise AssertionError("unreachable")


def expect(response: requests.Response, status: int) -> Any:
    if response.status_code != status:
        raise Refused(
            f"{response.request.method} {response.url}: {response.status_code} "
            f"{response.text[:300]}"
        )
    ctype = response.headers.get("Content-Type", "")
    return response.json() if ctype.startswith("application/json") else response


@dataclass
class Setup:
    alice: str  # admin token: opens, works and closes cases
    bob: str  # manager token: approves
    clients: list[dict[str, Any]]


class Journey:
    """One client exit, from trigger to exported evidence pack, for one client."""

    def __init__(self, http: Spread, setup: Setup, client: dict[str, Any], tag: str) -> None:
        self.http, self.setup, self.client, self.tag = http, setup, client, tag
        self.tally = http.tally

    def api(self, method: str, path: str, status: int, *, who: str = "alice", **kw: Any) -> Any:
        token = self.setup.alice if who == "alice" else self.setup.bob
        return expect(self.http.call(method, "/api/v1" + path, token=token, **kw), status)

    def run(self) -> None:
        content = f"%PDF-1.4 fleet evidence {self.tag}\n".encode()
        up = self.api("POST", "/evidence", 201, files={"file": (f"{self.tag}.pdf", content)})
        sha = up["sha256"]
        assert sha == hashlib.sha256(content).hexdigest()
        self.tally.ack("evidence", "", sha256=sha, content=content)

        case = self.api(
            "POST",
            "/cases",
            201,
            json={
                "client_id": self.client["client_id"],
                "contract_ids": [self.client["contract_id"]],
                "trigger": "non_renewal",
                "trigger_date": TODAY,
                "trigger_evidence": [sha],
                "playbook": "fleet-exit",
                "allow_duplicate": True,
            },
        )
        ref = case["ref"]
        self.tally.ack("case", ref, trigger_evidence=sha)

        base = f"/cases/{ref}"
        for key, body in (
            ("confirm_notice", {"evidence": [sha], "note": f"notice {self.tag}"}),
            ("hand_over_report", {"note": f"report {self.tag}"}),
        ):
            self.api("POST", f"{base}/steps/{key}/start", 200)
            self.api("POST", f"{base}/steps/{key}/complete", 200, json=body)
            self.tally.ack("step", ref, key=key, note=body["note"])

        grant = self.api(
            "POST",
            f"{base}/access-grants",
            201,
            json={
                "direction": "provider_in_client",
                "system": "Fleet CRM",
                "principal": f"agent {self.tag}",
                "planned_action": "revoke",
            },
        )
        self.tally.ack("grant", ref, id=grant["id"], principal=f"agent {self.tag}")
        self.api("PATCH", f"{base}/access-grants/{grant['id']}", 200, json={"status": "revoked"})
        self.api(
            "PATCH",
            f"{base}/access-grants/{grant['id']}",
            200,
            json={"verification_level": "attested", "evidence": [sha]},
        )
        self.tally.ack("grant_verified", ref, id=grant["id"])

        (report,) = case["registers"]["deliverables"]
        self.api(
            "PATCH",
            f"{base}/deliverables/{report['id']}",
            200,
            json={"status": "delivered", "evidence": [sha]},
        )
        self.portal_acknowledges(ref, report["id"])
        (invoice,) = case["registers"]["settlements"]
        self.api(
            "PATCH",
            f"{base}/settlements/{invoice['id']}",
            200,
            json={
                "status": "paid",
                "amount": "1200.00",
                "currency": "eur",
                "reference": f"INV-{self.tag}",
                "evidence": [sha],
            },
        )
        self.tally.ack("settlement", ref, id=invoice["id"], reference=f"INV-{self.tag}")

        self.api("POST", f"{base}/closing", 200)
        digest = self.api("GET", base, 200, who="bob")["state_digest"]
        approval = self.api(
            "POST",
            f"{base}/approvals",
            201,
            who="bob",
            json={"decision": "approved", "state_digest": digest, "comment": self.tag},
        )
        self.tally.ack("approval", ref, id=approval["id"], comment=self.tag)
        closed = self.api("POST", f"{base}/close", 200)
        assert closed["state"] == "closed"
        self.tally.ack("closure", ref, contact_id=self.client["contact_id"])

        pack = self.http.call("GET", f"/api/v1{base}/evidence-pack", token=self.setup.alice)
        expect(pack, 200)
        with zipfile.ZipFile(io.BytesIO(pack.content)) as zipped:
            assert zipped.testzip() is None
            names = zipped.namelist()
        self.tally.ack("export", ref, files=len(names))

    def portal_acknowledges(self, ref: str, deliverable_id: int) -> None:
        """The client's contact, through a portal link: the page, the review, the signature."""
        link = self.api(
            "POST",
            f"/cases/{ref}/portal-links",
            201,
            json={"contact_id": self.client["contact_id"], "send_email": False},
        )
        path = "/portal/" + link["url"].split("/portal/", 1)[1].rstrip("/")
        page = expect(self.http.call("GET", f"{path}/"), 200).text
        shown = re.search(r'name="(?:m|manifest_sha256)" value="([0-9a-f]{64})"', page)
        assert shown, "no manifest digest on the portal page"
        review = expect(
            self.http.call("GET", f"{path}/acknowledge/", params={"m": shown[1], "all": "1"}),
            200,
        )
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', review.text)
        assert token, "no CSRF token on the review page"
        # The cookie is Secure (production): sent by hand over this plain-HTTP loopback.
        cookie = f"csrftoken={review.cookies['csrftoken']}"
        signed = self.http.call(
            "POST",
            f"{path}/acknowledge/",
            headers={"Cookie": cookie},
            data={
                "all": "1",
                "typed_name": self.client["contact_name"],
                "confirm": "yes",
                "manifest_sha256": shown[1],
                "csrfmiddlewaretoken": token[1],
            },
        )
        expect(signed, 303)
        self.tally.ack("portal", ref, deliverable_id=deliverable_id)


def drive(
    bases: list[str],
    setup: Setup,
    client: dict[str, Any],
    name: str,
    tally: Tally,
    stop: threading.Event,
) -> None:
    """One client thread: journeys one after the other until `stop`."""
    http = Spread(bases[int(name[-1]) % len(bases) :] + bases[: int(name[-1]) % len(bases)], tally)
    for n in itertools.count():
        if stop.is_set():
            return
        try:
            Journey(http, setup, client, f"{name}-{n}").run()
        except (Refused, requests.RequestException) as exc:
            with tally.lock:
                tally.abandoned.append(f"{name}-{n}: {exc}")
        with tally.lock:
            tally.journeys += 1


def sign_in(base: str, username: str, password: str) -> str:
    """Sign in through the login form; the Cookie header that carries the session (the
    cookies are Secure in production: a client on plain-HTTP loopback sends them by hand)."""
    session = requests.Session()
    form = session.get(f"{base}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, "no CSRF token on the login page"
    csrf = form.cookies["csrftoken"]
    signed = session.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        headers={"Cookie": f"csrftoken={csrf}"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed.status_code == 302, signed.text[:500]
    name = next(c.name for c in signed.cookies if c.name.endswith("sessionid"))
    return f"{name}={signed.cookies[name]}; csrftoken={csrf}"


def read_workspaces(
    bases: list[str], cookie: str, tally: Tally, stop: threading.Event, seen: list[str]
) -> None:
    """A staff member signed in once, reading case workspaces on every web process in turn:
    the session lives in the database, so each process knows it."""
    http = Spread(bases, tally)
    while not stop.is_set():
        with tally.lock:
            refs = [a.ref for a in tally.acks if a.kind == "case"]
        for ref in refs[-3:] or [""]:
            path = f"/cases/{ref}/" if ref else "/cases/"
            try:
                page = http.call("GET", path, headers={"Cookie": cookie})
            except requests.RequestException as exc:
                seen.append(f"{path}: {exc}")
                continue
            seen.append(f"{path}: {page.status_code}")
        time.sleep(0.2)
