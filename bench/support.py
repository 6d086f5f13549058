"""Set-up shared by the bench modules that work on a synced org: a fresh SQLite database, the
emulator in its own process (:func:`bench.sync_limits.emulator`), the sync's Dynamics client,
optionally one initial cycle, a salesperson's Web API client, and the environment of a
``crmsync`` command run beside the bench against the same database and org."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from bench.org_harness import Emulator, emulator
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.store.db import open_database, upgrade_database
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.runner import set_enabled


@dataclass
class Setup:
    """What a benchmark works with."""

    url: str
    engine: Engine
    client: DynamicsClient
    org: dict[str, Any]
    work: Path
    emulator: Emulator


@contextmanager
def synced_org(
    seed_leads: int,
    *,
    batch_size: int | None = None,
    entities: Sequence[str] | None = None,
    initial_cycle: bool = True,
    enable_sync: bool = False,
) -> Iterator[Setup]:
    """An org of ``seed_leads`` leads (and the rest) and a new SQLite database, synced once
    over ``entities`` (all by default) unless ``initial_cycle`` is off; all stopped on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'bench.db'}"
        upgrade_database(url)
        engine = open_database(url)
        try:
            with emulator(work, seed_leads) as org:
                settings = org.settings()
                if batch_size is not None:
                    settings = dataclasses.replace(settings, batch_size=batch_size)
                with build_client(settings) as client:
                    if initial_cycle:
                        kept = {} if entities is None else {"entities": entities}
                        SyncCycle(engine, client, **kept).run()
                    if enable_sync:
                        set_enabled(engine, True)
                    yield Setup(url, engine, client, org.org, work, org)
        finally:
            engine.dispose()


def salesperson(org: dict[str, Any]) -> httpx.Client:
    """A Web API client signed in as the org's first salesperson (edits as a person would)."""
    token = httpx.post(
        f"{org['base_url']}/adfs/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": org["public_client_id"],
            "username": org["users"][0]["upn"],
            "password": org["users"][0]["password"],
            "resource": f"{org['base_url']}/",
        },
    ).json()["access_token"]
    return httpx.Client(headers={"Authorization": f"Bearer {token}"})


def crmsync_environment(url: str, org: dict[str, Any]) -> dict[str, str]:
    """The environment of a ``crmsync`` command on database ``url`` and the emulated ``org``."""
    return {
        **os.environ,
        "NO_COLOR": "1",
        "CRMSYNC_CONFIG": "",
        "CRMSYNC_DATABASE_URL": url,
        "CRMSYNC_DYNAMICS_URL": org["base_url"],
        "CRMSYNC_DYNAMICS_AUTHORITY": org["base_url"],
        "CRMSYNC_DYNAMICS_AUTH_MODE": "adfs",
        "CRMSYNC_DYNAMICS_CLIENT_ID": org["client_id"],
        "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"],
    }
