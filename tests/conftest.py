"""Shared fixtures for every test package.

Database fixtures (stable names; other test packages rely on them):

``database_url``
    A freshly **migrated** database URL, parametrised over SQLite (a file in ``tmp_path``;
    test id ``sqlite``) and PostgreSQL (test id ``postgres``). The PostgreSQL parameter is
    skipped only when ``CRMSYNC_TEST_POSTGRES_URL`` is unset; when it is set but unreachable the
    test fails. Each PostgreSQL test gets its own schema, ``crmsync_t_<random>``, in the
    database of that URL (the returned URL sets ``search_path`` to it through libpq
    ``options``), dropped afterwards, so tests run in parallel under xdist. (A schema costs a
    fraction of a ``CREATE DATABASE``.) SQLite tests get a copy of a migrated template file.

``unmigrated_database_url``
    The same parametrisation, but the database is empty (no schema), for migration tests.

``migrated_engine``
    An :class:`sqlalchemy.Engine` on ``database_url`` (opened with
    :func:`crmsync.store.db.open_database`), disposed after the test.

``sqlite_database_url``
    A migrated SQLite database only, for tests that need no PostgreSQL variant.

``smtp_server``
    A real SMTP server on 127.0.0.1 (aiosmtpd) and what it received: ``(inbox, port)``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import URL, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from crmsync.store.db import open_database, upgrade_database
from mail_support import Inbox, free_port

POSTGRES_ENV = "CRMSYNC_TEST_POSTGRES_URL"


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    return url


def _postgres_admin() -> tuple[URL, Engine]:
    base = make_url(_postgres_base_url()).set(drivername="postgresql+psycopg")
    return base, create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _new_postgres_schema(migrated: bool) -> Iterator[str]:
    base, admin = _postgres_admin()
    name = f"crmsync_t_{secrets.token_hex(6)}"
    url = base.update_query_dict({"options": f"-csearch_path={name}"})
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        rendered = url.render_as_string(hide_password=False)
        if migrated:
            upgrade_database(rendered)
        yield rendered
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test process, copied for each test."""
    path = tmp_path_factory.mktemp("crmsync-template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    with engine.connect() as conn:  # fold the WAL into the main file so one file is the copy
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _database(kind: str, tmp_path: Path, request: pytest.FixtureRequest, migrated: bool) -> str:
    if kind == "sqlite":
        path = tmp_path / "crmsync-test.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    schemas = _new_postgres_schema(migrated)
    url = next(schemas)
    request.addfinalizer(lambda: next(schemas, None))
    return url


_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_BACKENDS)
def unmigrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on SQLite or PostgreSQL (see the module docstring)."""
    return _database(str(request.param), tmp_path, request, migrated=False)


@pytest.fixture(params=_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database on SQLite or PostgreSQL (see the module docstring)."""
    return _database(str(request.param), tmp_path, request, migrated=True)


@pytest.fixture
def sqlite_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated SQLite database in ``tmp_path``."""
    return _database("sqlite", tmp_path, request, migrated=True)


@pytest.fixture
def migrated_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the migrated ``database_url``, disposed afterwards."""
    engine = open_database(database_url)
    yield engine
    engine.dispose()


# ---- mail ------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()
