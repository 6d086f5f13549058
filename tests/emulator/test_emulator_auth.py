"""Token endpoint, discovery documents and bearer checks of the emulator (spec §1, §12)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator

import httpx
import pytest
from control_plane_support import ORG, WHOAMI, Api, bearer, emulator, full_emulator

from crmsync.emulator.config import (
    DEFAULT_APP_CLIENT_ID,
    DEFAULT_APP_SECRET,
    EmulatorConfig,
    default_config,
)
from crmsync.emulator.runtime import EmulatorRuntime, ManualClock


@pytest.fixture
def env() -> Iterator[tuple[Api, EmulatorConfig, EmulatorRuntime]]:
    with emulator() as parts:
        yield parts


def token_url(config: EmulatorConfig) -> str:
    return f"/{config.tenant}/oauth2/v2.0/token"


def client_credentials(client: Api, config: EmulatorConfig, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_APP_CLIENT_ID,
        "client_secret": DEFAULT_APP_SECRET,
        "scope": f"{ORG}/.default",
        **overrides,
    }
    return client.post(token_url(config), data=form)


def test_client_credentials_grant_returns_documented_token_response(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """§1a: 200 with token_type Bearer, expires_in and an access token; no refresh token."""
    client, config, _ = env
    response = client_credentials(client, config)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == config.token_lifetime_seconds
    assert "refresh_token" not in body
    who = client.get(WHOAMI, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert who.status_code == 200
    assert who.json()["UserId"] == config.user_by_client_id(DEFAULT_APP_CLIENT_ID).systemuserid


def test_http_basic_client_authentication_is_accepted(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """§1a: HTTP Basic client authentication is an alternative to client_secret in the body."""
    client, config, _ = env
    basic = base64.b64encode(f"{DEFAULT_APP_CLIENT_ID}:{DEFAULT_APP_SECRET}".encode()).decode()
    response = client.post(
        token_url(config),
        data={"grant_type": "client_credentials", "scope": f"{ORG}/.default"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text


def test_bad_client_secret_gets_aadsts_error_shape(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """§1a errors: invalid_client, AADSTS7000215, error_codes, trace and correlation ids."""
    client, config, _ = env
    response = client_credentials(client, config, client_secret="wrong")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: ")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    assert "wrong" not in response.text and DEFAULT_APP_SECRET not in response.text


def test_correlation_id_echoes_client_request_id(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """MSAL sends client-request-id; Entra echoes it as correlation_id."""
    client, config, _ = env
    response = client.post(
        token_url(config),
        data={"grant_type": "client_credentials", "client_id": "nope", "scope": f"{ORG}/.default"},
        headers={"client-request-id": "5b8e0e1c-0000-4000-8000-000000000001"},
    )
    assert response.status_code == 400
    assert response.json()["correlation_id"] == "5b8e0e1c-0000-4000-8000-000000000001"
    assert response.json()["error_codes"] == [700016]


def test_scope_without_default_suffix_is_invalid_scope(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """§1a scope rule: one resource per request, `<resource>/.default`."""
    client, config, _ = env
    response = client_credentials(client, config, scope=f"{ORG}/user_impersonation")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["error_codes"] == [1002012]
    two = client_credentials(client, config, scope=f"{ORG}/.default https://other.example/.default")
    assert two.json()["error"] == "invalid_scope"


def test_missing_grant_type_and_unsupported_grant(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """Entra's invalid_request / unsupported_grant_type errors."""
    client, config, _ = env
    missing = client.post(token_url(config), data={"client_id": DEFAULT_APP_CLIENT_ID})
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    assert missing.json()["error_codes"] == [900144]
    odd = client.post(token_url(config), data={"grant_type": "implicit", "client_id": "x"})
    assert odd.json()["error"] == "unsupported_grant_type"


