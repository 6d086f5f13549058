"""Signing keys and audiences of the emulator's access tokens (spec §1a, §1c)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from types import MappingProxyType

from control_plane_support import WHOAMI, bearer, emulator

from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, default_config
from crmsync.emulator.runtime import ManualClock
from crmsync.emulator.tokens import b64url
from crmsync.settings import Secret


def _signed(key: bytes, claims: dict[str, object]) -> str:
    header = b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def test_a_token_signed_from_public_values_is_refused() -> None:
    """§1: only the identity provider can make a token. A key computable from the seed and the
    tenant (both public) must not sign a token the Web API accepts."""
    config = default_config()
    app_user = config.user_by_client_id(DEFAULT_APP_CLIENT_ID)
    assert app_user is not None
    with emulator(config) as (api, _, _runtime):
        genuine = api.token(config)
        claims = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
        public_key = hashlib.sha256(
            f"crmsync-emulator-token/{config.seed}/{config.tenant}".encode()
        ).digest()
        forged = _signed(public_key, claims)
        refused = api.get(WHOAMI, headers=bearer(forged))
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "0x8004A100"
        assert api.get(WHOAMI, headers=bearer(genuine)).status_code == 200


def test_tokens_survive_a_restart_with_the_same_configuration() -> None:
    """A client's cached token keeps working when the emulator restarts unchanged (§1c)."""
    config = default_config()
    clock = ManualClock()
    with emulator(config, clock=clock) as (api, _, _runtime):
        token = api.token(config)
    with emulator(config, clock=ManualClock(clock())) as (restarted, _, _runtime):
        assert restarted.get(WHOAMI, headers=bearer(token)).status_code == 200


def test_changing_a_users_secret_invalidates_only_that_users_tokens() -> None:
    """A rotated client secret or password ends the tokens issued under the old one; other
    users' tokens stay valid. A new admin key ends every token."""
    config = default_config()
    alex = config.user_by_upn("alex.morgan@contoso.example")
    assert alex is not None
    clock = ManualClock()
    with emulator(config, clock=clock) as (api, _, _runtime):
        app_token = api.token(config)
        alex_token = api.user_token(config, "alex.morgan@contoso.example", "alex-password-1")
    rotated = dict(config.secrets)
    rotated[alex.systemuserid] = Secret("alex-password-2")
    changed = dataclasses.replace(config, secrets=MappingProxyType(rotated))
    with emulator(changed, clock=ManualClock(clock())) as (api, _, _runtime):
        assert api.get(WHOAMI, headers=bearer(alex_token)).status_code == 401
        assert api.get(WHOAMI, headers=bearer(app_token)).status_code == 200
    new_admin = dataclasses.replace(config, admin_key=Secret("another-admin-key"))
    with emulator(new_admin, clock=ManualClock(clock())) as (api, _, _runtime):
        assert api.get(WHOAMI, headers=bearer(app_token)).status_code == 401
        assert api.get(WHOAMI, headers=bearer(alex_token)).status_code == 401
