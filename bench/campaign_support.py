"""Shared set-up of the campaign benchmarks: a fresh SQLite database, the emulator in its
own process, the sync's Dynamics client, one initial cycle, and sync enabled."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from bench.sync_limits import emulator
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.store.db import open_database, upgrade_database
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.runner import set_enabled


@dataclass
class Setup:
    """What a campaign benchmark works with."""

    url: str
    engine: Engine
    client: DynamicsClient
    org: dict[str, Any]
    work: Path


@contextmanager
def campaign_setup(seed_leads: int = 20, batch_size: int = 500) -> Iterator[Setup]:
    """Everything started and synced once; all stopped on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'bench.db'}"
        upgrade_database(url)
        engine = open_database(url)
        try:
            with emulator(work, seed_leads) as org:
                settings = replace(org.settings(), batch_size=batch_size)
                with build_client(settings) as client:
                    SyncCycle(engine, client).run()
                    set_enabled(engine, True)
                    yield Setup(url, engine, client, org.org, work)
        finally:
            engine.dispose()
