"""The emulator's identity provider: token endpoint and the discovery documents MSAL reads.

It plays Microsoft Entra ID for the users in :class:`~crmsync.emulator.config.EmulatorConfig`
(spec §1): ``POST /{tenant}/oauth2/v2.0/token`` with the ``client_credentials``, ``password``
and ``refresh_token`` grants (also at the Entra v1 and AD FS endpoints ``/{tenant}/oauth2/token``
and ``/adfs/oauth2/token``, which take ``resource=`` instead of ``scope=``), errors in the
AADSTS JSON shape, and the documents MSAL fetches before asking for a token —
``/{tenant}/v2.0/.well-known/openid-configuration`` (tenant discovery),
``/common/discovery/instance`` (instance discovery, for clients that point
``instance_discovery`` at the emulator) and ``/common/userrealm/{upn}`` (asked before ROPC).
Where Entra's behaviour for an input is not documented, the nearest documented AADSTS error is
used.

The tokens themselves (signing, checking a bearer token) are in :mod:`.tokens`;
``check_bearer`` and ``issue_access_token`` are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crmsync.emulator.config import EmulatorConfig, EmulatorUser
from crmsync.emulator.runtime import EmulatorRuntime
from crmsync.emulator.tokens import (
    TokenCheck,
    accepted_audiences,
    audience_matches,
    b64url,
    check_bearer,
    issue_access_token,
    sign_claims,
    unique_id,
    verified_claims,
)

_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_REFRESH_LIFETIME = timedelta(days=90)
__all__ = [
    "TokenCheck",
    "TokenRequestError",
    "check_bearer",
    "identity_routes",
    "issue_access_token",
    "openid_document",
]

ORGANIZATIONS = "organizations"
ADFS = "adfs"


class TokenRequestError(Exception):
    """A refused token request, rendered as Entra's error JSON (never carries a secret)."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description


def _aad_error(
    runtime: EmulatorRuntime, request: Request, failure: TokenRequestError
) -> JSONResponse:
    now: datetime = runtime.clock()
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = unique_id(runtime)
    correlation_id = request.headers.get("client-request-id") or unique_id(runtime)
    description = (
        f"AADSTS{failure.code}: {failure.description} Trace ID: {trace_id} "
        f"Correlation ID: {correlation_id} Timestamp: {stamp}"
    )
    with runtime.lock:
        runtime.stats.token_failures += 1
    return JSONResponse(
        {
            "error": failure.error,
            "error_description": description,
            "error_codes": [failure.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{_base_url(request)}/error?code={failure.code}",
        },
        status_code=failure.status,
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _resource_not_found(config: EmulatorConfig, resource: str) -> TokenRequestError:
    return TokenRequestError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named "
        f"{config.tenant}. This can happen if the application has not been installed "
        "by the administrator of the tenant or consented to by any user in the tenant. You "
        "might have sent your authentication request to the wrong tenant.",
    )


def _check_resource(config: EmulatorConfig, resource: str, accepted: tuple[str, ...]) -> str:
    """``resource`` if it names this org (spec §1a: the environment URL), else AADSTS500011."""
    if not audience_matches(resource, accepted):
        raise _resource_not_found(config, resource)
    return resource


def _resource_of(
    config: EmulatorConfig,
    scopes: list[str],
    accepted: tuple[str, ...],
    *,
    confidential_only: bool,
) -> str:
    if not scopes:
        raise TokenRequestError(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        )
    resources: set[str] = set()
    for scope in scopes:
        if scope.lower() in _RESERVED_SCOPES and not confidential_only:
            continue
        resource, slash, permission = scope.rpartition("/")
        allowed = {".default"} if confidential_only else {".default", "user_impersonation"}
        if not slash or permission not in allowed:
            if confidential_only:
                raise TokenRequestError(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {scope} is not valid. Client credential "
                    "flows must have a scope value with /.default suffixed to the resource "
                    "identifier (application ID URI).",
                )
            raise TokenRequestError(
                400,
                "invalid_scope",
                70011,
                f"The provided request must include a 'scope' input parameter. The provided "
                f"value for the input parameter 'scope' is not valid. The scope {scope} is "
                "not valid.",
            )
        resources.add(resource.rstrip("/"))
    if len(resources) != 1:
        raise TokenRequestError(
            400,
            "invalid_scope",
            28000 if resources else 70011,
            "Provided value for the input parameter scope is not valid because it contains "
            "more than one resource."
            if resources
            else "The provided value for the input parameter 'scope' is not valid.",
        )
    return _check_resource(config, resources.pop(), accepted)


def _client_secret(request: Request, form: Mapping[str, str]) -> tuple[str, str | None]:
    """(client_id, secret) from the form, or from HTTP Basic client authentication."""
    client_id = form.get("client_id", "")
    secret = form.get("client_secret")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        basic_id, sep, basic_secret = decoded.partition(":")
        if sep:
            client_id = client_id or basic_id
            secret = secret if secret is not None else basic_secret
    return client_id, secret


def _secret_matches(config: EmulatorConfig, user: EmulatorUser, given: str) -> bool:
    expected = config.secret_for(user).reveal()
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def _unknown_client(config: EmulatorConfig, client_id: str) -> TokenRequestError:
    return TokenRequestError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{config.tenant}'. This can happen if the application has not been installed by "
        "the administrator of the tenant or consented to by any user in the tenant.",
    )


