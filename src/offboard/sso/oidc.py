"""The OpenID Connect relying party: discovery, the authorization request (code flow with PKCE
S256, state and nonce), the code exchange, and the ID token's verification.

Only the standard library talks to the provider, with a timeout on every call. Discovery
documents and key sets are cached for a few minutes; a token signed with a key id the cached
set does not hold fetches the set once more (the provider rotated its keys). Every failure is a
`ProviderError` whose message says what went wrong and never carries the client secret or a
token."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

TIMEOUT_SECONDS = 10
CACHE_SECONDS = 300
CLOCK_SKEW_SECONDS = 60
MAX_RESPONSE_BYTES = 1_000_000
# Asymmetric signatures only: an HS256 token would be signed with the client secret itself.
ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
# `amr` values that mean the provider checked a second factor (RFC 8176).
SECOND_FACTOR_AMR = frozenset({"mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "sc"})


class ProviderError(Exception):
    """The identity provider could not be used, or what it sent cannot be trusted."""

    def __init__(self, message: str, *, code: str = "provider") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_cache: dict[str, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _cached(key: str) -> Any:
    with _cache_lock:
        hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    return None


def _store(key: str, value: Any) -> Any:
    with _cache_lock:
        _cache[key] = (time.monotonic(), value)
    return value


def _read(request: urllib.request.Request, what: str) -> dict[str, Any]:
    host = urllib.parse.urlsplit(request.full_url).netloc
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            body = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            answer = json.loads(exc.read(MAX_RESPONSE_BYTES) or b"{}")
            if isinstance(answer, dict) and answer.get("error"):
                detail = f": {str(answer['error'])[:100]}"
                if answer.get("error_description"):
                    detail += f" ({str(answer['error_description'])[:200]})"
        except (ValueError, OSError):
            pass
        raise ProviderError(
            f"The identity provider ({host}) answered {exc.code} to the {what}{detail}.",
            code="http_status",
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProviderError(
            f"The identity provider ({host}) could not be reached for the {what}: {reason}.",
            code="unreachable",
        ) from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise ProviderError(f"The {what} from {host} is too large.", code="invalid")
    try:
        document = json.loads(body)
    except ValueError:
        raise ProviderError(f"The {what} from {host} is not JSON.", code="invalid") from None
    if not isinstance(document, dict):
        raise ProviderError(f"The {what} from {host} is not a JSON object.", code="invalid")
    return document


def _web_url(url: str, what: str) -> str:
    """Only http(s) is ever opened (never file: or another scheme a document might name)."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise ProviderError(f"The {what} address is not an http(s) URL.", code="invalid")
    return url


def _get(url: str, what: str) -> dict[str, Any]:
    request = urllib.request.Request(_web_url(url, what), headers={"Accept": "application/json"})  # noqa: S310 (http(s) only: _web_url)
    return _read(request, what)


def discover(issuer: str, *, fresh: bool = False) -> dict[str, Any]:
    """The provider's discovery document, checked: it names the same issuer and the endpoints
    the code flow needs."""
    issuer = issuer.rstrip("/")
    key = f"discovery:{issuer}"
    if not fresh and (hit := _cached(key)) is not None:
        return dict(hit)
    document = _get(f"{issuer}/.well-known/openid-configuration", "discovery document")
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ProviderError(
            f"The discovery document names the issuer {str(document.get('issuer'))[:200]!r}, "
            f"not {issuer!r}: check the issuer URL.",
            code="issuer_mismatch",
        )
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(field), str) or not document[field]:
            raise ProviderError(f"The discovery document has no {field}.", code="invalid")
        _web_url(document[field], field)
    return dict(_store(key, document))


