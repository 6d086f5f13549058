"""Bearer auth flow and token providers (spec §1; B42)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest
from dynamics_testkit import ORG, error_response, json_response

from crmsync.dynamics.auth import BearerAuth, OAuth2TokenEndpointProvider, TokenGrant, scope_for
from crmsync.dynamics.client import DynamicsClient
from crmsync.errors import AuthenticationError, ConfigurationError, TransientServerError
from crmsync.settings import Secret


class CountingProvider:
    """A token source for the tests: token-1, token-2, ... each valid ``lifetime`` seconds."""

    def __init__(self, lifetime: float = 3599) -> None:
        self.lifetime = lifetime
        self.issued: list[tuple[str, bool]] = []

    def acquire(self, *, force_refresh: bool = False) -> TokenGrant:
        token = f"token-{len(self.issued) + 1}"
        self.issued.append((token, force_refresh))
        return TokenGrant(token, self.lifetime)


def _who_am_i(valid: set[str]):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        header = request.headers.get("Authorization", "")
        seen.append(header)
        if header.removeprefix("Bearer ") not in valid:
            return error_response(
                401,
                "0x8005F101",
                "The requested resource requires authentication.",
                {
                    "WWW-Authenticate": "Bearer authorization_uri=https://login.microsoftonline.com/t/oauth2/authorize"
                },
            )
        return json_response(
            200,
            {
                "UserId": "D96E9F55-0000-0000-0000-000000000001",
                "BusinessUnitId": "b",
                "OrganizationId": "o",
            },
        )

    return handler, seen


def test_token_is_cached_and_renewed_before_it_expires() -> None:
    """§1c: refresh before expiry (lifetimes vary), reuse the token until then."""
    now = {"t": 0.0}
    provider = CountingProvider(lifetime=3600)
    handler, seen = _who_am_i({"token-1", "token-2"})
    auth = BearerAuth(provider, clock=lambda: now["t"])
    client = DynamicsClient(httpx.Client(transport=httpx.MockTransport(handler), auth=auth), ORG)

    client.who_am_i()
    now["t"] = 3000.0
    client.who_am_i()
    now["t"] = 3301.0  # within 5 minutes of expiry
    client.who_am_i()

    assert seen == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    assert [token for token, _ in provider.issued] == ["token-1", "token-2"]


def test_401_refreshes_once_and_retries() -> None:
    """§1c: a 401 triggers one refresh and one retry of the same request."""
    provider = CountingProvider()
    handler, seen = _who_am_i({"token-2"})
    client = DynamicsClient(
        httpx.Client(transport=httpx.MockTransport(handler), auth=BearerAuth(provider)), ORG
    )
    identity = client.who_am_i()
    assert identity.user_id == "d96e9f55-0000-0000-0000-000000000001"
    assert seen == ["Bearer token-1", "Bearer token-2"]
    assert provider.issued == [("token-1", False), ("token-2", True)]


def test_second_401_is_an_authentication_error_not_a_loop() -> None:
    """§1c: refresh once only; a fresh token refused too means the credentials are wrong."""
    provider = CountingProvider()
    handler, seen = _who_am_i(set())
    client = DynamicsClient(
        httpx.Client(transport=httpx.MockTransport(handler), auth=BearerAuth(provider)), ORG
    )
    with pytest.raises(AuthenticationError) as caught:
        client.who_am_i()
    assert caught.value.status == 401
    assert caught.value.code == "0x8005F101"
    assert len(seen) == 2


def _token_endpoint(requests: list[dict[str, list[str]]], answer: httpx.Response):
    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(parse_qs(request.content.decode()))
        return answer

    return handler


def test_adfs_client_credentials_grant_posts_the_documented_form() -> None:
    """§1a: grant_type=client_credentials with client id/secret; ADFS takes the org as resource."""
    forms: list[dict[str, list[str]]] = []
    answer = json_response(
        200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0eXAiOiJKV1Qi"}
    )
    http = httpx.Client(transport=httpx.MockTransport(_token_endpoint(forms, answer)))
    provider = OAuth2TokenEndpointProvider(
        http,
        token_url="https://adfs.contoso.com/adfs/oauth2/token",
        client_id="app-id",
        client_secret=Secret("s3cr3t-value"),
        resource=f"{ORG}/",
    )
    grant = provider.acquire()
    assert grant.access_token == "eyJ0eXAiOiJKV1Qi"
    assert grant.expires_in == 3599
    assert forms == [
        {
            "client_id": ["app-id"],
            "grant_type": ["client_credentials"],
            "client_secret": ["s3cr3t-value"],
            "resource": [f"{ORG}/"],
        }
    ]
    assert "s3cr3t-value" not in repr(provider)
    assert "eyJ0eXAiOiJKV1Qi" not in repr(grant)


def test_password_grant_sends_username_and_password() -> None:
    """§1b: grant_type=password with username and password."""
    forms: list[dict[str, list[str]]] = []
    answer = json_response(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "abc"})
    http = httpx.Client(transport=httpx.MockTransport(_token_endpoint(forms, answer)))
    provider = OAuth2TokenEndpointProvider(
        http,
        token_url="https://login.example/token",
        client_id="app",
        username="user@contoso.com",
        password=Secret("pa55"),
        scope=scope_for(ORG),
    )
    provider.acquire()
    assert forms[0]["grant_type"] == ["password"]
    assert forms[0]["username"] == ["user@contoso.com"]
    assert forms[0]["password"] == ["pa55"]
    assert forms[0]["scope"] == [f"{ORG}/.default"]


def test_refused_credentials_raise_without_the_secret() -> None:
    """§1a error 400 invalid_client; the secret appears in neither message nor repr (B42)."""
    answer = json_response(
        400,
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
            "error_codes": [7000215],
        },
    )
    http = httpx.Client(transport=httpx.MockTransport(_token_endpoint([], answer)))
    provider = OAuth2TokenEndpointProvider(
        http,
        token_url="https://login.example/token",
        client_id="app",
        client_secret=Secret("very-secret"),
    )
    with pytest.raises(AuthenticationError) as caught:
        provider.acquire()
    assert caught.value.code == "invalid_client"
    assert "AADSTS7000215" in str(caught.value)
    for text in (
        str(caught.value),
        repr(caught.value),
        json.dumps(vars(caught.value), default=str),
    ):
        assert "very-secret" not in text


def test_unreachable_token_endpoint_is_transient() -> None:
    """B38: a network failure at the identity provider is retried later, not fatal."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = OAuth2TokenEndpointProvider(
        httpx.Client(transport=httpx.MockTransport(refuse)),
        token_url="https://adfs.example/token",
        client_id="a",
    )
    with pytest.raises(TransientServerError):
        provider.acquire()


