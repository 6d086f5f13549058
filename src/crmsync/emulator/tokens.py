"""The emulator's access tokens: signing, verifying, and resolving a bearer token to a user.

Tokens are JWT-shaped (``header.claims.signature``) and signed with HMAC-SHA256 under the key
of the user they name (``EmulatorRuntime.signing_key``, derived from the admin key and that
user's secret, so a token cannot be made without the configuration's secrets). An access token
carries the user (``oid``), the expiry (``exp``) and the runtime's ``token_epoch`` (``ep``);
bumping the epoch revokes every token issued before. Refresh and ID tokens are signed the same
way but are never accepted as access tokens. Verified tokens are remembered (bounded), so a
request costs one dictionary lookup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crmsync.emulator.config import EmulatorConfig, EmulatorUser
from crmsync.emulator.runtime import EmulatorRuntime

_VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """Outcome of checking a bearer token: the user, or why there is none.

    ``reason`` is ``"ok"``, ``"missing"``, ``"invalid"``, ``"expired"`` or ``"unknown_user"``.
    """

    reason: str
    user: EmulatorUser | None = None


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
        claims = json.loads(_unb64(parts[1]))
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
        "oid": user.systemuserid,
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
    config: EmulatorConfig, runtime: EmulatorRuntime, authorization: str | None
) -> TokenCheck:
    """Resolve an ``Authorization`` header to the emulator user it was issued to."""
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
        known = (str(claims.get("oid", "")), exp, epoch)
        with runtime.lock:
            if len(runtime.verified_tokens) >= _VERIFIED_CACHE_SIZE:
                runtime.verified_tokens.clear()
            runtime.verified_tokens[token] = known
    user_id, exp, epoch = known
    if exp <= runtime.timestamp() or epoch != runtime.token_epoch:
        return TokenCheck("expired")
    user = config.user_by_id(user_id)
    if user is None:
        return TokenCheck("unknown_user")
    return TokenCheck("ok", user)
