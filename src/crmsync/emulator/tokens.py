"""The emulator's access tokens: signing, verifying, and resolving a bearer token to a user.

Tokens are JWT-shaped (``header.claims.signature``) and signed with HMAC-SHA256 under the key
of the user they name (``EmulatorRuntime.signing_key``, derived from the admin key and that
user's secret, so a token cannot be made without the configuration's secrets). An access token
carries the user's Entra object id (``oid``, as Entra's do), its audience (``aud``, the org URL),
the expiry (``exp``) and the runtime's ``token_epoch`` (``ep``); bumping the epoch revokes every
token issued before. Refresh and ID tokens are signed the same way but are never accepted as
access tokens. Verified tokens are remembered (bounded), so a request costs one dictionary
lookup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crmsync.emulator.config import EmulatorConfig, EmulatorUser
from crmsync.emulator.jsontext import loads_strict
from crmsync.emulator.runtime import EmulatorRuntime

_VERIFIED_CACHE_SIZE = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Names of this machine's loopback interface: one server, whichever of them a client uses.
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """Outcome of checking a bearer token: the user, or why there is none.

    ``reason`` is ``"ok"``, ``"missing"``, ``"invalid"``, ``"audience"`` (a token for another
    resource), ``"expired"`` or ``"unknown_user"``.
    """

    reason: str
    user: EmulatorUser | None = None


def org_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an org URL (lower case, default port left out), or None.

    An org URL is an http(s) URL with a host and nothing after it but an optional ``/``, as
    the environment URL a Dataverse token is issued for (spec §1a).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or "@" in parts.netloc:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname.lower()
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"


def _audience_key(url: str) -> tuple[str, str, int] | None:
    origin = org_origin(url)
    if origin is None:
        return None
    parts = urlsplit(origin)
    host = parts.hostname or ""
    scheme = parts.scheme
    return (
        scheme,
        "loopback" if host in _LOOPBACK_HOSTS else host,
        parts.port or _DEFAULT_PORTS[scheme],
    )


def audience_matches(audience: str, accepted: Iterable[str]) -> bool:
    """Whether a token for ``audience`` is good for one of the ``accepted`` org URLs.

    URLs are compared as origins (scheme, host, port; case and a trailing ``/`` do not matter);
    ``localhost``, ``127.0.0.1`` and ``::1`` are one host, since they reach the same server.
    """
    wanted = _audience_key(audience)
    return wanted is not None and any(_audience_key(url) == wanted for url in accepted)


def accepted_audiences(config: EmulatorConfig, origin: str | None) -> tuple[str, ...]:
    """The org URLs a token may be for: the URL the request reached and the configured one."""
    return tuple(url for url in (origin or "", config.org_url) if url)


def b64url(data: bytes) -> str:
    """Base64url without padding, as in JWTs."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_claims(runtime: EmulatorRuntime, claims: Mapping[str, Any]) -> str:
    """A JWT-shaped token carrying ``claims``, signed with the key of the user in ``oid``."""
    header = b64url(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    key = runtime.signing_key(str(claims.get("oid", "")))
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def verified_claims(runtime: EmulatorRuntime, token: str) -> dict[str, Any] | None:
    """The claims of a token signed with the key of the user it names, or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = loads_strict(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", errors="replace")
    key = runtime.signing_key(str(claims.get("oid", "")))
    expected = hmac.new(key, signing_input, hashlib.sha256).digest()
    return claims if hmac.compare_digest(expected, signature) else None


def unique_id(runtime: EmulatorRuntime) -> str:
    """A GUID from the runtime's seeded generator."""
    with runtime.lock:
        return str(uuid.UUID(int=runtime.rng.getrandbits(128), version=4))


def issue_access_token(
    config: EmulatorConfig, runtime: EmulatorRuntime, user: EmulatorUser, audience: str
) -> tuple[str, int]:
    """Sign an access token for ``user`` valid for the configured lifetime; (token, expires_in)."""
    now = int(runtime.timestamp())
    lifetime = config.token_lifetime_seconds
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{config.tenant}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "tid": config.tenant,
        "oid": user.entra_object_id,
        "ep": runtime.token_epoch,
        "uti": unique_id(runtime),
        "ver": "1.0",
    }
    if user.client_id:
        claims["appid"] = user.client_id
    if user.upn:
        claims["upn"] = user.upn
    with runtime.lock:
        runtime.stats.tokens_issued += 1
    return sign_claims(runtime, claims), lifetime


def check_bearer(
    config: EmulatorConfig,
    runtime: EmulatorRuntime,
    authorization: str | None,
    *,
    origin: str | None = None,
) -> TokenCheck:
    """Resolve an ``Authorization`` header to the emulator user it was issued to.

    ``origin`` is ``scheme://host:port`` of the URL the request reached. The token's audience
    must be that URL or the configured ``org_url`` (spec §1a: a token is for one environment);
    with neither known, the audience is not checked.
    """
    if not authorization:
        return TokenCheck("missing")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return TokenCheck("invalid")
    token = token.strip()
    known = runtime.verified_tokens.get(token)
    if known is None:
        claims = verified_claims(runtime, token)
        exp = claims.get("exp") if claims else None
        epoch = claims.get("ep") if claims else None
        if (
            claims is None
            or claims.get("ver") != "1.0"  # refresh and ID tokens are not access tokens
            or not isinstance(epoch, int)
            or not isinstance(exp, int)
            or claims.get("tid") != config.tenant
        ):
            return TokenCheck("invalid")
        known = (str(claims.get("oid", "")), exp, epoch, str(claims.get("aud", "")))
        with runtime.lock:
            if len(runtime.verified_tokens) >= _VERIFIED_CACHE_SIZE:
                runtime.verified_tokens.clear()
            runtime.verified_tokens[token] = known
    user_id, exp, epoch, audience = known
    accepted = accepted_audiences(config, origin)
    if accepted and not audience_matches(audience, accepted):
        return TokenCheck("audience")
    if exp <= runtime.timestamp() or epoch != runtime.token_epoch:
        return TokenCheck("expired")
    user = config.user_by_object_id(user_id)
    if user is None:
        return TokenCheck("unknown_user")
    return TokenCheck("ok", user)
