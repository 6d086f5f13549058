"""Authentication: an ``httpx.Auth`` flow adding a bearer token, and the token providers.

Spec §1: the app user (client credentials) and ROPC through MSAL for Entra ID, and a plain
OAuth2 token-endpoint provider for on-premises ADFS. Tokens are cached and refreshed before they
expire (lifetimes vary between 60 and 90 minutes, so ``expires_in`` is always honoured); a 401
from Dataverse triggers one refresh and one retry of the request. Secrets are revealed only in
the token request itself and never appear in exceptions, logs or reprs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from crmsync.errors import AuthenticationError, ConfigurationError, TransientServerError
from crmsync.settings import Secret

MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.windows.net",
        "login.microsoft.com",
        "sts.windows.net",
    }
)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """An access token and how many seconds it stays valid, as the identity provider said."""

    access_token: str = field(repr=False)
    expires_in: float

    def __repr__(self) -> str:
        return f"TokenGrant(access_token='********', expires_in={self.expires_in!r})"


class TokenProvider(Protocol):
    """Something that obtains a fresh access token for the Dataverse org."""

    def acquire(self, *, force_refresh: bool = False) -> TokenGrant:
        """Return a token; ``force_refresh`` bypasses any cache the provider keeps."""
        ...


def scope_for(org_url: str) -> str:
    """The client-credentials scope for an org: ``<environment-url>/.default`` (spec §1a)."""
    parts = urlsplit(org_url.strip())
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError("dynamics.url must be an absolute https URL of the org")
    return f"{parts.scheme}://{parts.netloc}/.default"


def _grant_from(result: Mapping[str, Any] | None, what: str) -> TokenGrant:
    if not result or "access_token" not in result:
        result = result or {}
        error = str(result.get("error") or "no_token")
        description = str(result.get("error_description") or "").split("\n")[0][:300]
        raise AuthenticationError(
            f"{what} was refused by the identity provider: {error} {description}".strip(),
            code=error,
        )
    try:
        expires_in = float(result.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in = 3600.0
    return TokenGrant(str(result["access_token"]), expires_in)


def _msal_session(ca_bundle: str, timeout: float) -> Any:
    """A ``requests`` session trusting ``ca_bundle`` for MSAL.

    ``requests`` lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's ``verify``
    when the environment is trusted, so the session ignores the environment for certificates
    and takes its proxies explicitly instead.
    """
    import urllib.request

    import requests

    class _Session(requests.Session):
        def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, *args, **kwargs)

    session = _Session()
    session.trust_env = False
    session.verify = ca_bundle
    session.proxies.update(urllib.request.getproxies())
    return session


def _msal_options(authority: str, ca_bundle: str, timeout: float) -> dict[str, Any]:
    host = (urlsplit(authority).hostname or "").lower()
    options: dict[str, Any] = {"authority": authority, "timeout": timeout}
    if ca_bundle:
        options["http_client"] = _msal_session(ca_bundle, timeout)
    if host not in MICROSOFT_AUTHORITY_HOSTS:
        # A private authority (on-premises or a test identity provider): skip the call to
        # Microsoft's instance-discovery service; MSAL still reads the authority's OpenID
        # configuration from the authority itself.
        options["instance_discovery"] = False
    return options


def _close_msal(app: Any) -> None:
    session = getattr(app, "http_client", None) if app is not None else None
    close = getattr(session, "close", None)
    if callable(close):
        close()


def _build_msal_app(
    factory: Any, client_id: str, authority: str, ca_bundle: str, timeout: float, **extra: Any
) -> Any:
    """Create an MSAL application, mapping its set-up failures onto the exception tree."""
    try:
        return factory(client_id, **extra, **_msal_options(authority, ca_bundle, timeout))
    except ValueError as exc:
        raise AuthenticationError(
            f"identity provider at {authority} could not be used: {exc}"
        ) from None
    except OSError as exc:
        raise TransientServerError(
            f"identity provider at {authority} unreachable: {type(exc).__name__}"
        ) from None


class MsalClientCredentialsProvider:
    """Client credentials (app user, spec §1a) via ``msal.ConfidentialClientApplication``."""

    def __init__(
        self,
        *,
        authority: str,
        client_id: str,
        client_secret: Secret,
        scope: str,
        ca_bundle: str = "",
        timeout: float = 30.0,
    ) -> None:
        self._authority = authority
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._ca_bundle = ca_bundle
        self._timeout = timeout
        self._app: Any = None

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(authority={self._authority!r}, client_id={self._client_id!r})"

    def _application(self) -> Any:
        if self._app is None:
            import msal

            self._app = _build_msal_app(
                msal.ConfidentialClientApplication,
                self._client_id,
                self._authority,
                self._ca_bundle,
                self._timeout,
                client_credential=self._client_secret.reveal(),
            )
        return self._app

    def close(self) -> None:
        """Release MSAL's HTTP connections."""
        _close_msal(self._app)

    def acquire(self, *, force_refresh: bool = False) -> TokenGrant:
        """Return a token, from MSAL's cache unless ``force_refresh``."""
        app = self._application()
        if force_refresh:
            cache = app.token_cache
            for item in list(cache.search("AccessToken")):
                cache.remove_at(item)
        try:
            result = app.acquire_token_for_client(scopes=[self._scope])
        except OSError as exc:
            raise TransientServerError(
                f"identity provider unreachable: {type(exc).__name__}"
            ) from None
        return _grant_from(result, "the client credentials")


