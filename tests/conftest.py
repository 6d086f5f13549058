"""Shared fixtures for every test package.

Database fixtures (stable names; other test packages rely on them):

``database_url``
    A freshly **migrated** database URL, parametrised over SQLite (a file in ``tmp_path``;
    test id ``sqlite``) and PostgreSQL (test id ``postgres``). The PostgreSQL parameter is
    skipped only when ``CRMSYNC_TEST_POSTGRES_URL`` is unset; when it is set but unreachable the
    test fails. Each PostgreSQL test gets its own database, ``crmsync_t_<random>``, created
    from that URL and dropped afterwards, so tests run in parallel under xdist.

``unmigrated_database_url``
    The same parametrisation, but the database is empty (no schema), for migration tests.

``migrated_engine``
    An :class:`sqlalchemy.Engine` on ``database_url`` (opened with
    :func:`crmsync.store.db.open_database`), disposed after the test.

``sqlite_database_url``
    A migrated SQLite database only, for tests that need no PostgreSQL variant.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from crmsync.store.db import open_database, upgrade_database

POSTGRES_ENV = "CRMSYNC_TEST_POSTGRES_URL"


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    return url


@pytest.fixture
def _postgres_database() -> Iterator[str]:
    base = make_url(_postgres_base_url()).set(drivername="postgresql+psycopg")
    name = f"crmsync_t_{secrets.token_hex(6)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _empty_database(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'crmsync-test.db'}"
    url: str = request.getfixturevalue("_postgres_database")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on SQLite or PostgreSQL (see the module docstring)."""
    return _empty_database(str(request.param), tmp_path, request)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database on SQLite or PostgreSQL (see the module docstring)."""
    url = _empty_database(str(request.param), tmp_path, request)
    upgrade_database(url)
    return url


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    """A migrated SQLite database in ``tmp_path``."""
    url = f"sqlite:///{tmp_path / 'crmsync-test.db'}"
    upgrade_database(url)
    return url


@pytest.fixture
def migrated_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the migrated ``database_url``, disposed afterwards."""
    engine = open_database(database_url)
    yield engine
    engine.dispose()
