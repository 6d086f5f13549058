"""Run the Dataverse emulator in process for the client tests, through an ASGI-to-sync bridge
(the real-socket tests start ``crmsync emulator`` itself, in ``tests/e2e``).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx


class AsgiBridge(httpx.BaseTransport):
    """A synchronous httpx transport calling an ASGI app on a private event-loop thread."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._transport.handle_async_request(inner)
            content = await response.aread()
            await response.aclose()
            headers = [
                (name, value)
                for name, value in response.headers.raw
                if name.lower() not in (b"content-encoding", b"transfer-encoding")
            ]
            return response.status_code, headers, content

        try:
            status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result(
                60
            )
        except Exception as exc:  # the app hung up mid-response: a dropped connection
            raise httpx.ReadError(f"in-process call failed: {exc}", request=request) from exc
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Clients sharing the bridge close it freely; :meth:`shutdown` really stops it."""

    def shutdown(self) -> None:
        """Stop the event-loop thread."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()


class RecordingProvider:
    """Wraps a token provider and counts the tokens it handed out (for refresh tests)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.issued = 0

    def acquire(self, *, force_refresh: bool = False) -> Any:
        self.issued += 1
        return self.inner.acquire(force_refresh=force_refresh)


class InProcessEmulator:
    """The emulator app seeded with ``leads`` leads, reached through :class:`AsgiBridge`."""

    base = "https://org.crm.example"

    def __init__(self, leads: int = 0, seed: int = 7) -> None:
        from crmsync.emulator.app import create_emulator_app
        from crmsync.emulator.config import default_config
        from crmsync.emulator.seed import seed_dataset

        self.config = default_config()
        self.app = create_emulator_app(self.config)
        if leads:
            seed_dataset(self.app.state.storage, leads, seed)
        self.bridge = AsgiBridge(self.app)
        self.sleeps: list[float] = []

    def admin(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """Call the emulator's admin API (fault knobs, token expiry)."""
        with httpx.Client(transport=self.bridge, base_url=self.base) as http:
            response = http.request(
                method,
                f"/_emulator/{path}",
                json=json,
                headers={"X-Emulator-Key": self.config.admin_key.reveal()},
            )
        response.raise_for_status()
        return response

    def provider(self) -> RecordingProvider:
        from crmsync.dynamics.auth import OAuth2TokenEndpointProvider
        from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET
        from crmsync.settings import Secret

        return RecordingProvider(
            OAuth2TokenEndpointProvider(
                httpx.Client(transport=self.bridge),
                token_url=f"{self.base}/{self.config.tenant}/oauth2/v2.0/token",
                client_id=DEFAULT_APP_CLIENT_ID,
                client_secret=Secret(DEFAULT_APP_SECRET),
                scope=f"{self.base}/.default",
            )
        )

    def client(self, provider: Any = None, **options: Any) -> Any:
        """A :class:`DynamicsClient` authenticated as the application user; pauses recorded."""
        from crmsync.dynamics.auth import BearerAuth
        from crmsync.dynamics.client import DynamicsClient
        from crmsync.dynamics.retry import RetryPolicy

        options.setdefault("retry_policy", RetryPolicy(max_attempts=30, jitter=0.0))
        auth = BearerAuth(provider or self.provider())
        http = httpx.Client(transport=self.bridge, auth=auth)
        return DynamicsClient(http, self.base, sleep=self.sleeps.append, **options)

    def count(self, entity: str) -> int:
        return int(self.app.state.storage.count(entity))

    def close(self) -> None:
        self.bridge.shutdown()
        self.app.state.storage.close()