def _confidential_user(
    config: EmulatorConfig, client_id: str, secret: str | None
) -> EmulatorUser | None:
    """The application user behind a confidential client, after checking its secret."""
    app_user = config.user_by_client_id(client_id) if client_id else None
    if app_user is None:
        return None
    if not secret:
        raise TokenRequestError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    if not _secret_matches(config, app_user, secret):
        raise TokenRequestError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            f"the client secret value, not the client secret ID, for a secret added to app "
            f"'{client_id}'.",
        )
    return app_user


def _grant(
    config: EmulatorConfig,
    runtime: EmulatorRuntime,
    request: Request,
    form: Mapping[str, str],
    tenant: str,
) -> dict[str, Any]:
    grant_type = form.get("grant_type", "")
    if not grant_type:
        raise TokenRequestError(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )
    if grant_type not in ("client_credentials", "password", "refresh_token"):
        raise TokenRequestError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )
    if tenant == ORGANIZATIONS and grant_type == "client_credentials":
        raise TokenRequestError(
            400,
            "invalid_request",
            1002014,
            "The 'organizations' authority cannot be used for the client credentials flow; "
            "use a tenant-specific authority.",
        )
    client_id, secret = _client_secret(request, form)
    if not client_id:
        raise TokenRequestError(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    accepted = accepted_audiences(config, _base_url(request))
    scopes = form.get("scope", "").split()
    resource_param = form.get("resource", "").strip()
    if resource_param and not any("/" in scope for scope in scopes):
        # Entra v1 and AD FS endpoints name the resource instead of a scope.
        scopes.append(f"{resource_param.rstrip('/')}/.default")
    if grant_type == "client_credentials":
        resource = _resource_of(config, scopes, accepted, confidential_only=True)
        user = _confidential_user(config, client_id, secret)
        if user is None:
            raise _unknown_client(config, client_id)
        token, expires_in = issue_access_token(config, runtime, user, resource)
        return {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": token,
        }
    app_user = _confidential_user(config, client_id, secret)
    if app_user is None:
        if client_id.lower() != config.public_client_id.lower():
            raise _unknown_client(config, client_id)
        if secret:
            raise TokenRequestError(
                401,
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should "
                "be presented.",
            )
    if grant_type == "refresh_token":
        user, resource, scopes = _redeem_refresh_token(config, runtime, form, client_id, accepted)
    else:
        resource = _resource_of(config, scopes, accepted, confidential_only=False)
        user = _password_user(config, form)
    return _user_token_response(config, runtime, user, client_id, resource, scopes)


def _password_user(config: EmulatorConfig, form: Mapping[str, str]) -> EmulatorUser:
    username = form.get("username", "")
    password = form.get("password", "")
    if not username or not password:
        missing = "username" if not username else "password"
        raise TokenRequestError(
            400,
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{missing}'.",
        )
    user = config.user_by_upn(username)
    if user is None:
        raise TokenRequestError(
            400,
            "invalid_grant",
            50034,
            f"The user account {username} does not exist in the {config.tenant} directory. To "
            "sign into this application, the account must be added to the directory.",
        )
    if not _secret_matches(config, user, password):
        raise TokenRequestError(
            400,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        )
    if user.mfa_required:
        raise TokenRequestError(
            400,
            "invalid_grant",
            50076,
            "Due to a configuration change made by your administrator, or because you moved to "
            "a new location, you must use multi-factor authentication to access the resource.",
        )
    return user


def _redeem_refresh_token(
    config: EmulatorConfig,
    runtime: EmulatorRuntime,
    form: Mapping[str, str],
    client_id: str,
    accepted: tuple[str, ...],
) -> tuple[EmulatorUser, str, list[str]]:
    claims = verified_claims(runtime, form.get("refresh_token", ""))
    user = config.user_by_object_id(str(claims.get("oid", ""))) if claims else None
    if claims is None or claims.get("typ") != "refresh" or user is None:
        raise TokenRequestError(
            400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
        )
    if str(claims.get("azp", "")).lower() != client_id.lower():
        raise TokenRequestError(
            400,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed. The refresh token was issued to a "
            "different client.",
        )
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= runtime.timestamp():
        raise TokenRequestError(
            400,
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity.",
        )
    requested = form.get("scope", "").split()
    if requested:
        resource = _resource_of(config, requested, accepted, confidential_only=False)
    else:
        resource = _check_resource(config, str(claims.get("aud", "")), accepted)
    return user, resource, requested or list(claims.get("scp", []))


def _user_token_response(
    config: EmulatorConfig,
    runtime: EmulatorRuntime,
    user: EmulatorUser,
    client_id: str,
    resource: str,
    scopes: list[str],
) -> dict[str, Any]:
    token, expires_in = issue_access_token(config, runtime, user, resource)
    lowered = {scope.lower() for scope in scopes}
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": f"{resource}/user_impersonation",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": token,
    }
    now = int(runtime.timestamp())
    if "offline_access" in lowered:
        body["refresh_token"] = sign_claims(
            runtime,
            {
                "typ": "refresh",
                "oid": user.entra_object_id,
                "azp": client_id,
                "aud": resource,
                "scp": scopes,
                "iat": now,
                "exp": now + int(_REFRESH_LIFETIME.total_seconds()),
                "uti": unique_id(runtime),
            },
        )
    if "openid" in lowered:
        # ID tokens are read by MSAL for the account cache; it does not check their signature.
        body["id_token"] = sign_claims(
            runtime,
            {
                "aud": client_id,
                "iss": f"https://login.microsoftonline.com/{config.tenant}/v2.0",
                "iat": now,
                "nbf": now,
                "exp": now + expires_in,
                "oid": user.entra_object_id,
                "sub": user.entra_object_id,
                "tid": config.tenant,
                "name": user.fullname,
                "preferred_username": user.upn or "",
                "ver": "2.0",
            },
        )
        client_info = {"uid": user.entra_object_id, "utid": config.tenant}
        body["client_info"] = b64url(json.dumps(client_info).encode())
    return body


