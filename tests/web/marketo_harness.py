"""Test harness for the Marketo-compatible API: an app on a migrated database, a client, a token.

The app is driven through httpx (Starlette's ``TestClient`` is an ``httpx.Client`` whose
transport calls the ASGI app in process). Time is a :class:`FakeClock` handed to
``create_app`` so token expiry and rate windows can be tested without sleeping.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

with warnings.catch_warnings():
    # Starlette suggests another HTTP package for its test client; httpx is what we use.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from crmsync.settings import Settings, WebSettings
from crmsync.web.app import create_app
from crmsync.web.clients import ApiClientStore


class FakeClock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class MarketoHarness:
    """An app, an httpx client on it, and a valid API client with its access token."""

    app: FastAPI
    http: TestClient
    engine: Engine
    clock: FakeClock
    client_id: str
    client_secret: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, params: Any = None) -> dict[str, Any]:
        response = self.http.get(path, params=params, headers=self.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def post_json(self, path: str, document: Any, params: Any = None) -> dict[str, Any]:
        response = self.http.post(path, json=document, params=params, headers=self.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def build_harness(engine: Engine, web: WebSettings | None = None) -> Iterator[MarketoHarness]:
    """Yield a harness on ``engine`` (shared by the fixtures below)."""
    clock = FakeClock()
    settings = Settings(web=web or WebSettings())
    app = create_app(settings, engine=engine, clock=clock)
    created = ApiClientStore(engine, clock=clock).create("tests")
    with TestClient(app, raise_server_exceptions=True) as http:
        reply = http.get(
            "/identity/oauth/token",
            params={
                "grant_type": "client_credentials",
                "client_id": created.client_id,
                "client_secret": created.client_secret.reveal(),
            },
        )
        assert reply.status_code == 200, reply.text
        yield MarketoHarness(
            app=app,
            http=http,
            engine=engine,
            clock=clock,
            client_id=created.client_id,
            client_secret=created.client_secret.reveal(),
            token=reply.json()["access_token"],
        )
