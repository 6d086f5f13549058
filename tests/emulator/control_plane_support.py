"""Shared helpers for the emulator control-plane tests: a stand-in data plane and a client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from crmsync.emulator.config import (
    DEFAULT_APP_CLIENT_ID,
    DEFAULT_APP_SECRET,
    EmulatorConfig,
    default_config,
)
from crmsync.emulator.faults import control_routes, wrap_with_control
from crmsync.emulator.runtime import EmulatorRuntime, ManualClock

ORG = "https://org.crm.example"
WHOAMI = "/api/data/v9.2/WhoAmI"
SLOW = "/api/data/v9.2/slow"


def build_app(
    config: EmulatorConfig, runtime: EmulatorRuntime, gate: asyncio.Event | None = None
) -> ASGIApp:
    """Control routes plus a tiny data plane: WhoAmI, and a route that waits on ``gate``."""

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"UserId": request.state.user.systemuserid})

    async def slow(request: Request) -> JSONResponse:
        if gate is not None:
            await gate.wait()
        return JSONResponse({"UserId": request.state.user.systemuserid})

    inner = Starlette(
        routes=[*control_routes(config, runtime), Route(WHOAMI, whoami), Route(SLOW, slow)]
    )
    return wrap_with_control(inner, config, runtime)


class Api:
    """A synchronous facade over an in-process ASGI client, on its own event loop."""

    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORG)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def token(self, config: EmulatorConfig) -> str:
        response = self.post(
            f"/{config.tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_APP_CLIENT_ID,
                "client_secret": DEFAULT_APP_SECRET,
                "scope": f"{ORG}/.default",
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def user_token(self, config: EmulatorConfig, upn: str, password: str) -> str:
        response = self.post(
            f"/{config.tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "password",
                "client_id": config.public_client_id,
                "username": upn,
                "password": password,
                "scope": f"{ORG}/.default",
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@contextmanager
def emulator(
    config: EmulatorConfig | None = None,
    clock: ManualClock | None = None,
    gate: asyncio.Event | None = None,
) -> Iterator[tuple[Api, EmulatorConfig, EmulatorRuntime]]:
    """An in-process control plane with the stand-in data plane, closed afterwards."""
    config = config or default_config()
    runtime = EmulatorRuntime(config, clock=clock)
    loop = asyncio.new_event_loop()
    api = Api(build_app(config, runtime, gate), loop)
    try:
        yield api, config, runtime
    finally:
        loop.run_until_complete(api.http.aclose())
        loop.close()


@contextmanager
def full_emulator(
    config: EmulatorConfig | None = None,
) -> Iterator[tuple[Api, EmulatorConfig, EmulatorRuntime]]:
    """The whole emulator (data plane included) in process, in memory."""
    from crmsync.emulator.app import create_emulator_app

    config = config or default_config()
    runtime = EmulatorRuntime(config)
    app = create_emulator_app(config, runtime=runtime)
    loop = asyncio.new_event_loop()
    api = Api(app, loop)
    try:
        yield api, config, runtime
    finally:
        loop.run_until_complete(api.http.aclose())
        loop.close()
        app.state.storage.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