def _tenant_known(config: EmulatorConfig, tenant: str) -> bool:
    return tenant.lower() in (config.tenant.lower(), ORGANIZATIONS, ADFS)


def _tenant_not_found(tenant: str) -> TokenRequestError:
    return TokenRequestError(
        400,
        "invalid_request",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud.",
    )


def identity_routes(config: EmulatorConfig, runtime: EmulatorRuntime) -> list[BaseRoute]:
    """Routes of the emulated identity provider (token endpoint and discovery documents)."""

    async def token(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        try:
            if not _tenant_known(config, tenant):
                raise _tenant_not_found(tenant)
            content_type = request.headers.get("content-type", "")
            if not content_type.startswith("application/x-www-form-urlencoded"):
                raise TokenRequestError(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'grant_type'.",
                )
            raw_form = await request.form()
            form = {key: str(value) for key, value in raw_form.items()}
            body = _grant(config, runtime, request, form, tenant.lower())
            if form.get("resource"):
                body["resource"] = form["resource"]
        except TokenRequestError as failure:
            return _aad_error(runtime, request, failure)
        return JSONResponse(
            body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        )

    async def openid_configuration(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if not _tenant_known(config, tenant):
            return _aad_error(runtime, request, _tenant_not_found(tenant))
        return JSONResponse(openid_document(_base_url(request), config, tenant))

    async def instance_discovery(request: Request) -> Response:
        base = _base_url(request)
        endpoint = request.query_params.get("authorization_endpoint", "")
        path = urlsplit(endpoint).path.strip("/").split("/")
        tenant = path[0] if path and path[0] else config.tenant
        netloc = request.url.netloc
        return JSONResponse(
            {
                "tenant_discovery_endpoint": (
                    f"{base}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": netloc, "preferred_cache": netloc, "aliases": [netloc]}
                ],
            }
        )

    async def user_realm(request: Request) -> Response:
        username = request.path_params["username"]
        domain = username.rpartition("@")[2]
        known = config.user_by_upn(username) is not None or any(
            (user.upn or "").lower().endswith("@" + domain.lower()) for user in config.users
        )
        return JSONResponse(
            {
                "ver": "1.0",
                "account_type": "Managed" if known else "Unknown",
                "domain_name": domain,
                "cloud_instance_name": "microsoftonline.com",
                "cloud_audience_urn": "urn:federation:MicrosoftOnline",
            }
        )

    async def adfs_configuration(request: Request) -> Response:
        return JSONResponse(openid_document(_base_url(request), config, ADFS))

    async def keys(request: Request) -> Response:
        # Tokens are HMAC-signed: there is no public key to publish.
        return JSONResponse({"keys": []})

    return [
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        # Entra v1 and AD FS token endpoints (``resource=`` instead of ``scope=``).
        Route("/{tenant}/oauth2/token", token, methods=["POST"]),
        Route("/adfs/.well-known/openid-configuration", adfs_configuration),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
        Route("/{tenant}/discovery/v2.0/keys", keys),
        Route("/common/discovery/instance", instance_discovery),
        Route("/common/userrealm/{username}", user_realm),
    ]


def openid_document(base: str, config: EmulatorConfig, tenant: str) -> dict[str, Any]:
    """The OpenID Connect discovery document for ``tenant`` served from ``base``."""
    issuer_tenant = "{tenantid}" if tenant.lower() == ORGANIZATIONS else config.tenant
    prefix = f"{base}/{tenant}"
    if tenant.lower() == ADFS:
        return {
            "issuer": f"{base}/adfs",
            "token_endpoint": f"{base}/adfs/oauth2/token",
            "authorization_endpoint": f"{base}/adfs/oauth2/authorize",
            "jwks_uri": f"{base}/adfs/discovery/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials", "password", "refresh_token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "id_token_signing_alg_values_supported": ["HS256"],
        }
    return {
        "token_endpoint": f"{prefix}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": f"{prefix}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{prefix}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{prefix}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "grant_types_supported": ["client_credentials", "password", "refresh_token"],
    }
