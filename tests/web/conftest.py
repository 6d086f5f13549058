"""Fixtures for the Marketo-compatible API tests (see ``marketo_harness``).

``marketo_db`` runs a test on SQLite and on PostgreSQL: used where the database matters
(writes, lookups, tokens, the CRM-sync rule). ``marketo`` is SQLite only, for transport rules
that do not depend on the database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from marketo_harness import MarketoHarness, build_harness
from sqlalchemy import Engine

from crmsync.store.db import open_database


@pytest.fixture
def marketo_db(migrated_engine: Engine) -> Iterator[MarketoHarness]:
    """A harness on SQLite and on PostgreSQL."""
    yield from build_harness(migrated_engine)


@pytest.fixture
def marketo(sqlite_database_url: str) -> Iterator[MarketoHarness]:
    """A harness on SQLite only."""
    engine = open_database(sqlite_database_url)
    try:
        yield from build_harness(engine)
    finally:
        engine.dispose()
