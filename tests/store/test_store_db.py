"""The store opens one URL, migrates with Alembic and refuses an unmigrated database."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from crmsync.errors import ConfigurationError, DatabaseNotMigratedError
from crmsync.store.db import current_revision, head_revision, open_database, upgrade_database
from crmsync.store.tables import metadata


def test_unmigrated_database_is_refused_naming_the_upgrade_command(
    unmigrated_database_url: str,
) -> None:
    """Issue 2 §2: every command refuses an unmigrated database, naming `crmsync db upgrade`."""
    with pytest.raises(DatabaseNotMigratedError, match="crmsync db upgrade"):
        open_database(unmigrated_database_url)


def test_upgrade_creates_every_table_and_is_idempotent(unmigrated_database_url: str) -> None:
    """One Alembic upgrade creates the whole schema; running it again changes nothing."""
    upgrade_database(unmigrated_database_url)
    upgrade_database(unmigrated_database_url)
    engine = open_database(unmigrated_database_url)
    try:
        assert current_revision(engine) == head_revision()
        names = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= names
        for required in ("crm_links", "sync_outbox", "api_clients", "api_access_tokens"):
            assert required in names
    finally:
        engine.dispose()


def test_outdated_database_is_refused(database_url: str) -> None:
    """A schema at another revision than this code's head is refused too."""
    engine = open_database(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    engine.dispose()
    with pytest.raises(DatabaseNotMigratedError, match="crmsync db upgrade"):
        open_database(database_url)


def test_open_without_check_returns_an_engine(unmigrated_database_url: str) -> None:
    """``require_migrated=False`` is for the upgrade command itself."""
    engine = open_database(unmigrated_database_url, require_migrated=False)
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_database_url: str) -> None:
    """SQLite runs in WAL mode with foreign keys on, a busy timeout and synchronous=NORMAL."""
    engine = open_database(sqlite_database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["mysql://x/y", "not a url", "oracle+cx://u@h/d"])
def test_unsupported_urls_are_configuration_errors(url: str) -> None:
    """Only SQLite and PostgreSQL are supported; anything else is a clear error."""
    with pytest.raises(ConfigurationError):
        open_database(url)


def test_migrated_engine_fixture_is_usable(migrated_engine: Engine) -> None:
    """The shared fixture yields an engine on a migrated database."""
    with migrated_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM persons")).scalar() == 0


def test_migrations_match_the_table_definitions(database_url: str) -> None:
    """tables.py and the Alembic revisions describe the same schema (no missing migration)."""
    engine = open_database(database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_unreachable_database_is_a_clear_error_without_the_password() -> None:
    """A database that cannot be reached is a ConfigurationError; secrets stay out of it."""
    url = "postgresql+psycopg://crm:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(ConfigurationError) as refused:
        open_database(url)
    assert "cannot open database" in refused.value.message
    assert "s3cret-pw" not in refused.value.message
    assert "s3cret-pw" not in repr(refused.value)
    with pytest.raises(ConfigurationError) as upgrade_refused:
        upgrade_database(url)
    assert "s3cret-pw" not in upgrade_refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://crm:s3cret-pw@db.example:notaport/crm",
        "postgresql+psycopg://crm:s3cret-pw@db.example:54x32/crm",
        "postgresql+psycopg//crm:s3cret-pw@db.example/crm",
    ],
)
def test_malformed_urls_are_configuration_errors_without_the_password(url: str) -> None:
    """A URL that does not parse (a port that is not a number, a missing ``:``) is a
    ConfigurationError, not a raw ValueError; the password is in neither the message, its
    repr, nor the exceptions chained to it."""
    with pytest.raises(ConfigurationError) as refused:
        open_database(url)
    error: BaseException | None = refused.value
    while error is not None:
        assert "s3cret-pw" not in str(error) and "s3cret-pw" not in repr(error)
        shown_context = None if error.__suppress_context__ else error.__context__
        error = error.__cause__ or shown_context
    assert "database URL is not valid" in refused.value.message


def test_new_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    """Marketing data holds personal data: a new database is readable by its owner only."""
    path = tmp_path / "crm.db"
    previous = os.umask(0o022)  # the usual umask, under which files come out 0644
    try:
        upgrade_database(f"sqlite:///{path}")
        engine = open_database(f"sqlite:///{path}")
        try:
            with engine.begin() as connection:  # a write, with the connection kept open
                connection.execute(text("CREATE TABLE probe (id INTEGER)"))
                connection.execute(text("INSERT INTO probe VALUES (1)"))
            with engine.connect() as connection:
                connection.execute(text("SELECT * FROM probe")).all()
                files = [path, tmp_path / "crm.db-wal", tmp_path / "crm.db-shm"]
                modes = {file.name: stat.S_IMODE(file.stat().st_mode) for file in files}
        finally:
            engine.dispose()
    finally:
        os.umask(previous)
    assert modes == {"crm.db": 0o600, "crm.db-wal": 0o600, "crm.db-shm": 0o600}


def test_an_existing_sqlite_database_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    upgrade_database(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