def test_scope_is_the_org_root_with_default() -> None:
    """§1a: one resource per request, `<environment-url>/.default`."""
    assert (
        scope_for("https://contoso.crm.dynamics.com/")
        == "https://contoso.crm.dynamics.com/.default"
    )
    assert (
        scope_for("https://contoso.crm4.dynamics.com/api/data/v9.2")
        == "https://contoso.crm4.dynamics.com/.default"
    )
    with pytest.raises(ConfigurationError):
        scope_for("contoso")


def test_identity_provider_outage_is_retried_then_the_call_succeeds() -> None:
    """B38: a transient failure getting a token is retried like any other transient failure."""
    from dynamics_testkit import Sleeps

    from crmsync.dynamics.retry import RetryPolicy

    outages = {"left": 2}
    api_calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "adfs.contoso.com":
            if outages["left"]:
                outages["left"] -= 1
                raise httpx.ConnectError("connection refused", request=request)
            return json_response(200, {"access_token": "t", "expires_in": 3600})
        api_calls.append(request.headers["Authorization"])
        return json_response(200, {"UserId": "u"})

    transport = httpx.MockTransport(handler)
    provider = OAuth2TokenEndpointProvider(
        httpx.Client(transport=transport),
        token_url="https://adfs.contoso.com/adfs/oauth2/token",
        client_id="a",
    )
    sleeps = Sleeps()
    client = DynamicsClient(
        httpx.Client(transport=transport, auth=BearerAuth(provider)),
        ORG,
        retry_policy=RetryPolicy(jitter=0.0),
        sleep=sleeps,
    )
    assert client.who_am_i().user_id == "u"
    assert api_calls == ["Bearer t"]
    assert sleeps.calls == [1.0, 2.0]
    assert client.stats().retries == 2
