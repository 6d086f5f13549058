"""Fixtures shared by the sync tests (helpers are in ``sync_harness``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sync_harness import Org, engine_client, running_org

from crmsync.dynamics.client import DynamicsClient
from crmsync.emulator.config import default_config
from crmsync.sync.cycle import SyncCycle


@pytest.fixture
def synced(migrated_engine: Engine) -> Iterator[tuple[Org, DynamicsClient, SyncCycle]]:
    """An emulated org of six leads (and their related records), synced once: the org, the
    sync's Dynamics client and its cycle."""
    with running_org(default_config(), 6) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"
        yield org, client, cycle
        client.close()
