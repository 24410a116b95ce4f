"""AWS IAM connector (boto3): the IAM users of one AWS account as a revocation target.

config: `access_key_id` (required; the secret access key is the connection's secret),
`region` (us-east-1: IAM is global, the region only picks the partition and signing region),
`endpoint_url` (optional: moto, an IAM-compatible endpoint), `user_path_prefix` (optional
scope: users outside it are never discovered, and `plan()` refuses them), `delete_users`
(default true), `timeout` (seconds, 10), `attempts` (4).

- discover: users (in scope) whose UserName or UserId is one of the ids, whose name starts
  with a role prefix, who are members of a named group, or whose `email` tag (or an
  e-mail-shaped UserName) is in one of the domains. `Account.external_id` is the UserId —
  IAM's stable id: a user deleted and re-created under the same name gets a new one —
  `login` the UserName every call takes.
- plan: per user, from a fresh read: delete access keys, the login profile (console
  password), deactivate MFA devices and delete the virtual ones, delete signing certificates
  and SSH public keys (phase 30, credentials); detach managed policies, delete inline
  policies, remove from groups (phase 40: IAM has no "disabled" user — a user with no
  credential and no permission is the nearest thing); then delete the user (phase 50, when
  `delete_users`). The connection's own user (the one holding `access_key_id`) goes last
  (phase 90): its other credentials, then its policies and groups marked for a person, then
  the connection's own key.
- revoke: every operation first reads the user (by name; a different UserId now under that
  name is never touched) and the item, and writes only if it is still there; nothing to do
  is `already_absent`.
- verify: GetUser → NoSuchEntity is `absent`. A user that still exists is `present` when
  `delete_users` is on (only the deletion counts: resource policies may still name its ARN,
  STS sessions it opened live until they expire); with `delete_users` off it is `absent`
  when it has no active access key, signing certificate or SSH key, no login profile, no
  group, no attached or inline policy. Any failed read is `indeterminate`.

Retries: botocore's own are turned off (`total_max_attempts: 1`) because its "standard"
mode does not match the contract — it also retries HTTP 400 `RequestTimeout`,
`PriorRequestNotComplete`, `TransactionInProgressException` and `LimitExceededException`,
ignores `Retry-After`, and sleeps a random 0–20 s. This module retries network errors and
timeouts, HTTP 429 and 5xx, and the throttling codes IAM sends with HTTP 400 (`Throttling`,
…), with backoff 0.25 s · 2ⁿ (capped at 8 s) or the server's `Retry-After` (capped at 30 s);
no other 4xx is retried. InvalidClientTokenId, SignatureDoesNotMatch, AccessDenied,
UnrecognizedClient (and the like) raise `CredentialsRefused`.

Each call is recorded as it went over the wire (botocore's `before-send` / `before-parse`
events): the request hash is of method, URL and the form-encoded body (no header, so no
signature), the response is the XML IAM sent (scrubbed), the request id IAM's RequestId.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import re
import time
import urllib.parse
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
from botocore.config import Config
from botocore.parsers import ResponseParserError

from offboard.connectors.base import (
    Account,
    AccountKind,
    CheckResult,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    CredentialsRefused,
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
    canonical_request_sha256,
    sha256_hex,
    sha256_json,
)

# Error codes that mean the credentials are refused (or not allowed), with what to say.
REFUSED = "AWS refused the connection's credentials"
NOT_ALLOWED = "the connection's credentials are valid but not allowed to make this call"
CREDENTIAL_CODES: dict[str, str] = {
    "InvalidClientTokenId": f"{REFUSED}: the access key id is not known (deleted? another account?)",
    "UnrecognizedClient": f"{REFUSED}: the access key id is not recognised",
    "InvalidAccessKeyId": f"{REFUSED}: the access key id is not known",
    "SignatureDoesNotMatch": f"{REFUSED}: the secret access key does not match the access key id",
    "IncompleteSignature": f"{REFUSED}: the request signature is incomplete",
    "MissingAuthenticationToken": f"{REFUSED}: the request carried no usable credentials",
    "ExpiredToken": f"{REFUSED}: they have expired",
    "ExpiredTokenException": f"{REFUSED}: they have expired",
    "AuthFailure": f"{REFUSED}: AWS could not validate them",
    "AccessDenied": NOT_ALLOWED,
    "AccessDeniedException": NOT_ALLOWED,
}
# Throttling as IAM and STS send it (HTTP 400, or 429).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
NETWORK_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)
TIMEOUTS = (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError)

ACCESS_KEY_ID = re.compile(r"\w{16,128}")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
USER_NAME = re.compile(r"[\w+=,.@-]{1,64}")
TRUE, FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


@dataclasses.dataclass
class _Reply:
    """One IAM call as recorded: the operation, the canonical request, IAM's answer (raw XML,
    scrubbed; and parsed), its status, request id and error code, and — when an earlier
    attempt of the same call failed on the network — what happened to it."""

    operation: str
    params: dict[str, Any]
    request: dict[str, Any]
    status: int | None
    request_id: str
    body: bytes
    data: dict[str, Any]
    error_code: str = ""
    error_message: str = ""
    earlier_attempt: str = ""
    started_at: dt.datetime = dataclasses.field(default_factory=_now)
    ended_at: dt.datetime = dataclasses.field(default_factory=_now)

    @property
    def missing(self) -> bool:
        return self.error_code == "NoSuchEntity"

    @property
    def request_sha256(self) -> str:
        return canonical_request_sha256(
            self.request.get("method", ""), self.request.get("url", ""), self.request.get("body")
        )

    def exchange(self, started_at: dt.datetime | None = None) -> Exchange:
        return Exchange(
            request_sha256=self.request_sha256,
            response_sha256=sha256_hex(self.body),
            request_id=self.request_id,
            response=self.body,
            status=self.status,
            started_at=started_at or self.started_at,
            ended_at=self.ended_at,
        )


@dataclasses.dataclass
class _State:
    """What a user holds, as read now."""

    user: dict[str, Any]
    access_keys: list[dict[str, Any]]
    login_profile: bool
    mfa_devices: list[str]
    signing_certificates: list[dict[str, Any]]
    ssh_public_keys: list[dict[str, Any]]
    attached_policies: list[dict[str, Any]]
    inline_policies: list[str]
    groups: list[str]

    def left(self) -> list[str]:
        """What still gives access, in words (empty: nothing)."""
        out: list[str] = []
        active = [k["AccessKeyId"] for k in self.access_keys if k.get("Status") == "Active"]
        if active:
            out.append(f"{len(active)} active access key(s) ({', '.join(active)})")
        if self.login_profile:
            out.append("a console password (login profile)")
        certs = [c for c in self.signing_certificates if c.get("Status") == "Active"]
        if certs:
            out.append(f"{len(certs)} active signing certificate(s)")
        ssh = [k for k in self.ssh_public_keys if k.get("Status") == "Active"]
        if ssh:
            out.append(f"{len(ssh)} active SSH public key(s)")
        if self.attached_policies:
            names = ", ".join(p["PolicyName"] for p in self.attached_policies)
            out.append(f"attached policies {names}")
        if self.inline_policies:
            out.append(f"inline policies {', '.join(self.inline_policies)}")
        if self.groups:
            out.append(f"member of {', '.join(self.groups)}")
        return out


def _flag(name: str, value: Any, default: bool) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConnectorConfigError(f"{name}: true or false.")


class AwsIamConnector(Connector):
    kind = "aws_iam"
    version = "1.0.0"
    label = "AWS IAM"
    config_fields = (
        "access_key_id",
        "region",
        "endpoint_url",
        "user_path_prefix",
        "delete_users",
        "timeout",
        "attempts",
    )
    required_config = ("access_key_id",)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        clean = super().validate_config(config)
        key_id = str(clean["access_key_id"]).strip()
        if not ACCESS_KEY_ID.fullmatch(key_id):
            raise ConnectorConfigError(
                "access_key_id: an AWS access key id (AKIA…, 16 to 128 letters and digits); "
                "the secret access key is the connection's secret, not config."
            )
        clean["access_key_id"] = key_id
        region = str(clean.get("region") or "us-east-1").strip()
        if not REGION.fullmatch(region):
            raise ConnectorConfigError(f"region: an AWS region such as us-east-1, not {region!r}.")
        clean["region"] = region
        if clean.get("endpoint_url") not in (None, ""):
            url = str(clean["endpoint_url"]).strip().rstrip("/")
            parsed = urllib.parse.urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConnectorConfigError(
                    "endpoint_url: a URL that starts with https:// or http://."
                )
            clean["endpoint_url"] = url
        else:
            clean.pop("endpoint_url", None)
        if clean.get("user_path_prefix") not in (None, ""):
            prefix = str(clean["user_path_prefix"]).strip()
            if (
                not prefix.startswith("/")
                or len(prefix) > 512
                or any(not 0x21 <= ord(c) <= 0x7E for c in prefix)
            ):
                raise ConnectorConfigError(
                    "user_path_prefix: an IAM path such as /contractors/ (starts with /)."
                )
            clean["user_path_prefix"] = prefix
        else:
            clean.pop("user_path_prefix", None)
        clean["delete_users"] = _flag("delete_users", clean.get("delete_users"), True)
        for key, kind in (("timeout", float), ("attempts", int)):
            if clean.get(key) not in (None, ""):
                try:
                    clean[key] = kind(clean[key])
                    if clean[key] <= 0:
                        raise ValueError
                except (TypeError, ValueError):
                    raise ConnectorConfigError(f"{key}: a positive number.") from None
        return clean

    def __init__(self, config: Mapping[str, Any], secret: str) -> None:
        super().__init__(config, secret)
        if not secret:
            raise ConnectorConfigError("An AWS IAM connection needs the secret access key.")
        c = self.config
        self.access_key_id = str(c["access_key_id"])
        self.region = str(c["region"])
        self.path_prefix = str(c.get("user_path_prefix") or "")
        self.delete_users = bool(c["delete_users"])
        self.timeout = float(c.get("timeout") or 10)
        self.attempts = max(1, int(c.get("attempts") or 4))
        self.backoff, self.max_delay, self.max_retry_after = 0.25, 8.0, 30.0
        self.sleep: Callable[[float], None] = time.sleep
        session = boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=secret,
            region_name=self.region,
            # Built from the connection alone: no AWS_PROFILE (a missing one would fail).
            botocore_session=botocore.session.Session(session_vars={"profile": (None,) * 4}),
        )
        self.iam = session.client(
            "iam",
            endpoint_url=c.get("endpoint_url"),
            config=Config(
                connect_timeout=self.timeout,
                read_timeout=self.timeout,
                retries={"mode": "standard", "total_max_attempts": 1},  # we retry (see above)
                user_agent_extra=f"Offboard-aws_iam/{self.version}",
                ignore_configured_endpoint_urls=True,  # never AWS_ENDPOINT_URL from the env
            ),
        )
        self._wire: dict[str, Any] = {}
        self.iam.meta.events.register("before-send.iam", self._on_send)
        self.iam.meta.events.register("before-parse.iam", self._on_response)

    def target(self) -> str:
        return str(self.config.get("endpoint_url") or self.iam.meta.endpoint_url)

    def close(self) -> None:
        self.iam.close()

    # --- the wire -----------------------------------------------------------------------

    def _on_send(self, request: Any, **_: Any) -> None:
        body = request.body or b""
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        self._wire["request"] = {
            "method": str(request.method),
            "url": str(request.url),
            "body": dict(urllib.parse.parse_qsl(text, keep_blank_values=True)),
        }

    def _on_response(self, response_dict: Mapping[str, Any], **_: Any) -> None:
        self._wire["response"] = response_dict

    def _safe(self, text: str) -> str:
        return self.scrub(text).decode(errors="replace")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            seconds: float | None = None
            try:
                seconds = float(retry_after)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=dt.UTC)
                    seconds = (when - _now()).total_seconds()
                except (TypeError, ValueError):
                    seconds = None
            if seconds is not None:
                return min(max(seconds, 0.0), self.max_retry_after)
        return min(self.backoff * (2**attempt), self.max_delay)

    def _reply(
        self, operation: str, params: dict[str, Any], data: Mapping[str, Any], started: Any
    ) -> _Reply:
        wire = self._wire.get("response") or {}
        meta = data.get("ResponseMetadata") or {}
        headers = {str(k).lower(): str(v) for k, v in (wire.get("headers") or {}).items()}
        error = data.get("Error") or {}
        return _Reply(
            operation=operation,
            params=params,
            request=self._wire.get("request")
            or {"method": "POST", "url": self.target(), "body": {"Action": operation, **params}},
            status=wire.get("status_code") or meta.get("HTTPStatusCode"),
            request_id=self._safe(
                str(meta.get("RequestId") or headers.get("x-amzn-requestid") or "")
            ),
            body=self.scrub(bytes(wire.get("body") or b"")),
            data={k: v for k, v in data.items() if k != "ResponseMetadata"},
            error_code=str(error.get("Code") or ""),
            error_message=self._safe(str(error.get("Message") or "")),
            started_at=started,
            ended_at=_now(),
        )

    def _call(self, method: str, *, accept: Collection[str] = (), **params: Any) -> _Reply:
        """One IAM call (`method` is boto3's name, e.g. "list_users"), retried per the
        contract. Returns a success, or an error whose code is in `accept` (NoSuchEntity for
        a read that expects it); raises CredentialsRefused / ConnectorError otherwise."""
        operation = self.iam.meta.method_to_api_mapping.get(method, method)
        where = f"IAM {operation}"
        started = _now()
        last_error, earlier = "", ""
        request_id = ""
        for attempt in range(self.attempts):
            self._wire.clear()
            retry_after: str | None = None
            try:
                data = getattr(self.iam, method)(**params)
            except botocore.exceptions.ClientError as exc:
                reply = self._reply(operation, params, exc.response, started)
                reply.earlier_attempt = earlier
                request_id = reply.request_id
                code, status = reply.error_code, reply.status or 0
                if code in accept:
                    return reply
                detail = f"{code or status}: {reply.error_message}".rstrip(": ")
                if status == 429 or status >= 500 or code in THROTTLING_CODES:
                    headers = (self._wire.get("response") or {}).get("headers") or {}
                    retry_after = {str(k).lower(): v for k, v in headers.items()}.get("retry-after")
                    last_error = f"{where}: AWS answered {status} ({detail})"
                elif code in CREDENTIAL_CODES:
                    raise CredentialsRefused(
                        f"{where}: {CREDENTIAL_CODES[code]} (access key {self.access_key_id}; "
                        f"{detail}).",
                        status=status,
                        request_id=request_id,
                    ) from None
                else:
                    raise ConnectorError(
                        f"{where}: AWS answered {status} ({detail}).",
                        status=status,
                        request_id=request_id,
                    ) from None
            except NETWORK_ERRORS as exc:
                kind = "timed out" if isinstance(exc, TIMEOUTS) else "network error"
                last_error = f"{where}: {kind} ({type(exc).__name__}: {self._safe(str(exc))})"
                earlier = earlier or kind
            except ResponseParserError:
                wire = self._wire.get("response") or {}
                status = int(wire.get("status_code") or 0)
                request_id = self._safe(
                    str((wire.get("headers") or {}).get("x-amzn-requestid") or "")
                )
                if status == 429 or status >= 500:
                    headers = {str(k).lower(): v for k, v in (wire.get("headers") or {}).items()}
                    retry_after = headers.get("retry-after")
                    last_error = f"{where}: AWS answered {status} (a body that is not IAM's XML)"
                else:
                    raise ConnectorError(
                        f"{where}: AWS answered {status} with a body that is not IAM's XML.",
                        status=status or None,
                        request_id=request_id,
                    ) from None
            except botocore.exceptions.BotoCoreError as exc:
                raise ConnectorError(f"{where}: {self._safe(str(exc))}") from None
            else:
                reply = self._reply(operation, params, data, started)
                reply.earlier_attempt = earlier
                return reply
            if attempt + 1 < self.attempts:
                self.sleep(self._delay(attempt, retry_after))
        raise ConnectorError(
            f"{last_error} — gave up after {self.attempts} attempt(s).",
            retryable=True,
            request_id=request_id,
        )

    def _pages(
        self, method: str, key: str, *, accept: Collection[str] = (), **params: Any
    ) -> tuple[list[dict[str, Any]], list[_Reply]]:
        """Every item of a paginated listing (IsTruncated/Marker), and the replies; an error
        in `accept` ends the listing (the last reply carries it)."""
        items: list[Any] = []
        replies: list[_Reply] = []
        marker = ""
        while True:
            reply = self._call(
                method, accept=accept, **params, **({"Marker": marker} if marker else {})
            )
            replies.append(reply)
            if reply.error_code:
                return items, replies
            items.extend(reply.data.get(key) or ())
            marker = str(reply.data.get("Marker") or "")
            if not reply.data.get("IsTruncated") or not marker:
                return items, replies

    # --- reads --------------------------------------------------------------------------

    def _in_scope(self, user: Mapping[str, Any]) -> bool:
        return not self.path_prefix or str(user.get("Path") or "/").startswith(self.path_prefix)

    def _users(self) -> list[dict[str, Any]]:
        scope = {"PathPrefix": self.path_prefix} if self.path_prefix else {}
        users, _ = self._pages("list_users", "Users", **scope)
        return [u for u in users if self._in_scope(u)]

    def _email(self, user_name: str, cache: dict[str, str]) -> str:
        """The user's `email` tag (key compared without case), or ""."""
        if user_name not in cache:
            tags, _ = self._pages("list_user_tags", "Tags", UserName=user_name)
            cache[user_name] = next(
                (str(t.get("Value") or "") for t in tags if str(t.get("Key")).lower() == "email"),
                "",
            )
        return cache[user_name]

    def _account(self, user: Mapping[str, Any], email: str) -> Account:
        groups, _ = self._pages("list_groups_for_user", "Groups", UserName=user["UserName"])
        return Account(
            external_id=str(user["UserId"]),
            login=str(user["UserName"]),
            display_name=email or str(user["UserName"]),
            kind=AccountKind.USER,
            details={
                "user_name": str(user["UserName"]),
                "user_id": str(user["UserId"]),
                "arn": str(user.get("Arn") or ""),
                "path": str(user.get("Path") or "/"),
                "email": email,
                "groups": sorted(str(g["GroupName"]) for g in groups),
            },
        )

    def _read_state(self, name: str, reads: list[_Reply]) -> _State | None:
        """The user named `name` and everything it holds; None when there is no such user.
        Each reply is appended to `reads` as it comes (a failure leaves the ones before)."""
        user = self._call("get_user", UserName=name, accept=("NoSuchEntity",))
        reads.append(user)
        if user.missing:
            return None

        def pages(method: str, key: str) -> list[Any]:
            items, replies = self._pages(method, key, UserName=name)
            reads.extend(replies)
            return items

        keys = pages("list_access_keys", "AccessKeyMetadata")
        profile = self._call("get_login_profile", UserName=name, accept=("NoSuchEntity",))
        reads.append(profile)
        state = _State(
            user=dict(user.data["User"]),
            access_keys=keys,
            login_profile=not profile.missing,
            mfa_devices=[str(d["SerialNumber"]) for d in pages("list_mfa_devices", "MFADevices")],
            signing_certificates=pages("list_signing_certificates", "Certificates"),
            ssh_public_keys=pages("list_ssh_public_keys", "SSHPublicKeys"),
            attached_policies=pages("list_attached_user_policies", "AttachedPolicies"),
            inline_policies=[str(p) for p in pages("list_user_policies", "PolicyNames")],
            groups=sorted(str(g["GroupName"]) for g in pages("list_groups_for_user", "Groups")),
        )
        return state

    # --- the contract -------------------------------------------------------------------

    def check(self) -> CheckResult:
        scope = {"PathPrefix": self.path_prefix} if self.path_prefix else {}
        listed = self._call("list_users", MaxItems=1, **scope)
        me = self._call(
            "get_user", accept=("AccessDenied", "ValidationError", "NoSuchEntity")
        )  # who we are, when the credentials are a user's and may read it
        who = (
            f"signed in as {me.data['User'].get('Arn')}"
            if not me.error_code and me.data.get("User")
            else f"signed in with access key {self.access_key_id}"
        )
        some = "users" if listed.data.get("Users") else "no user yet"
        where = f" under {self.path_prefix}" if self.path_prefix else ""
        return CheckResult(
            detail=f"AWS IAM at {self.target()} answered; {who}; ListUsers{where} allowed "
            f"({some}).",
            target=self.target(),
        )

    def discover(self, match: Match) -> list[Account]:
        if match.is_empty():
            return []
        found: dict[str, dict[str, Any]] = {}
        listed: list[dict[str, Any]] = []
        emails: dict[str, str] = {}

        def every_user() -> list[dict[str, Any]]:
            if not listed:
                listed.extend(self._users())
            return listed

        for ident in match.ids:
            user: dict[str, Any] | None = None
            if USER_NAME.fullmatch(ident):
                reply = self._call(
                    "get_user", UserName=ident, accept=("NoSuchEntity", "ValidationError")
                )
                if not reply.error_code:
                    user = dict(reply.data["User"])
            if user is None:
                for u in every_user():
                    if u["UserId"] == ident or (
                        "@" in ident and self._email(u["UserName"], emails).lower() == ident.lower()
                    ):
                        user = u
                        break
            if user is not None and self._in_scope(user):
                found[user["UserName"]] = user
        for prefix in (p for p in match.role_prefixes if p):
            for u in every_user():
                if u["UserName"].startswith(prefix):
                    found[u["UserName"]] = u
        for group in match.groups:
            members, _ = self._pages(
                "get_group", "Users", GroupName=group, accept=("NoSuchEntity",)
            )
            for u in members:
                if self._in_scope(u):
                    found[u["UserName"]] = u
        if match.email_domains:
            for u in every_user():
                if match.matches_email(u["UserName"]) or match.matches_email(
                    self._email(u["UserName"], emails)
                ):
                    found[u["UserName"]] = u
        return [self._account(u, self._email(name, emails)) for name, u in sorted(found.items())]

    def plan(self, accounts: Sequence[Account]) -> Plan:
        """A fresh read of each user (what discovery saw is merged in, so anything removed
        since is planned and reported `already_absent`)."""
        users = [a for a in accounts if a.kind == AccountKind.USER]
        operations: list[Operation] = []
        for account in users:
            uid = account.external_id
            name = account.login or str(account.details.get("user_name") or uid)
            state = self._read_state(name, [])
            if state is not None and state.user.get("UserId") != uid:
                state = None  # another user now has the name: nothing of it is planned
            if state is not None and not self._in_scope(state.user):
                raise ConnectorConfigError(
                    f"The user {name} (path {state.user.get('Path')}) is outside this "
                    f"connection's user_path_prefix {self.path_prefix}."
                )
            own_key = state is not None and self.access_key_id in {
                k["AccessKeyId"] for k in state.access_keys
            }
            shift = Phase.OWN_ACCESS - Phase.REVOKE_CREDENTIAL if own_key else 0

            def op(
                action: str,
                target: str,
                order: int,
                description: str,
                name: str = name,
                uid: str = uid,
                shift: int = shift,
                **details: Any,
            ) -> None:
                operations.append(
                    Operation(
                        action=action,
                        target_id=target,
                        description=description,
                        order=order + shift,
                        account_id=uid,
                        details={"user_name": name, **details},
                    )
                )

            s = state
            cred = Phase.REVOKE_CREDENTIAL
            for key in s.access_keys if s else ():
                if key["AccessKeyId"] != self.access_key_id:
                    op(
                        "delete_access_key",
                        key["AccessKeyId"],
                        cred,
                        f"Delete access key {key['AccessKeyId']} ({key.get('Status')}) of {name}",
                    )
            if s and s.login_profile:
                op("delete_login_profile", name, cred + 1, f"Delete the console password of {name}")
            for serial in s.mfa_devices if s else ():
                op("deactivate_mfa_device", serial, cred + 2, f"Deactivate MFA {serial} of {name}")
                if ":mfa/" in serial:
                    op(
                        "delete_virtual_mfa_device",
                        serial,
                        cred + 3,
                        f"Delete the virtual MFA device {serial}",
                    )
            for cert in s.signing_certificates if s else ():
                op(
                    "delete_signing_certificate",
                    cert["CertificateId"],
                    cred + 4,
                    f"Delete signing certificate {cert['CertificateId']} of {name}",
                )
            for key in s.ssh_public_keys if s else ():
                op(
                    "delete_ssh_public_key",
                    key["SSHPublicKeyId"],
                    cred + 5,
                    f"Delete SSH public key {key['SSHPublicKeyId']} of {name}",
                )
            strip = Phase.DISABLE
            policies = sorted({p["PolicyArn"] for p in s.attached_policies} if s else set())
            inline = sorted(s.inline_policies if s else ())
            groups = sorted(set(account.details.get("groups") or ()) | set(s.groups if s else ()))
            if own_key:
                left = [f"policy {p}" for p in policies + inline] + [f"group {g}" for g in groups]
                op(
                    "own_user",
                    name,
                    Phase.REVOKE_CREDENTIAL + 8,
                    f"{name} holds this connection's own access key: detach its policies, "
                    f"remove it from its groups and delete it by hand"
                    + (f" ({', '.join(left)})" if left else ""),
                )
                op(
                    "delete_access_key",
                    self.access_key_id,
                    Phase.REVOKE_CREDENTIAL + 9,
                    f"Delete access key {self.access_key_id} of {name} — this connection's "
                    "own key, last: the connection stops working after it",
                )
                continue
            for arn in policies:
                op("detach_user_policy", arn, strip, f"Detach managed policy {arn} from {name}")
            for policy in inline:
                op(
                    "delete_user_policy",
                    policy,
                    strip + 1,
                    f"Delete inline policy {policy} of {name}",
                )
            for group in groups:
                op("remove_user_from_group", group, strip + 2, f"Remove {name} from group {group}")
            if self.delete_users:
                op("delete_user", name, Phase.DELETE, f"Delete the IAM user {name}")
        return Plan.of(self.kind, operations, users)

    def revoke(self, plan: Plan, idempotency_key: str) -> list[Outcome]:
        """IAM takes no idempotency token: each operation reads first and writes only what
        is still there, so a repeat is `already_absent`."""
        actions: dict[str, Callable[[Operation, dt.datetime], Outcome]] = {
            "delete_access_key": self._delete_access_key,
            "delete_login_profile": self._delete_login_profile,
            "deactivate_mfa_device": self._deactivate_mfa_device,
            "delete_virtual_mfa_device": self._delete_virtual_mfa_device,
            "delete_signing_certificate": self._delete_signing_certificate,
            "delete_ssh_public_key": self._delete_ssh_public_key,
            "detach_user_policy": self._detach_user_policy,
            "delete_user_policy": self._delete_user_policy,
            "remove_user_from_group": self._remove_user_from_group,
            "delete_user": self._delete_user,
        }
        outcomes: list[Outcome] = []
        for op in plan.operations:
            started = _now()
            action = actions.get(op.action)
            if action is None:
                detail = (
                    op.description
                    if op.action == "own_user"
                    else f"The AWS IAM connector does not know the action {op.action!r}."
                )
                outcomes.append(
                    Outcome.from_exchange(
                        op, OutcomeStatus.NEEDS_MANUAL, detail, None, started_at=started
                    )
                )
                continue
            try:
                outcomes.append(action(op, started))
            except ConnectorError as exc:
                detail = self._safe(exc.message)
                if exc.retryable:
                    detail += " Not confirmed: revoke again (it reads first) and verify."
                outcomes.append(
                    Outcome(
                        operation=op,
                        status=OutcomeStatus.FAILED,
                        detail=detail,
                        request_id=exc.request_id,
                        started_at=started,
                        ended_at=_now(),
                    )
                )
        return outcomes

    # --- the operations (each reads, then writes only what is still there) ---------------

    def _outcome(
        self, op: Operation, status: OutcomeStatus, detail: str, reply: _Reply, started: Any
    ) -> Outcome:
        return Outcome.from_exchange(
            op, status, self._safe(detail), reply.exchange(started), started_at=started
        )

    def _guard(self, op: Operation, started: Any) -> Outcome | None:
        """The user still exists and is the same user (UserId); else the outcome."""
        name = str(op.details.get("user_name") or "")
        read = self._call("get_user", UserName=name, accept=("NoSuchEntity",))
        if read.missing:
            return self._outcome(
                op,
                OutcomeStatus.ALREADY_ABSENT,
                f"The user {name} no longer exists.",
                read,
                started,
            )
        if op.account_id and read.data["User"].get("UserId") != op.account_id:
            return self._outcome(
                op,
                OutcomeStatus.NEEDS_MANUAL,
                f"The name {name} now belongs to another user "
                f"({read.data['User'].get('UserId')}): not touched.",
                read,
                started,
            )
        return None

    def _absent(self, op: Operation, detail: str, read: _Reply, started: Any) -> Outcome:
        return self._outcome(op, OutcomeStatus.ALREADY_ABSENT, detail, read, started)

    def _write(self, op: Operation, started: Any, method: str, done: str, **params: Any) -> Outcome:
        """The write; NoSuchEntity means it is gone — because an earlier attempt that timed
        out had landed (`revoked`), or someone else removed it meanwhile (`already_absent`)."""
        write = self._call(method, accept=("NoSuchEntity",), **params)
        if write.missing and write.earlier_attempt:
            return self._outcome(
                op,
                OutcomeStatus.REVOKED,
                f"{done} (a first attempt {write.earlier_attempt} but had landed: "
                "the retry found it gone).",
                write,
                started,
            )
        if write.missing:
            return self._absent(op, "Already gone (NoSuchEntity).", write, started)
        return self._outcome(op, OutcomeStatus.REVOKED, done, write, started)

    def _listed(
        self, op: Operation, started: Any, method: str, key: str, field: str | None
    ) -> tuple[Outcome | None, str]:
        """Guard, then whether `op.target_id` is still listed by `method`."""
        gone = self._guard(op, started)
        if gone is not None:
            return gone, ""
        name = str(op.details["user_name"])
        items, reads = self._pages(method, key, UserName=name)
        values = {str(i[field]) if field else str(i) for i in items}
        if op.target_id not in values:
            return self._absent(op, f"Not there any more ({key}).", reads[-1], started), name
        return None, name

    def _delete_access_key(self, op: Operation, started: Any) -> Outcome:
        done, name = self._listed(
            op, started, "list_access_keys", "AccessKeyMetadata", "AccessKeyId"
        )
        return done or self._write(
            op,
            started,
            "delete_access_key",
            f"Deleted access key {op.target_id}.",
            UserName=name,
            AccessKeyId=op.target_id,
        )

    def _delete_login_profile(self, op: Operation, started: Any) -> Outcome:
        gone = self._guard(op, started)
        if gone is not None:
            return gone
        name = str(op.details["user_name"])
        read = self._call("get_login_profile", UserName=name, accept=("NoSuchEntity",))
        if read.missing:
            return self._absent(op, "No console password.", read, started)
        return self._write(
            op, started, "delete_login_profile", "Deleted the console password.", UserName=name
        )

    def _deactivate_mfa_device(self, op: Operation, started: Any) -> Outcome:
        done, name = self._listed(op, started, "list_mfa_devices", "MFADevices", "SerialNumber")
        return done or self._write(
            op,
            started,
            "deactivate_mfa_device",
            f"Deactivated MFA device {op.target_id}.",
            UserName=name,
            SerialNumber=op.target_id,
        )

    def _delete_virtual_mfa_device(self, op: Operation, started: Any) -> Outcome:
        devices, reads = self._pages(
            "list_virtual_mfa_devices", "VirtualMFADevices", AssignmentStatus="Any"
        )
        device = next((d for d in devices if d.get("SerialNumber") == op.target_id), None)
        if device is None:
            return self._absent(op, "The virtual MFA device no longer exists.", reads[-1], started)
        holder = (device.get("User") or {}).get("UserId")
        if holder and holder != op.account_id:
            return self._outcome(
                op,
                OutcomeStatus.NEEDS_MANUAL,
                f"The virtual MFA device is now assigned to another user ({holder}): not touched.",
                reads[-1],
                started,
            )
        return self._write(
            op,
            started,
            "delete_virtual_mfa_device",
            f"Deleted the virtual MFA device {op.target_id}.",
            SerialNumber=op.target_id,
        )

    def _delete_signing_certificate(self, op: Operation, started: Any) -> Outcome:
        done, name = self._listed(
            op, started, "list_signing_certificates", "Certificates", "CertificateId"
        )
        return done or self._write(
            op,
            started,
            "delete_signing_certificate",
            f"Deleted signing certificate {op.target_id}.",
            UserName=name,
            CertificateId=op.target_id,
        )

    def _delete_ssh_public_key(self, op: Operation, started: Any) -> Outcome:
        done, name = self._listed(
            op, started, "list_ssh_public_keys", "SSHPublicKeys", "SSHPublicKeyId"
        )
        return done or self._write(
            op,
            started,
            "delete_ssh_public_key",
            f"Deleted SSH public key {op.target_id}.",
            UserName=name,
            SSHPublicKeyId=op.target_id,
        )

    def _detach_user_policy(self, op: Operation, started: Any) -> Outcome:
        done, name = self._listed(
            op, started, "list_attached_user_policies", "AttachedPolicies", "PolicyArn"
        )
        return done or self._write(
            op,
            started,
            "detach_user_policy",
            f"Detached managed policy {op.target_id}.",
            UserName=name,
            PolicyArn=op.target_id,
        )

    def _delete_user_policy(self, op: Operation, started: Any) -> Outcome:
        done, name = self._listed(op, started, "list_user_policies", "PolicyNames", None)
        return done or self._write(
            op,
            started,
            "delete_user_policy",
            f"Deleted inline policy {op.target_id}.",
            UserName=name,
            PolicyName=op.target_id,
        )

    def _remove_user_from_group(self, op: Operation, started: Any) -> Outcome:
        done, name = self._listed(op, started, "list_groups_for_user", "Groups", "GroupName")
        return done or self._write(
            op,
            started,
            "remove_user_from_group",
            f"Removed from group {op.target_id}.",
            GroupName=op.target_id,
            UserName=name,
        )

    def _delete_user(self, op: Operation, started: Any) -> Outcome:
        gone = self._guard(op, started)
        if gone is not None:
            return gone
        name = str(op.details["user_name"])
        write = self._call("delete_user", accept=("NoSuchEntity", "DeleteConflict"), UserName=name)
        if write.error_code == "DeleteConflict":
            return self._outcome(
                op,
                OutcomeStatus.FAILED,
                f"IAM refused to delete {name} (DeleteConflict: {write.error_message}). "
                "Something is still attached — added since the plan, or service-specific "
                "(CodeCommit, Keyspaces…) credentials this connector does not remove: plan "
                "and revoke again, or remove it by hand.",
                write,
                started,
            )
        if write.missing:
            status = (
                OutcomeStatus.REVOKED if write.earlier_attempt else OutcomeStatus.ALREADY_ABSENT
            )
            return self._outcome(op, status, "The user is gone (NoSuchEntity).", write, started)
        return self._outcome(
            op, OutcomeStatus.REVOKED, f"Deleted the IAM user {name}.", write, started
        )

    # --- verify -------------------------------------------------------------------------

    def verify(self, account: Account) -> Observation:
        started = _now()
        uid = account.external_id
        name = account.login or str(account.details.get("user_name") or uid)
        reads: list[_Reply] = []
        try:
            state = self._read_state(name, reads)
        except ConnectorError as exc:
            return self._observation(
                account,
                ObservationStatus.INDETERMINATE,
                f"The read failed: {exc.message}",
                reads,
                started,
                error=exc.message,
                request_id=exc.request_id,
            )
        if state is None:
            status, detail = (
                ObservationStatus.ABSENT,
                f"The IAM user {name} does not exist (NoSuchEntity).",
            )
        elif state.user.get("UserId") != uid:
            status, detail = (
                ObservationStatus.PRESENT,
                f"The IAM user {name} ({uid}) was deleted, but another user "
                f"({state.user.get('UserId')}) now has the name: a person must decide.",
            )
        else:
            left = state.left()
            held = "; ".join(left) if left else "no credential, policy or group left"
            if self.delete_users:
                status = ObservationStatus.PRESENT
                detail = f"The IAM user {name} still exists ({held})."
            elif left:
                status = ObservationStatus.PRESENT
                detail = f"The IAM user {name} still has {held}."
            else:
                status = ObservationStatus.ABSENT
                detail = (
                    f"The IAM user {name} is kept (delete_users is off) with no active "
                    "access key, certificate or SSH key, no console password, no policy "
                    "and no group."
                )
        return self._observation(account, status, detail, reads, started)

    def _observation(
        self,
        account: Account,
        status: ObservationStatus,
        detail: str,
        reads: Sequence[_Reply],
        started: dt.datetime,
        *,
        error: str = "",
        request_id: str = "",
    ) -> Observation:
        doc: dict[str, Any] = {
            "connector": self.kind,
            "version": self.version,
            "target": self.target(),
            "reads": [
                {
                    "read": r.operation,
                    "params": r.params,
                    "status": r.status,
                    "error_code": r.error_code,
                    "request_id": r.request_id,
                    "request_sha256": r.request_sha256,
                    "response_sha256": sha256_hex(r.body),
                    "body": r.body.decode(errors="replace"),
                }
                for r in reads
            ],
        }
        if error:
            doc["error"] = error
        raw = self.scrub(canonical_json(doc))
        return Observation(
            account=account,
            status=status,
            detail=self._safe(detail),
            raw=raw,
            request_id=request_id or (reads[0].request_id if reads else ""),
            request_sha256=sha256_json([r.request_sha256 for r in reads]),
            response_sha256=sha256_hex(raw),
            started_at=started,
            ended_at=_now(),
        )
