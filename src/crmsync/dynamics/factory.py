"""``build_client(settings.dynamics)``: a ready :class:`DynamicsClient` from configuration.

Auth modes (B42, spec §1): ``client_credentials`` (application user, MSAL confidential client),
``password`` (ROPC, MSAL public client) and ``adfs`` (a plain OAuth2 token endpoint, on-premises).
Secrets stay in :class:`~crmsync.settings.Secret` until the token request sends them.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from crmsync.dynamics.auth import (
    BearerAuth,
    MsalClientCredentialsProvider,
    MsalUsernamePasswordProvider,
    OAuth2TokenEndpointProvider,
    TokenProvider,
    scope_for,
)
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.retry import RetryPolicy
from crmsync.errors import ConfigurationError
from crmsync.settings import DynamicsSettings

AUTH_MODES = ("client_credentials", "password", "adfs")


def _require(settings: DynamicsSettings, *names: str) -> None:
    missing = [name for name in names if not getattr(settings, name)]
    if missing:
        joined = ", ".join(f"dynamics.{name}" for name in missing)
        raise ConfigurationError(f"auth mode {settings.auth_mode!r} needs {joined}")


def authority_url(settings: DynamicsSettings) -> str:
    """``<authority>/<tenant>`` (tenant-specific: ROPC refuses ``/common``, spec §1b)."""
    base = settings.authority.rstrip("/")
    return f"{base}/{settings.tenant}" if settings.tenant else base


def adfs_token_url(settings: DynamicsSettings) -> str:
    """The ADFS token endpoint: the authority itself if it ends in ``/token``."""
    base = settings.authority.rstrip("/")
    return base if base.endswith("/token") else f"{base}/adfs/oauth2/token"


def tls_verification(settings: DynamicsSettings) -> ssl.SSLContext | bool:
    """Certificate verification for httpx: the extra CA bundle when configured."""
    if not settings.ca_bundle:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"dynamics.ca_bundle {settings.ca_bundle} cannot be read: {exc}"
        ) from None


def token_provider(
    settings: DynamicsSettings, transport: httpx.BaseTransport | None = None
) -> TokenProvider:
    """The token provider for ``settings.auth_mode``."""
    if not settings.url:
        raise ConfigurationError("dynamics.url (the org URL) is not set")
    scope = scope_for(settings.url)
    if settings.auth_mode == "client_credentials":
        _require(settings, "tenant", "client_id", "client_secret")
        return MsalClientCredentialsProvider(
            authority=authority_url(settings),
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            scope=scope,
            ca_bundle=settings.ca_bundle,
            timeout=settings.timeout_seconds,
        )
    if settings.auth_mode == "password":
        _require(settings, "tenant", "client_id", "username", "password")
        return MsalUsernamePasswordProvider(
            authority=authority_url(settings),
            client_id=settings.client_id,
            username=settings.username,
            password=settings.password,
            scope=scope,
            ca_bundle=settings.ca_bundle,
            timeout=settings.timeout_seconds,
        )
    if settings.auth_mode == "adfs":
        _require(settings, "client_id")
        if not settings.client_secret and not settings.username:
            raise ConfigurationError("auth mode 'adfs' needs dynamics.client_secret or a username")
        parts = urlsplit(settings.url)
        token_http = httpx.Client(
            verify=tls_verification(settings),
            timeout=settings.timeout_seconds,
            transport=transport,
        )
        return OAuth2TokenEndpointProvider(
            token_http,
            token_url=adfs_token_url(settings),
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            username=settings.username,
            password=settings.password,
            resource=f"{parts.scheme}://{parts.netloc}/",
        )
    raise ConfigurationError(
        f"dynamics.auth_mode must be one of {', '.join(AUTH_MODES)}, not {settings.auth_mode!r}"
    )


def build_client(
    settings: DynamicsSettings,
    *,
    transport: httpx.BaseTransport | None = None,
    provider: TokenProvider | None = None,
    retry_policy: RetryPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DynamicsClient:
    """A :class:`DynamicsClient` for the configured org, authenticated per ``auth_mode``.

    ``transport`` and ``provider`` are seams for tests; production passes neither.
    """
    auth = BearerAuth(provider or token_provider(settings, transport), clock=clock)
    http = httpx.Client(
        auth=auth,
        verify=tls_verification(settings),
        timeout=settings.timeout_seconds,
        transport=transport,
        limits=httpx.Limits(max_connections=max(settings.concurrency * 2, 4)),
    )
    return DynamicsClient(
        http,
        settings.url,
        api_version=settings.api_version,
        page_size=settings.page_size,
        batch_size=settings.batch_size,
        concurrency=settings.concurrency,
        retry_policy=retry_policy,
        clock=clock,
        sleep=sleep,
    )