class MsalUsernamePasswordProvider:
    """Username/password (ROPC, spec §1b) through ``msal.PublicClientApplication``."""

    def __init__(
        self,
        *,
        authority: str,
        client_id: str,
        username: str,
        password: Secret,
        scope: str,
        ca_bundle: str = "",
        timeout: float = 30.0,
    ) -> None:
        self._authority = authority
        self._client_id = client_id
        self._username = username
        self._password = password
        self._scope = scope
        self._ca_bundle = ca_bundle
        self._timeout = timeout
        self._app: Any = None

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(authority={self._authority!r}, username={self._username!r})"

    def close(self) -> None:
        """Release MSAL's HTTP connections."""
        _close_msal(self._app)

    def acquire(self, *, force_refresh: bool = False) -> TokenGrant:
        """Return a token by sending the username and password (each call asks afresh)."""
        if self._app is None:
            import msal

            self._app = _build_msal_app(
                msal.PublicClientApplication,
                self._client_id,
                self._authority,
                self._ca_bundle,
                self._timeout,
            )
        try:
            result = self._app.acquire_token_by_username_password(
                self._username, self._password.reveal(), scopes=[self._scope]
            )
        except OSError as exc:
            raise TransientServerError(
                f"identity provider unreachable: {type(exc).__name__}"
            ) from None
        return _grant_from(result, f"the password of {self._username}")


class OAuth2TokenEndpointProvider:
    """A plain OAuth2 token endpoint (on-premises ADFS, or any v2 endpoint) over httpx.

    Sends the client-credentials grant, or the password grant when a username is given. ADFS
    takes the org URL as ``resource``; Entra ID v2 endpoints take ``scope`` instead.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        token_url: str,
        client_id: str,
        client_secret: Secret = Secret(""),
        username: str = "",
        password: Secret = Secret(""),
        resource: str = "",
        scope: str = "",
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        self._resource = resource
        self._scope = scope

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(token_url={self._token_url!r}, client_id={self._client_id!r})"

    def close(self) -> None:
        """Close the HTTP client used for token requests."""
        self._http.close()

    def acquire(self, *, force_refresh: bool = False) -> TokenGrant:
        """POST the grant to the token endpoint (no cache: the auth flow caches)."""
        form: dict[str, str] = {"client_id": self._client_id}
        if self._username:
            form.update(
                grant_type="password",
                username=self._username,
                password=self._password.reveal(),
            )
        else:
            form["grant_type"] = "client_credentials"
        if self._client_secret:
            form["client_secret"] = self._client_secret.reveal()
        if self._resource:
            form["resource"] = self._resource
        if self._scope:
            form["scope"] = self._scope
        try:
            response = self._http.post(
                self._token_url, data=form, headers={"Accept": "application/json"}
            )
        except httpx.TransportError as exc:
            raise TransientServerError(
                f"token endpoint {self._token_url} unreachable: {type(exc).__name__}"
            ) from None
        if response.status_code >= 500:
            raise TransientServerError(
                f"token endpoint answered HTTP {response.status_code}",
                status=response.status_code,
            )
        try:
            document = response.json()
        except ValueError:
            document = {"error": f"http_{response.status_code}"}
        if response.status_code != 200 or not isinstance(document, dict):
            document = document if isinstance(document, dict) else {}
            document.setdefault("error", f"http_{response.status_code}")
            document.pop("access_token", None)
        return _grant_from(document, "the token request")


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer``; refreshes before expiry and once on a 401.

    ``refresh_margin`` is the most seconds before expiry at which a token is renewed; short
    lifetimes renew at a tenth of their lifetime instead.
    """

    requires_response_body = False

    def __init__(
        self,
        provider: TokenProvider,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin: float = 300.0,
    ) -> None:
        self._provider = provider
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"BearerAuth(provider={self._provider!r})"

    def _store(self, grant: TokenGrant) -> str:
        lifetime = max(grant.expires_in, 0.0)
        margin = min(self._refresh_margin, lifetime / 10.0)
        self._token = grant.access_token
        self._refresh_at = self._clock() + lifetime - margin
        self.refreshes += 1
        return grant.access_token

    def close(self) -> None:
        """Close the token provider's connections, if it keeps any."""
        close = getattr(self._provider, "close", None)
        if callable(close):
            close()

    def current_token(self) -> str:
        """A valid token, renewed when it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                return self._store(self._provider.acquire(force_refresh=self._token is not None))
            return self._token

    def refresh_after_rejection(self, rejected: str) -> str:
        """Renew after Dataverse refused ``rejected``, unless another thread already did."""
        with self._lock:
            if self._token is not None and self._token != rejected:
                return self._token
            return self._store(self._provider.acquire(force_refresh=True))

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with the current token; on a 401, renew once and send again (spec §1c)."""
        token = self.current_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            token = self.refresh_after_rejection(token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
