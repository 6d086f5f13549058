"""Signing keys and audiences of the emulator's access tokens (spec §1a, §1c)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from types import MappingProxyType

import httpx
from control_plane_support import ORG, WHOAMI, Api, bearer, emulator

from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.emulator.runtime import ManualClock
from crmsync.emulator.tokens import audience_matches, b64url, org_origin
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


def _client_credentials_at(api: Api, base: str, tenant: str, resource: str) -> httpx.Response:
    return api.post(
        f"{base}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_APP_CLIENT_ID,
            "client_secret": DEFAULT_APP_SECRET,
            "scope": f"{resource}/.default",
        },
    )


def test_token_endpoint_refuses_a_resource_that_is_not_this_org() -> None:
    """§1a: the resource is the environment URL. Asking for another one gets Entra's
    invalid_resource (AADSTS500011), for every grant and for the v1 `resource=` form."""
    with emulator() as (api, config, _runtime):
        other = "https://other.crm.dynamics.com"
        refused = _client_credentials_at(api, ORG, config.tenant, other)
        assert refused.status_code == 400
        body = refused.json()
        assert body["error"] == "invalid_resource"
        assert body["error_codes"] == [500011]
        assert body["error_description"].startswith(
            f"AADSTS500011: The resource principal named {other} was not found"
        )
        password = api.post(
            f"/{config.tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "password",
                "client_id": config.public_client_id,
                "username": "alex.morgan@contoso.example",
                "password": "alex-password-1",
                "scope": f"{other}/user_impersonation",
            },
        )
        assert password.json()["error_codes"] == [500011]
        v1 = api.post(
            "/adfs/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_APP_CLIENT_ID,
                "client_secret": DEFAULT_APP_SECRET,
                "resource": f"{ORG}/api",
            },
        )
        assert v1.json()["error_codes"] == [500011]
        assert _client_credentials_at(api, ORG, config.tenant, f"{ORG}/").status_code == 200


def test_web_api_refuses_a_token_for_another_resource() -> None:
    """A real org answers a token issued for another resource with 401; here 0x8004A100
    "The authentication ticket is invalid." with the invalid_token challenge (§1)."""
    with emulator() as (api, config, _runtime):
        foreign = "https://other.crm.example"
        issued = _client_credentials_at(api, foreign, config.tenant, foreign)
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        assert api.get(f"{foreign}{WHOAMI}", headers=bearer(token)).status_code == 200
        refused = api.get(WHOAMI, headers=bearer(token))
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "0x8004A100"
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_loopback_names_are_one_org_but_ports_and_schemes_are_not() -> None:
    """Docs silent: 127.0.0.1, localhost and ::1 reach the same server, so a token for one is
    good at the others on the same scheme and port; another port or scheme is another org."""
    with emulator() as (api, config, _runtime):
        issued = _client_credentials_at(
            api, "https://127.0.0.1:5580", config.tenant, "https://localhost:5580"
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        for base in ("https://localhost:5580", "https://127.0.0.1:5580", "https://[::1]:5580"):
            assert api.get(f"{base}{WHOAMI}", headers=bearer(token)).status_code == 200
        for base in ("https://127.0.0.1:5581", "http://127.0.0.1:5580"):
            assert api.get(f"{base}{WHOAMI}", headers=bearer(token)).status_code == 401
        wrong_port = _client_credentials_at(
            api, "https://127.0.0.1:5580", config.tenant, "https://127.0.0.1:5581"
        )
        assert wrong_port.json()["error"] == "invalid_resource"


def test_a_configured_org_url_is_accepted_wherever_the_request_arrives() -> None:
    """`org_url`: the emulator behind a proxy or another name still knows which org it is."""
    config = dataclasses.replace(default_config(), org_url="https://contoso.crm.dynamics.com")
    with emulator(config) as (api, _, _runtime):
        issued = _client_credentials_at(
            api, ORG, config.tenant, "https://CONTOSO.crm.dynamics.com:443"
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        assert api.get(WHOAMI, headers=bearer(token)).status_code == 200
        assert (
            api.get(f"https://elsewhere.example{WHOAMI}", headers=bearer(token)).status_code == 200
        )
        local = _client_credentials_at(api, ORG, config.tenant, ORG).json()["access_token"]
        assert api.get(WHOAMI, headers=bearer(local)).status_code == 200


def test_org_origin_normalises_and_refuses_what_is_not_an_org_url() -> None:
    """Origins compare without case, trailing slash or default port; paths are other resources."""
    assert org_origin("HTTPS://Org.Crm.Example:443/") == "https://org.crm.example"
    assert org_origin("http://[::1]:5580") == "http://[::1]:5580"
    for bad in ("org.crm.example", "ftp://org.example", "https://org.example/api", "https://:80"):
        assert org_origin(bad) is None
    assert audience_matches("https://localhost:8443", ["https://127.0.0.1:8443/"])
    assert not audience_matches("https://localhost:8443", ["https://127.0.0.2:8443"])


def test_a_changed_password_also_ends_the_users_refresh_tokens() -> None:
    """As in Entra, a new password ends the sessions begun with the old one: the refresh token
    is refused with invalid_grant (AADSTS9002313) and no new access token is issued (§1b)."""
    config = default_config()
    alex = config.user_by_upn("alex.morgan@contoso.example")
    assert alex is not None
    clock = ManualClock()
    form = {"grant_type": "refresh_token", "client_id": config.public_client_id}
    with emulator(config, clock=clock) as (api, _, _runtime):
        signed_in = api.post(
            f"/{config.tenant}/oauth2/v2.0/token",
            data={
                **form,
                "grant_type": "password",
                "username": "alex.morgan@contoso.example",
                "password": "alex-password-1",
                "scope": f"{ORG}/.default offline_access",
            },
        )
        refresh = signed_in.json()["refresh_token"]
        again = api.post(
            f"/{config.tenant}/oauth2/v2.0/token", data={**form, "refresh_token": refresh}
        )
        assert again.status_code == 200, again.text
    rotated = dict(config.secrets)
    rotated[alex.systemuserid] = Secret("alex-password-2")
    changed = dataclasses.replace(config, secrets=MappingProxyType(rotated))
    with emulator(changed, clock=ManualClock(clock())) as (api, _, _runtime):
        refused = api.post(
            f"/{config.tenant}/oauth2/v2.0/token", data={**form, "refresh_token": refresh}
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
        assert refused.json()["error_codes"] == [9002313]
