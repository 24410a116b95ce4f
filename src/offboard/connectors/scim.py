"""SCIM 2.0 (RFC 7643/7644) connector: any identity provider or application that exposes
`/Users` and `/Groups` with a bearer token.

config: `url` (the SCIM base, e.g. https://idp.example/scim/v2), optional `delete_users`
(false: deactivate only), `timeout` (seconds, default 10), `attempts` (default 4).
secret: the bearer token.

- discover: users whose e-mail or userName is in one of the match's domains, the members of
  the named groups, of groups whose name starts with a role prefix, and explicit ids or
  userNames — each with the groups it belongs to (read on the Group side: servers need not
  keep a user's `groups` attribute).
- plan: per user, remove it from each group (PATCH on the Group: `remove`
  `members[value eq "ID"]`), then `active=false`, then (if `delete_users`) DELETE.
- revoke: each operation reads first and reports `already_absent` when there is nothing to
  do; otherwise it writes and reports `revoked`.
- verify: reads the user (404 or active=false) AND the groups that list it as a member (none):
  both true → absent; either false → present; a failed read → indeterminate.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from offboard.connectors.base import (
    Account,
    AccountKind,
    CheckResult,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    Exchange,
    Match,
    Observation,
    ObservationStatus,
    Operation,
    Outcome,
    OutcomeStatus,
    Phase,
    Plan,
    _now,
    canonical_json,
    sha256_hex,
    sha256_json,
)
from offboard.connectors.http import HttpClient, Response

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PAGE = 100


def _seg(value: str) -> str:
    """An id as one URL path segment: whatever it holds (a space, a slash) stays inside it."""
    return urllib.parse.quote(str(value), safe="")


def _quote(value: str) -> str:
    """A SCIM filter string literal."""
    return json.dumps(value)


class ScimConnector(Connector):
    kind = "scim"
    version = "1.0.0"
    label = "SCIM 2.0"
    config_fields = ("url", "delete_users", "timeout", "attempts")
    required_config = ("url",)

    def __init__(self, config: Mapping[str, Any], secret: str) -> None:
        super().__init__(config, secret)
        if not secret:
            raise ConnectorConfigError("A SCIM connection needs a bearer token.")
        self.http = HttpClient(
            self.config["url"],
            auth_header=f"Bearer {secret}",
            secrets=[secret],
            timeout=float(self.config.get("timeout") or 10),
            attempts=int(self.config.get("attempts") or 4),
            user_agent=f"Offboard-scim/{self.version}",
            content_type="application/scim+json",
        )

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        clean = super().validate_config(config)
        url = str(clean["url"]).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConnectorConfigError("url: a SCIM base URL starts with https:// or http://.")
        clean["url"] = url
        clean["delete_users"] = bool(clean.get("delete_users", False))
        for key, kind in (("timeout", float), ("attempts", int)):
            if clean.get(key) not in (None, ""):
                try:
                    clean[key] = kind(clean[key])
                    if clean[key] <= 0:
                        raise ValueError
                except (TypeError, ValueError):
                    raise ConnectorConfigError(f"{key}: a positive number.") from None
        return clean

    def target(self) -> str:
        return str(self.config["url"])

    def close(self) -> None:
        self.http.close()

    # -- reads -------------------------------------------------------------------------

    def _list(self, resource: str, filter_: str | None = None) -> Iterator[dict[str, Any]]:
        start = 1
        while True:
            query: dict[str, Any] = {"startIndex": start, "count": PAGE}
            if filter_:
                query["filter"] = filter_
            data = self.http.request("GET", f"/{resource}", query=query).json() or {}
            items = data.get("Resources") or []
            yield from items
            total = int(data.get("totalResults") or 0)
            start += len(items)
            if not items or start > total:
                return

    def _groups_of(self, user_id: str) -> tuple[list[dict[str, str]], Response]:
        """The groups listing `user_id` as a member, and the response of the read."""
        response = self.http.request(
            "GET",
            "/Groups",
            query={"filter": f"members.value eq {_quote(user_id)}", "count": 1000},
        )
        groups = [
            {"id": str(g["id"]), "display": str(g.get("displayName") or "")}
            for g in (response.json() or {}).get("Resources") or []
            # Some servers ignore filters on members: check the member list itself.
            if "members" not in g or any(m.get("value") == user_id for m in g["members"] or ())
        ]
        return groups, response

    def _account(self, user: Mapping[str, Any], groups: list[dict[str, str]]) -> Account:
        emails = [str(e.get("value")) for e in user.get("emails") or () if e.get("value")]
        return Account(
            external_id=str(user["id"]),
            login=str(user.get("userName") or (emails[0] if emails else "")),
            display_name=str(user.get("displayName") or ""),
            kind=AccountKind.USER,
            details={
                "emails": emails,
                "active": user.get("active", True) is not False,
                "groups": groups,
            },
        )

    # -- the contract ------------------------------------------------------------------

    def check(self) -> CheckResult:
        data = self.http.request("GET", "/Users", query={"count": 1}).json() or {}
        total = data.get("totalResults")
        return CheckResult(
            detail=f"SCIM 2.0 at {self.target()} answered; {total} user(s).",
            target=self.target(),
        )

    def discover(self, match: Match) -> list[Account]:
        users: dict[str, dict[str, Any]] = {}
        for domain in match.email_domains:
            suffix = _quote("@" + domain.lstrip("@"))
            for flt in (f"emails.value ew {suffix}", f"userName ew {suffix}"):
                for user in self._list("Users", flt):
                    if any(
                        match.matches_email(str(v))
                        for v in [user.get("userName", "")]
                        + [e.get("value", "") for e in user.get("emails") or ()]
                    ):
                        users[str(user["id"])] = user
        member_ids: set[str] = set()
        group_filters = [f"displayName eq {_quote(g)}" for g in match.groups]
        group_filters += [f"displayName sw {_quote(p)}" for p in match.role_prefixes]
        for flt in group_filters:
            for group in self._list("Groups", flt):
                member_ids.update(str(m["value"]) for m in group.get("members") or ())
        for ident in match.ids:
            member_ids.add(ident)
        for ident in sorted(member_ids - set(users)):
            response = self.http.request("GET", f"/Users/{_seg(ident)}", accept=(404,))
            if response.status == 200:
                user = response.json()
                users[str(user["id"])] = user
                continue
            for user in self._list("Users", f"userName eq {_quote(ident)}"):
                users[str(user["id"])] = user
        accounts = []
        for user_id, user in sorted(users.items(), key=lambda kv: str(kv[1].get("userName"))):
            groups, _ = self._groups_of(user_id)
            accounts.append(self._account(user, groups))
        return accounts

    def plan(self, accounts: Sequence[Account]) -> Plan:
        """Reads each user's current groups (the accounts may be stale)."""
        ops: list[Operation] = []
        for account in accounts:
            uid = account.external_id
            groups, _ = self._groups_of(uid)
            for group in groups:
                ops.append(
                    Operation(
                        action="remove_member",
                        target_id=group["id"],
                        description=(
                            f"Remove {account.login or uid} from group "
                            f"{group['display'] or group['id']}"
                        ),
                        order=Phase.REMOVE_MEMBERSHIP,
                        account_id=uid,
                        details={"group": group["display"]},
                    )
                )
            ops.append(
                Operation(
                    action="deactivate",
                    target_id=uid,
                    description=f"Deactivate user {account.login or uid} (active=false)",
                    order=Phase.DISABLE,
                    account_id=uid,
                )
            )
            if self.config.get("delete_users"):
                ops.append(
                    Operation(
                        action="delete",
                        target_id=uid,
                        description=f"Delete user {account.login or uid}",
                        order=Phase.DELETE,
                        account_id=uid,
                    )
                )
        return Plan.of(self.kind, ops, accounts)

    def revoke(self, plan: Plan, idempotency_key: str) -> list[Outcome]:
        # SCIM has no idempotency header; each operation is made idempotent by reading first.
        outcomes = []
        for op in plan.operations:
            started = _now()
            try:
                outcomes.append(self._run(op, started))
            except ConnectorError as exc:
                outcomes.append(
                    Outcome(
                        operation=op,
                        status=OutcomeStatus.FAILED,
                        detail=exc.message,
                        request_id=exc.request_id,
                        started_at=started,
                        ended_at=_now(),
                    )
                )
        return outcomes

    def _run(self, op: Operation, started: Any) -> Outcome:
        done = OutcomeStatus.REVOKED
        absent = OutcomeStatus.ALREADY_ABSENT
        if op.action == "remove_member":
            read = self.http.request("GET", f"/Groups/{_seg(op.target_id)}", accept=(404,))
            if read.status == 404:
                return Outcome.from_exchange(
                    op, absent, "The group no longer exists.", read.exchange, started_at=started
                )
            members = (read.json() or {}).get("members") or ()
            if not any(m.get("value") == op.account_id for m in members):
                return Outcome.from_exchange(
                    op, absent, "Not a member of the group.", read.exchange, started_at=started
                )
            body = {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "remove", "path": f"members[value eq {_quote(op.account_id)}]"}
                ],
            }
            write = self.http.request("PATCH", f"/Groups/{_seg(op.target_id)}", body=body)
            return Outcome.from_exchange(
                op, done, "Removed from the group.", write.exchange, started_at=started
            )
        if op.action in ("deactivate", "delete"):
            read = self.http.request("GET", f"/Users/{_seg(op.target_id)}", accept=(404,))
            if read.status == 404:
                return Outcome.from_exchange(
                    op, absent, "The user does not exist.", read.exchange, started_at=started
                )
            if op.action == "deactivate":
                if (read.json() or {}).get("active") is False:
                    return Outcome.from_exchange(
                        op, absent, "Already inactive.", read.exchange, started_at=started
                    )
                body = {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "active", "value": False}],
                }
                write = self.http.request("PATCH", f"/Users/{_seg(op.target_id)}", body=body)
                return Outcome.from_exchange(
                    op, done, "Deactivated (active=false).", write.exchange, started_at=started
                )
            write = self.http.request("DELETE", f"/Users/{_seg(op.target_id)}", accept=(404,))
            status = absent if write.status == 404 else done
            return Outcome.from_exchange(op, status, "Deleted.", write.exchange, started_at=started)
        return Outcome(
            operation=op,
            status=OutcomeStatus.NEEDS_MANUAL,
            detail=f"The SCIM connector does not know the action {op.action!r}.",
            started_at=started,
            ended_at=_now(),
        )

    def verify(self, account: Account) -> Observation:
        started = _now()
        uid = account.external_id
        reads: list[tuple[str, Exchange]] = []
        try:
            user = self.http.request("GET", f"/Users/{_seg(uid)}", accept=(404,))
            reads.append(("user", user.exchange))
            groups, group_read = self._groups_of(uid)
            reads.append(("groups", group_read.exchange))
        except ConnectorError as exc:
            raw = self._document(reads, error=exc.message)
            return Observation(
                account=account,
                status=ObservationStatus.INDETERMINATE,
                detail=f"The read failed: {exc.message}",
                raw=raw,
                request_id=exc.request_id,
                request_sha256=sha256_json([e.request_sha256 for _, e in reads]),
                response_sha256=sha256_hex(raw),
                started_at=started,
                ended_at=_now(),
            )
        if user.status == 404:
            user_state, user_gone = "the user does not exist (404)", True
        elif (user.json() or {}).get("active") is False:
            user_state, user_gone = "the user is inactive (active=false)", True
        else:
            user_state, user_gone = "the user is active", False
        in_groups = ", ".join(g["display"] or g["id"] for g in groups)
        group_state = f"member of {in_groups}" if groups else "in no group"
        status = ObservationStatus.ABSENT if user_gone and not groups else ObservationStatus.PRESENT
        raw = self._document(reads)
        return Observation(
            account=account,
            status=status,
            detail=f"{user_state[0].upper()}{user_state[1:]}; {group_state}.",
            raw=raw,
            request_id=user.exchange.request_id or group_read.exchange.request_id,
            request_sha256=sha256_json([e.request_sha256 for _, e in reads]),
            response_sha256=sha256_hex(raw),
            started_at=started,
            ended_at=_now(),
        )

    def _document(self, reads: list[tuple[str, Exchange]], *, error: str = "") -> bytes:
        """The verify reads as one JSON document: each response as received (scrubbed)."""
        doc: dict[str, Any] = {"connector": self.kind, "version": self.version, "reads": []}
        for name, ex in reads:
            text = ex.response.decode(errors="replace")
            try:
                body: Any = json.loads(text) if text else None
            except ValueError:
                body = text
            doc["reads"].append(
                {
                    "read": name,
                    "status": ex.status,
                    "request_id": ex.request_id,
                    "request_sha256": ex.request_sha256,
                    "response_sha256": ex.response_sha256,
                    "body": body,
                }
            )
        if error:
            doc["error"] = error
        return self.scrub(canonical_json(doc))
