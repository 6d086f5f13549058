"""Helpers for the data-plane tests: an emulator app with a manual clock and signed-in clients."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from crmsync.emulator.app import create_emulator_app
from crmsync.emulator.auth import issue_access_token
from crmsync.emulator.config import EmulatorConfig, EmulatorUser, default_config
from crmsync.emulator.runtime import EmulatorRuntime, ManualClock
from crmsync.emulator.storage import Storage

ORG = "https://contoso.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2"
JSON_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "Content-Type": "application/json; charset=utf-8",
}


@dataclass
class Emulator:
    """A running emulator app plus what a test needs to drive it."""

    config: EmulatorConfig
    runtime: EmulatorRuntime
    clock: ManualClock
    client: TestClient
    storage: Storage

    def token(self, user: EmulatorUser) -> str:
        """A valid bearer token for ``user``."""
        return issue_access_token(self.config, self.runtime, user, ORG)[0]

    @property
    def app_user(self) -> EmulatorUser:
        """The sync application user (every privilege, reads secured columns)."""
        return self.config.users[0]

    @property
    def salesperson(self) -> EmulatorUser:
        """An ordinary user: no delete, cannot see lead.revenue."""
        return self.config.users[1]

    def headers(self, user: EmulatorUser | None = None, **extra: str) -> dict[str, str]:
        """JSON headers with a bearer token (the application user by default)."""
        headers = dict(JSON_HEADERS)
        headers["Authorization"] = f"Bearer {self.token(user or self.app_user)}"
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        user: EmulatorUser | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request to ``/api/data/v9.2/<path>``."""
        all_headers = self.headers(user)
        all_headers.update(headers or {})
        content = None if body is None else json.dumps(body).encode()
        url = path if path.startswith("http") else f"{API}/{path}"
        return self.client.request(method, url, content=content, headers=all_headers)

    def create(self, set_name: str, body: Mapping[str, object], **kwargs: Any) -> str:
        """POST a row and return its id from OData-EntityId."""
        response = self.request("POST", set_name, dict(body), **kwargs)
        assert response.status_code == 204, response.text
        return str(response.headers["OData-EntityId"]).rsplit("(", 1)[1].rstrip(")")


@contextmanager
def running_emulator(
    config: EmulatorConfig | None = None, db_path: str = ":memory:"
) -> Iterator[Emulator]:
    """An emulator app with a manual clock, served in-process."""
    config = config or default_config()
    clock = ManualClock()
    runtime = EmulatorRuntime(config, clock=clock)
    app = create_emulator_app(config, db_path, runtime=runtime)
    with TestClient(app, base_url=ORG) as client:
        yield Emulator(config, runtime, clock, client, app.state.storage)
    app.state.storage.close()
