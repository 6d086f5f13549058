"""A running Dataverse emulator on 127.0.0.1 (real HTTP, port 0) plus a migrated marketing
database, for the sync engine's scenario tests.

Nothing is mocked: the engine signs in as the application user, a salesperson signs in with
the password grant and edits records through the Web API, and marketing-side edits go through
:class:`~crmsync.marketing.persons.PersonService` (the service behind the REST API).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Connection, Engine, func, insert, select

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.dynamics.retry import RetryPolicy
from crmsync.emulator.app import create_emulator_app
from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, EmulatorConfig
from crmsync.emulator.metadata import AttributeDef
from crmsync.emulator.seed import seed_dataset
from crmsync.marketing.persons import PersonService
from crmsync.settings import DynamicsSettings, Secret
from crmsync.store.tables import (
    activities,
    crm_links,
    field_selection,
    persons,
    sync_error_counts,
    sync_errors,
    sync_outbox,
)
from crmsync.sync.mapping import default_selection


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 and a free port; yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def fast_retries() -> RetryPolicy:
    """Backoff that honours Retry-After but keeps tests quick (the client caps nothing)."""
    return RetryPolicy(max_attempts=12, jitter=0.0)


def engine_client(base: str, *, page_size: int = 5000, batch_size: int = 100) -> DynamicsClient:
    """The sync application user's client (what ``crmsync sync`` builds from settings)."""
    settings = DynamicsSettings(
        url=base,
        authority=base,
        auth_mode="adfs",
        client_id=DEFAULT_APP_CLIENT_ID,
        client_secret=Secret(DEFAULT_APP_SECRET),
        page_size=page_size,
        batch_size=batch_size,
        timeout_seconds=20.0,
    )
    return build_client(settings, retry_policy=fast_retries(), sleep=lambda s: time.sleep(0))


@dataclass
class Salesperson:
    """An ordinary Dynamics user editing records through the Web API with their own token."""

    http: httpx.Client
    base: str

    def patch(self, entity_set: str, record_id: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.patch(
            f"{self.base}/api/data/v9.2/{entity_set}({record_id})",
            json=body,
            headers={"If-Match": "*"},
        )

    def get(self, entity_set: str, record_id: str, select_: str) -> dict[str, Any]:
        response = self.http.get(
            f"{self.base}/api/data/v9.2/{entity_set}({record_id})?$select={select_}"
        )
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def first_ids(self, entity_set: str, count: int) -> list[str]:
        key = {
            "leads": "leadid",
            "contacts": "contactid",
            "accounts": "accountid",
            "opportunities": "opportunityid",
        }[entity_set]
        response = self.http.get(
            f"{self.base}/api/data/v9.2/{entity_set}?$select={key}&$top={count}"
        )
        response.raise_for_status()
        return [row[key] for row in response.json()["value"]]


def salesperson(base: str, config: EmulatorConfig, upn: str, password: str) -> Salesperson:
    """Sign in as ``upn`` with the password grant (AD FS-style endpoint) and return a client."""
    token = httpx.post(
        f"{base}/adfs/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": config.public_client_id,
            "username": upn,
            "password": password,
            "resource": f"{base}/",
        },
    )
    token.raise_for_status()
    headers = {
        "Authorization": f"Bearer {token.json()['access_token']}",
        "Accept": "application/json",
        "OData-Version": "4.0",
    }
    return Salesperson(httpx.Client(headers=headers, timeout=20.0), base)


@dataclass
class Org:
    """The emulator app, its base URL and admin key."""

    app: Any
    base: str
    config: EmulatorConfig

    def admin(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = httpx.request(
            method,
            f"{self.base}/_emulator/{path}",
            json=body,
            headers={"X-Emulator-Key": self.config.admin_key.reveal()},
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json() if response.content else {}
        return result

    def row(self, entity: str, record_id: str) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self.app.state.storage.get(entity, record_id)
        return row

    def alex(self) -> Salesperson:
        return salesperson(self.base, self.config, "alex.morgan@contoso.example", "alex-password-1")


@contextmanager
def running_org(config: EmulatorConfig, leads: int, seed: int = 5) -> Iterator[Org]:
    """An emulator with ``leads`` seeded leads (and proportional related rows) over HTTP."""
    app = create_emulator_app(config)
    if leads:
        seed_dataset(app.state.storage, leads, seed)
    with serve(app) as base:
        yield Org(app, base, config)
    app.state.storage.close()


# ---- marketing-side reads -------------------------------------------------------------------


def person_by_crm_id(engine: Engine, entity: str, crm_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        local_id = conn.execute(
            select(crm_links.c.local_id).where(
                crm_links.c.entity == entity, crm_links.c.crm_id == crm_id
            )
        ).scalar_one()
        row = conn.execute(select(persons).where(persons.c.id == local_id)).one()
    return {column.key: value for column, value in zip(persons.c, row, strict=True)}


def activities_of(engine: Engine, person_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(activities).where(activities.c.person_id == person_id).order_by(activities.c.id)
        ).mappings()
        return [dict(row) for row in rows]


def outbox_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(sync_outbox.c.id)).all())


def open_errors(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_errors).where(sync_errors.c.resolved_at.is_(None)))
        return [dict(row) for row in rows.mappings()]


def open_error_counts_afresh(conn: Connection) -> Counter[tuple[str, str, str]]:
    """Open errors per (entity, direction, code; "" for none), counted from ``sync_errors``."""
    code = func.coalesce(sync_errors.c.error_code, "")
    rows = conn.execute(
        select(sync_errors.c.entity, sync_errors.c.direction, code, func.count())
        .where(sync_errors.c.resolved_at.is_(None))
        .group_by(sync_errors.c.entity, sync_errors.c.direction, code)
    )
    return Counter({(e, d, c): int(n) for e, d, c, n in rows})


def stored_error_counts(conn: Connection) -> Counter[tuple[str, str, str]]:
    """Every row of the counts of open errors (a group left at zero included)."""
    table = sync_error_counts
    rows = conn.execute(
        select(table.c.entity, table.c.direction, table.c.error_code, table.c.open_count)
    )
    return Counter({(e, d, c): int(n) for e, d, c, n in rows})


def edit_person(engine: Engine, person_id: int, **values: object) -> None:
    """A marketing-side edit through the person service (outbox in the same transaction)."""
    outcome = PersonService(engine).sync([{"id": person_id, **values}], lookup_field="id")
    assert outcome[0].status == "updated", outcome


def select_lead_sync_filter(engine: Engine, org: Org) -> DynamicsClient:
    """Create the ``new_synctomkto`` column on the org's leads and store a lead selection of
    the default mapping plus that column (B20); return an engine client for the org."""
    org.app.state.storage.add_attribute(
        "lead", AttributeDef("new_synctomkto", "Boolean", "Sync to Marketing", is_custom=True)
    )
    client = engine_client(org.base)
    store_selection(engine, client, "lead", ["new_synctomkto"])
    return client


def store_selection(
    engine: Engine, client: DynamicsClient, entity: str, extra: list[str]
) -> list[str]:
    """Store a field selection of ``entity`` as an admin would save it: the default mapping's
    columns plus ``extra`` (B9); returns the selected columns in order."""
    columns = [*default_selection(client.entity_schema(entity)), *extra]
    start = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(field_selection),
            [
                {
                    "entity": entity,
                    "attribute": column,
                    "marketing_field": None,
                    "status": "selected",
                    "selected_at": start + timedelta(milliseconds=n),
                    "updated_at": start,
                }
                for n, column in enumerate(columns)
            ],
        )
    return columns
