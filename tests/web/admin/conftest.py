"""Fixtures of the admin UI and API tests (helpers are in ``admin_harness``).

``admin_app`` runs on SQLite and on PostgreSQL; ``admin_sqlite`` on SQLite only, for rules
that do not depend on the database. ``synced_admin`` adds an emulated Dynamics org of six
leads synced once, whose business phone must be digits (the sync engine's own harness,
``tests/sync/sync_harness.py``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sync"))

from admin_harness import AdminApp, SyncedAdmin, build_admin_app
from sync_harness import engine_client, running_org

from crmsync.emulator.config import PluginRule, default_config
from crmsync.store.db import open_database
from crmsync.sync.cycle import SyncCycle

# Dynamics refuses a lead whose business phone has letters: a record that fails to sync.
PHONE_RULE = PluginRule(
    "lead", "telephone1", "regex", r"[0-9 +()-]*", "Business phone: digits only."
)


@pytest.fixture
def admin_app(migrated_engine: Engine) -> Iterator[AdminApp]:
    """The web app on SQLite and PostgreSQL, with an admin and a viewer."""
    yield from build_admin_app(migrated_engine)


@pytest.fixture
def admin_sqlite(sqlite_database_url: str) -> Iterator[AdminApp]:
    """The web app on SQLite only, with an admin and a viewer."""
    engine = open_database(sqlite_database_url)
    try:
        yield from build_admin_app(engine)
    finally:
        engine.dispose()


@pytest.fixture
def synced_admin(migrated_engine: Engine) -> Iterator[SyncedAdmin]:
    """An emulated org of six leads synced once, and the web app on the same database."""
    config = dataclasses.replace(default_config(), plugin_rules=(PHONE_RULE,))
    with running_org(config, 6) as org:
        client = engine_client(org.base)
        cycle = SyncCycle(migrated_engine, client)
        assert cycle.run().status == "ok"
        for app in build_admin_app(migrated_engine):
            yield SyncedAdmin(app, org, cycle)
        client.close()
