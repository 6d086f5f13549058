"""Engines from one database URL, and the Alembic migrations that shape the database.

``sqlite:///path`` gets WAL, foreign keys, a busy timeout and ``synchronous=NORMAL``;
``postgresql+psycopg://...`` is used as is. A new SQLite file is created readable and
writable by its owner only (0600), and so are its ``-wal`` and ``-shm`` files.
:func:`open_database` refuses a database whose schema is missing or older than this code
(:class:`DatabaseNotMigratedError`), naming the command that fixes it;
:func:`upgrade_database` runs ``alembic upgrade head`` programmatically.
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from crmsync.errors import ConfigurationError, DatabaseNotMigratedError

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 131_072
"""Each SQLite connection's page cache (SQLite's default is 2 MiB). Filled only as pages are
read, so an idle connection costs nothing; the initial sync, inserting into a persons table
of several indexes, runs about a quarter faster with the indexes' pages kept in memory."""
UPGRADE_COMMAND = "crmsync db upgrade"


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def json_text(value: object) -> str:
    """Serialise a JSON column value (also for SQL that edits JSON in place); orjson is
    several times faster than the standard module on the sync's hot path (baselines,
    activity attributes). Keys that are not strings are
    written as strings, as the standard module does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


PRIVATE_FILE_MODE = 0o600
"""A SQLite database holds personal data and hashed secrets: only its owner may read it."""


def _create_private_sqlite_file(database: str | None) -> None:
    """Create the SQLite file ``database`` empty with mode 0600 if it does not exist yet.

    SQLite gives the ``-wal`` and ``-shm`` files it creates beside a database the database
    file's own permissions, so they are private too. In-memory and URI databases are left
    alone, and so is a missing directory: SQLite then reports it as before.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        descriptor = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except (FileExistsError, FileNotFoundError, NotADirectoryError):
        return
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)  # the umask may have removed bits, never added
    finally:
        os.close(descriptor)


def create_database_engine(url: str) -> Engine:
    """Build an engine for ``url`` with crmsync's connection settings; the schema is not checked."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # the parser's own messages may quote the URL, password included: say what is wrong
        # without it, and chain nothing
        raise ConfigurationError(
            "database URL is not valid: expected sqlite:///path or "
            "postgresql+psycopg://user:password@host:port/database (the port a number)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigurationError(
            f"unsupported database {backend!r}: use sqlite:///path or postgresql+psycopg://..."
        )
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if backend == "sqlite":
            _create_private_sqlite_file(parsed.database)
            engine = create_engine(
                parsed,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                json_serializer=json_text,
                json_deserializer=orjson.loads,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                parsed,
                pool_pre_ping=True,
                json_serializer=json_text,
                json_deserializer=orjson.loads,
            )
    except NoSuchModuleError as exc:
        raise ConfigurationError(f"database driver not available: {exc}") from exc
    return engine


def _alembic_config() -> Config:
    # Alembic is imported only to migrate: opening a migrated database does not need it.
    from alembic.config import Config

    config = Config()
    location = resources.files("crmsync.store") / "migrations"
    config.set_main_option("script_location", str(location))
    return config


_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(None|\"([^\"]+)\")", re.M)


@functools.cache
def head_revision() -> str:
    """The newest migration revision this code expects: the one no other migration follows.

    Read from the migration files' ``revision`` / ``down_revision`` lines (Alembic's own
    reading of them costs a noticeable import on every command)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for script in (resources.files("crmsync.store") / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py") or script.name.startswith("_"):
            continue
        for kind, _value, name in _REVISION.findall(script.read_text(encoding="utf-8")):
            if name:
                (revisions if kind == "revision" else followed).add(name)
    heads = sorted(revisions - followed)
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head in crmsync.store.migrations: {heads}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The migration revision the database is at, or ``None`` when it was never migrated."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return str(found) if found is not None else None
    except OperationalError as exc:
        raise ConfigurationError(f"cannot open database: {exc.orig}") from exc


def check_migrated(engine: Engine) -> None:
    """Raise :class:`DatabaseNotMigratedError` unless the schema is at the head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        state = "has no crmsync schema"
    else:
        state = f"is at schema revision {current}, this version needs {head}"
    raise DatabaseNotMigratedError(
        f"the database {engine.url.render_as_string(hide_password=True)} {state}; "
        f"run `{UPGRADE_COMMAND}` first"
    )


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database file ``url`` names that does not exist (else ``None``);
    opening it would create an empty file."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None  # create_database_engine says what is wrong
    if parsed.get_backend_name() != "sqlite":
        return None
    path = parsed.database or ""
    if not path or path == ":memory:" or path.startswith("file:") or Path(path).exists():
        return None
    return path


def open_database(url: str, *, require_migrated: bool = True) -> Engine:
    """Return an engine for ``url``; by default refuse a database that is not fully migrated,
    and a SQLite file that does not exist (without creating it)."""
    missing = _missing_sqlite_file(url) if require_migrated else None
    if missing is not None:
        raise DatabaseNotMigratedError(
            f"there is no database at {missing}: give a configuration with --config FILE, "
            "./crmsync.toml or CRMSYNC_CONFIG ([database] url = ...), or set "
            f"CRMSYNC_DATABASE_URL; to start a new one there, run `{UPGRADE_COMMAND}` first"
        )
    engine = create_database_engine(url)
    if require_migrated:
        try:
            check_migrated(engine)
        except Exception:
            engine.dispose()
            raise
    return engine


def upgrade_database(url: str) -> None:
    """Migrate the database at ``url`` to the newest schema (Alembic ``upgrade head``)."""
    from alembic import command

    engine = create_database_engine(url)
    try:
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise ConfigurationError(f"cannot open database: {exc.orig}") from exc
    finally:
        engine.dispose()
