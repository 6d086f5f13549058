"""`build_client(settings.dynamics)` (B42; spec §1)."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest
from dynamics_testkit import json_response

from crmsync.dynamics.factory import build_client
from crmsync.errors import ConfigurationError
from crmsync.settings import DynamicsSettings, Secret, load_settings

ORG = "https://contoso.crm.dynamics.com"


def test_adfs_mode_authenticates_and_calls_the_org() -> None:
    """On-premises: the token comes from the ADFS endpoint; the API sees the bearer token."""
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "adfs.contoso.com":
            form = parse_qs(request.content.decode())
            assert request.url.path == "/adfs/oauth2/token"
            assert form["resource"] == [f"{ORG}/"]
            assert form["client_secret"] == ["adfs-secret"]
            return json_response(
                200, {"access_token": "adfs-token", "expires_in": 3600, "token_type": "Bearer"}
            )
        seen.append((request.url.path, request.headers["Authorization"]))
        return json_response(200, {"UserId": "u", "BusinessUnitId": "b", "OrganizationId": "o"})

    settings = DynamicsSettings(
        url=ORG,
        auth_mode="adfs",
        authority="https://adfs.contoso.com",
        client_id="app",
        client_secret=Secret("adfs-secret"),
        page_size=250,
        batch_size=100,
    )
    client = build_client(settings, transport=httpx.MockTransport(handler))
    assert client.who_am_i().user_id == "u"
    assert seen == [("/api/data/v9.2/WhoAmI", "Bearer adfs-token")]
    assert (client.page_size, client.batch_size) == (250, 100)
    assert "adfs-secret" not in repr(client) + repr(client.http.auth)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "dynamics.url"),
        ({"url": ORG}, "dynamics.tenant"),
        ({"url": ORG, "tenant": "t", "client_id": "a"}, "dynamics.client_secret"),
        (
            {"url": ORG, "tenant": "t", "auth_mode": "password", "client_id": "a"},
            "dynamics.username",
        ),
        ({"url": ORG, "auth_mode": "kerberos"}, "auth_mode"),
        ({"url": ORG, "auth_mode": "adfs", "client_id": "a"}, "client_secret"),
    ],
)
def test_missing_settings_are_clear_configuration_errors(
    overrides: dict[str, str], message: str
) -> None:
    """Bad configuration gets a clear error naming the setting."""
    settings = load_settings(environ={}, overrides={"dynamics": overrides})
    with pytest.raises(ConfigurationError, match=message):
        build_client(settings.dynamics)


def test_page_and_batch_sizes_are_validated() -> None:
    """§3 page ≤ 5,000; §6 batch ≤ 1,000."""
    settings = DynamicsSettings(
        url=ORG, auth_mode="adfs", client_id="a", client_secret=Secret("s"), batch_size=5000
    )
    with pytest.raises(ConfigurationError, match="batch size"):
        build_client(settings, transport=httpx.MockTransport(lambda r: json_response(200, {})))


def test_secrets_appear_in_no_log_line_repr_or_error(caplog: pytest.LogCaptureFixture) -> None:
    """B42: neither the client secret nor the bearer token shows up in logs, reprs or errors."""
    from crmsync.dynamics.retry import RetryPolicy
    from crmsync.errors import AuthenticationError

    calls = {"api": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "adfs.contoso.com":
            return json_response(200, {"access_token": "bearer-token-value", "expires_in": 3600})
        calls["api"] += 1
        if calls["api"] == 1:
            return json_response(
                429, {"error": {"code": "0x80072322", "message": "slow down"}}, {"Retry-After": "0"}
            )
        return json_response(
            401,
            {"error": {"code": "0x8004A100", "message": "The authentication ticket is invalid."}},
        )

    settings = DynamicsSettings(
        url=ORG,
        auth_mode="adfs",
        authority="https://adfs.contoso.com",
        client_id="app",
        client_secret=Secret("top-secret-value"),
    )
    client = build_client(
        settings,
        transport=httpx.MockTransport(handler),
        retry_policy=RetryPolicy(jitter=0.0),
        sleep=lambda s: None,
    )
    with caplog.at_level("DEBUG"), pytest.raises(AuthenticationError) as caught:
        client.who_am_i()
    everything = (
        caplog.text
        + str(caught.value)
        + repr(caught.value)
        + repr(client)
        + repr(client.http.auth)
        + repr(settings)
    )
    assert "slow down" in caplog.text  # the retry was logged
    assert "top-secret-value" not in everything
    assert "bearer-token-value" not in everything