def test_unknown_tenant_is_refused(env: tuple[Api, EmulatorConfig, EmulatorRuntime]) -> None:
    """AADSTS90002 for a tenant that does not exist."""
    client, _config, _ = env
    response = client.post("/not-a-tenant/oauth2/v2.0/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]
    discovery = client.get("/not-a-tenant/v2.0/.well-known/openid-configuration")
    assert discovery.status_code == 400


def password_grant(client: Api, config: EmulatorConfig, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "password",
        "client_id": config.public_client_id,
        "username": "alex.morgan@contoso.example",
        "password": "alex-password-1",
        "scope": f"{ORG}/.default openid profile offline_access",
        **overrides,
    }
    return client.post(token_url(config), data=form)


def test_password_grant_acts_as_the_salesperson(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """§1b: ROPC returns scope, refresh_token (offline_access) and the user's identity."""
    client, config, _ = env
    response = password_grant(client, config)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == f"{ORG}/user_impersonation"
    assert body["refresh_token"]
    client_info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    alex = config.user_by_upn("alex.morgan@contoso.example")
    assert client_info == {"uid": alex.entra_object_id, "utid": config.tenant}
    who = client.get(WHOAMI, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert who.json()["UserId"] == alex.systemuserid


def test_password_grant_errors(env: tuple[Api, EmulatorConfig, EmulatorRuntime]) -> None:
    """§1b: wrong password → invalid_grant 50126; unknown user → 50034; secret on public client."""
    client, config, _ = env
    wrong = password_grant(client, config, password="nope")
    assert wrong.status_code == 400
    assert (wrong.json()["error"], wrong.json()["error_codes"]) == ("invalid_grant", [50126])
    unknown = password_grant(client, config, username="ghost@contoso.example")
    assert unknown.json()["error_codes"] == [50034]
    public_with_secret = password_grant(client, config, client_secret="x")
    assert public_with_secret.status_code == 401
    assert public_with_secret.json()["error_codes"] == [700025]


def test_refresh_token_grant_issues_new_access_token(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """§1b: a refresh token obtained with offline_access buys a new access token."""
    client, config, _ = env
    first = password_grant(client, config).json()
    again = client.post(
        token_url(config),
        data={
            "grant_type": "refresh_token",
            "client_id": config.public_client_id,
            "refresh_token": first["refresh_token"],
        },
    )
    assert again.status_code == 200, again.text
    who = client.get(WHOAMI, headers={"Authorization": f"Bearer {again.json()['access_token']}"})
    assert who.status_code == 200
    rejected = client.post(
        token_url(config),
        data={
            "grant_type": "refresh_token",
            "client_id": config.public_client_id,
            "refresh_token": first["access_token"],
        },
    )
    assert rejected.json()["error"] == "invalid_grant"


def test_token_expires_with_the_injected_clock() -> None:
    """§1c: a token stops working after its lifetime → 401 with the documented body."""
    clock = ManualClock()
    with emulator(clock=clock) as (client, config, _):
        _check_expiry(client, config, clock)


def _check_expiry(client: Api, config: EmulatorConfig, clock: ManualClock) -> None:
    token = client_credentials(client, config).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    clock.advance(seconds=config.token_lifetime_seconds - 1)
    assert client.get(WHOAMI, headers=headers).status_code == 200
    clock.advance(seconds=2)
    expired = client.get(WHOAMI, headers=headers)
    assert expired.status_code == 401
    assert expired.json() == {
        "error": {
            "code": "0x8005F101",
            "message": "The requested resource requires authentication.",
        }
    }
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]


def test_missing_token_gets_401_with_authority_challenge(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """§1d: 401 + `WWW-Authenticate: Bearer authorization_uri=..., resource_id=...`."""
    client, config, _ = env
    response = client.get(WHOAMI)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f"Bearer authorization_uri={ORG}/{config.tenant}/oauth2/authorize")
    assert f"resource_id={ORG}/" in challenge
    assert response.json()["error"]["code"] == "0x8005F101"


def test_forged_or_foreign_tokens_are_rejected(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """A token signed by anyone else, or an ID/refresh token, is not an access token."""
    client, config, _ = env
    body = password_grant(client, config).json()
    header, payload, _signature = body["access_token"].split(".")
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(b'x' * 32).decode().rstrip('=')}"
    for token in (forged, body["id_token"], body["refresh_token"], "garbage"):
        response = client.get(WHOAMI, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "0x8004A100"
    other_config = dataclasses.replace(default_config(), tenant="another-tenant")
    with emulator(other_config) as (other, _, _runtime):
        foreign = other.token(other_config)
    assert client.get(WHOAMI, headers={"Authorization": f"Bearer {foreign}"}).status_code == 401


def test_openid_configuration_points_at_the_emulator(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """MSAL reads token_endpoint and authorization_endpoint from tenant discovery."""
    client, config, _ = env
    document = client.get(f"/{config.tenant}/v2.0/.well-known/openid-configuration").json()
    assert document["token_endpoint"] == f"{ORG}/{config.tenant}/oauth2/v2.0/token"
    assert document["authorization_endpoint"].startswith(f"{ORG}/{config.tenant}/")
    assert document["issuer"] == f"{ORG}/{config.tenant}/v2.0"
    instance = client.get(
        "/common/discovery/instance",
        params={
            "authorization_endpoint": f"{ORG}/{config.tenant}/oauth2/v2.0/authorize",
            "api-version": "1.0",
        },
    ).json()
    assert instance["tenant_discovery_endpoint"] == (
        f"{ORG}/{config.tenant}/v2.0/.well-known/openid-configuration"
    )
    realm = client.get("/common/userrealm/alex.morgan@contoso.example").json()
    assert realm["account_type"] == "Managed"


def test_expire_tokens_admin_call_revokes_existing_tokens(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """Fault knob 'expire all tokens': earlier tokens get 401, new ones work."""
    client, config, _ = env
    token = client_credentials(client, config).json()["access_token"]
    admin = {"X-Emulator-Key": config.admin_key.reveal()}
    assert client.post("/_emulator/expire-tokens", headers=admin).json() == {"token_epoch": 1}
    assert client.get(WHOAMI, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    fresh = client_credentials(client, config).json()["access_token"]
    assert client.get(WHOAMI, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_tokens_are_deterministic_under_the_seed() -> None:
    """Same seed, same clock, same requests → the same token (everything reproducible)."""
    start = ManualClock()
    tokens = []
    for _ in range(2):
        with emulator(clock=ManualClock(start())) as (client, config, _runtime):
            tokens.append(client_credentials(client, config).json()["access_token"])
    assert tokens[0] == tokens[1]


def test_v1_and_adfs_endpoints_take_a_resource_instead_of_a_scope(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """Entra v1 / AD FS token endpoints: `resource=<org>` names what the token is for."""
    client, config, _ = env
    for path in (f"/{config.tenant}/oauth2/token", "/adfs/oauth2/token"):
        response = client.post(
            path,
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_APP_CLIENT_ID,
                "client_secret": DEFAULT_APP_SECRET,
                "resource": f"{ORG}/",
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["resource"] == f"{ORG}/"
        token = response.json()["access_token"]
        assert client.get(WHOAMI, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    adfs = client.get("/adfs/.well-known/openid-configuration").json()
    assert adfs["token_endpoint"] == f"{ORG}/adfs/oauth2/token"


def test_a_salesperson_editing_a_lead_is_attributed_to_them() -> None:
    """Issue 3 'Users and security': requests act as the token's user — modifiedby, missing
    privileges (403 PrivilegeDenied) and field security (secured column reads null)."""
    with full_emulator() as (api, config, _):
        app_headers = bearer(api.token(config))
        created = api.post(
            "/api/data/v9.2/leads",
            json={"lastname": "Okafor", "revenue": 250000},
            headers=app_headers,
        )
        assert created.status_code == 204
        lead = created.headers["odata-entityid"].split("/api/data/v9.2/", 1)[1]
        alex = config.user_by_upn("alex.morgan@contoso.example")
        assert alex is not None
        alex_headers = bearer(
            api.user_token(config, "alex.morgan@contoso.example", "alex-password-1")
        )
        assert (
            api.patch(
                f"/api/data/v9.2/{lead}", json={"firstname": "Ada"}, headers=alex_headers
            ).status_code
            == 204
        )
        seen = api.get(
            f"/api/data/v9.2/{lead}?$select=firstname,revenue,_modifiedby_value",
            headers=alex_headers,
        ).json()
        assert seen["_modifiedby_value"] == alex.systemuserid
        assert seen["firstname"] == "Ada" and seen["revenue"] is None
        refused = api.request("DELETE", f"/api/data/v9.2/{lead}", headers=alex_headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "0x80040220"
        by_app = api.get(f"/api/data/v9.2/{lead}?$select=revenue", headers=app_headers).json()
        assert by_app["revenue"] == 250000


def test_password_grant_fails_for_a_user_who_needs_mfa() -> None:
    """§1b: ROPC 'fails if MFA is required' — invalid_grant AADSTS50076; right password."""
    config = default_config()
    alex = config.users[1]
    config = dataclasses.replace(
        config,
        users=(config.users[0], dataclasses.replace(alex, mfa_required=True), config.users[2]),
    )
    with emulator(config) as (client, config, _):
        refused = password_grant(client, config)
        assert refused.status_code == 400
        assert (refused.json()["error"], refused.json()["error_codes"]) == (
            "invalid_grant",
            [50076],
        )
        wrong = password_grant(client, config, password="nope")
        assert wrong.json()["error_codes"] == [50126]


def test_impersonation_acts_as_the_named_user_with_shared_privileges() -> None:
    """§9 CallerObjectId: the app user acts as Alex; privileges are the intersection, so Alex's
    missing delete privilege still refuses a delete, and his field security applies."""
    with full_emulator() as (api, config, _):
        app_headers = bearer(api.token(config))
        alex = config.user_by_upn("alex.morgan@contoso.example")
        assert alex is not None
        created = api.post(
            "/api/data/v9.2/leads",
            json={"lastname": "Nakamura", "revenue": 90},
            headers=app_headers,
        )
        lead = created.headers["odata-entityid"].split("/api/data/v9.2/", 1)[1]
        as_alex = {**app_headers, "CallerObjectId": alex.entra_object_id}
        assert api.get(WHOAMI, headers=as_alex).json()["UserId"] == alex.systemuserid
        assert (
            api.patch(
                f"/api/data/v9.2/{lead}", json={"firstname": "Kei"}, headers=as_alex
            ).status_code
            == 204
        )
        seen = api.get(
            f"/api/data/v9.2/{lead}?$select=revenue,_modifiedby_value", headers=as_alex
        ).json()
        assert seen["_modifiedby_value"] == alex.systemuserid
        assert seen["revenue"] is None
        assert api.request("DELETE", f"/api/data/v9.2/{lead}", headers=as_alex).status_code == 403
        legacy = {**app_headers, "MSCRMCallerID": alex.systemuserid}
        assert api.get(WHOAMI, headers=legacy).json()["UserId"] == alex.systemuserid


def test_impersonation_needs_the_privilege_and_a_known_user(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """A salesperson cannot impersonate (403 PrivilegeDenied); an unknown id gets 404."""
    client, config, _ = env
    sam = config.user_by_upn("sam.patel@contoso.example")
    assert sam is not None
    alex_token = password_grant(client, config).json()["access_token"]
    refused = client.get(
        WHOAMI,
        headers={"Authorization": f"Bearer {alex_token}", "CallerObjectId": sam.entra_object_id},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "0x80040220"
    assert "prvActOnBehalfOfAnotherUser" in refused.json()["error"]["message"]
    app_token = client_credentials(client, config).json()["access_token"]
    unknown = client.get(
        WHOAMI,
        headers={
            "Authorization": f"Bearer {app_token}",
            "CallerObjectId": "00000000-0000-0000-0000-00000000dead",
        },
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "0x80040217"


def test_each_impersonation_header_names_the_user_by_its_own_id(
    env: tuple[Api, EmulatorConfig, EmulatorRuntime],
) -> None:
    """§0/§9: CallerObjectId carries the Entra object id (azureactivedirectoryobjectid),
    MSCRMCallerID the systemuserid; an id of the other kind names no user (404)."""
    client, config, _ = env
    alex = config.user_by_upn("alex.morgan@contoso.example")
    assert alex is not None
    assert alex.entra_object_id != alex.systemuserid
    app = {"Authorization": f"Bearer {client_credentials(client, config).json()['access_token']}"}
    for header, good, other in (
        ("CallerObjectId", alex.entra_object_id, alex.systemuserid),
        ("MSCRMCallerID", alex.systemuserid, alex.entra_object_id),
    ):
        acting = client.get(WHOAMI, headers={**app, header: good.upper()})
        assert acting.status_code == 200
        assert acting.json()["UserId"] == alex.systemuserid
        wrong_kind = client.get(WHOAMI, headers={**app, header: other})
        assert wrong_kind.status_code == 404
        assert wrong_kind.json()["error"]["code"] == "0x80040217"
    blank_preferred = {**app, "CallerObjectId": " ", "MSCRMCallerID": alex.systemuserid}
    assert client.get(WHOAMI, headers=blank_preferred).json()["UserId"] == alex.systemuserid


def test_entra_object_ids_are_stable_and_distinct() -> None:
    """Every user has an Entra object id, the same on every run, and tokens carry it as oid."""
    first, second = default_config(), default_config()
    ids = [user.entra_object_id for user in first.users]
    assert ids == [user.entra_object_id for user in second.users]
    assert len(set(ids)) == len(ids)
    with emulator() as (client, config, _):
        token = client_credentials(client, config).json()["access_token"]
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        app_user = config.user_by_client_id(DEFAULT_APP_CLIENT_ID)
        assert app_user is not None
        assert claims["oid"] == app_user.entra_object_id
        assert config.user_by_object_id(claims["oid"].upper()) == app_user


def test_acting_for_intersects_privileges() -> None:
    """The effective privileges are those both users hold, table by table (§9)."""
    config = default_config()
    app_user, alex, _sam = config.users
    acting = app_user.acting_for(alex)
    assert acting.systemuserid == alex.systemuserid
    assert acting.can("lead", "write") and not acting.can("lead", "delete")
    assert acting.can("team", "read") and not acting.can("team", "write")
    limited = dataclasses.replace(
        app_user, privileges={"*": frozenset({"read"}), "lead": frozenset({"read", "write"})}
    )
    narrowed = limited.acting_for(alex)
    assert narrowed.can("lead", "write") and not narrowed.can("contact", "write")
    assert not narrowed.can_impersonate