def key_set(jwks_uri: str, *, fresh: bool = False) -> KeySet:
    key = f"jwks:{jwks_uri}"
    if not fresh and (hit := _cached(key)) is not None:
        return hit
    document = _get(jwks_uri, "key set (JWKS)")
    keys = [
        k for k in document.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"
    ]
    try:
        found = KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise ProviderError(
            f"The provider's key set cannot be read: {exc}.", code="invalid"
        ) from None
    return _store(key, found)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def authorization_request(
    *, discovery: dict[str, Any], client_id: str, redirect_uri: str, scope: str
) -> AuthorizationRequest:
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    endpoint = discovery["authorization_endpoint"]
    separator = "&" if "?" in endpoint else "?"
    return AuthorizationRequest(f"{endpoint}{separator}{query}", state, nonce, verifier)


def exchange_code(
    *,
    discovery: dict[str, Any],
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> dict[str, Any]:
    """Trade the authorization code for tokens (client_secret_basic where the provider offers
    it, else client_secret_post)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    methods = discovery.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" in methods:
        pair = (
            f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}"
        )
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form |= {"client_id": client_id, "client_secret": client_secret}
    request = urllib.request.Request(  # noqa: S310 (http(s) only: _web_url)
        _web_url(discovery["token_endpoint"], "token endpoint"),
        data=urllib.parse.urlencode(form).encode(),
        headers=headers,
        method="POST",
    )
    tokens = _read(request, "code exchange (token endpoint)")
    if not isinstance(tokens.get("id_token"), str):
        raise ProviderError("The token endpoint sent no ID token.", code="invalid")
    return tokens


def _refused(message: str, code: str) -> ProviderError:
    return ProviderError(f"The ID token is refused: {message}.", code=code)


def verify_id_token(
    token: str,
    *,
    discovery: dict[str, Any],
    client_id: str,
    nonce: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The ID token's claims, once its signature (the provider's key set), issuer, audience,
    authorized party, times (with `CLOCK_SKEW_SECONDS` of skew) and nonce all hold."""
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise _refused("it is not a signed JWT", "malformed") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise _refused(f"its algorithm {str(algorithm)[:20]!r} is not accepted", "algorithm")
    kid = header.get("kid")
    keys = key_set(discovery["jwks_uri"])
    if kid is not None and not any(k.kid == kid for k in keys.keys):
        keys = key_set(discovery["jwks_uri"], fresh=True)  # the provider rotated its keys
        if not any(k.kid == kid for k in keys.keys):
            raise _refused(f"no key {str(kid)[:60]!r} in the provider's key set", "unknown_key")
    try:
        claims = dict(jwt.decode(token, keys, algorithms=[str(algorithm)]).claims)
    except JoseError:
        raise _refused("its signature does not verify", "signature") from None
    except (ValueError, TypeError):
        raise _refused("it cannot be read", "malformed") from None
    now = time.time() if now is None else now
    issuer = str(discovery["issuer"]).rstrip("/")
    if str(claims.get("iss", "")).rstrip("/") != issuer:
        raise _refused("it comes from another issuer", "issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise _refused("it was issued for another client (audience)", "audience")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise _refused("it has several audiences and another authorized party", "audience")
    if "azp" in claims and claims["azp"] != client_id:
        raise _refused("it was issued to another authorized party", "audience")
    for name in ("exp", "iat"):
        if not isinstance(claims.get(name), (int, float)):
            raise _refused(f"it has no {name}", "times")
    if claims["exp"] < now - CLOCK_SKEW_SECONDS:
        raise _refused("it has expired", "expired")
    if claims["iat"] > now + CLOCK_SKEW_SECONDS:
        raise _refused("it was issued in the future", "times")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf > now + CLOCK_SKEW_SECONDS:
        raise _refused("it is not valid yet", "times")
    if not nonce or not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise _refused("its nonce is not the one this sign-in sent", "nonce")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _refused("it names no subject", "subject")
    return claims


def has_second_factor(claims: dict[str, Any]) -> bool:
    amr = claims.get("amr")
    return isinstance(amr, list) and any(str(v) in SECOND_FACTOR_AMR for v in amr)
