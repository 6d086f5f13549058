"""SQLite's WAL checkpoints taken out of the commits of a long load (B16's initial read).

In WAL mode SQLite copies the log back into the database file (a *checkpoint*) inside the
commit that takes the log past 1,000 pages. An initial-sync page of thousands of persons
writes more than that, so nearly every page's commit also ran a checkpoint, on the thread
that applies the pages.

:class:`PagedCheckpoints` turns that automatic checkpoint off for the commits of a read
(:meth:`PagedCheckpoints.deferred`, around each page's transaction; the setting is put back
on the connection before it returns to the pool, however the page ends) and runs a
``PASSIVE`` checkpoint on a connection of its own in a background thread after each page
instead, while the next page is applied. A passive checkpoint never waits for a reader or
a writer and never blocks one: the log is copied up to the last commit, and what it could
not copy is copied by the next one. When the read ends, the last checkpoint is waited for,
so the log does not stay large. Nothing changes for durability: every page is still
committed on its own, and a process killed at any point leaves a database SQLite recovers
from its log as always.

Other databases (PostgreSQL), in-memory SQLite databases and short reads (``enabled`` false:
a cycle's changes, a page or two) get a :class:`PagedCheckpoints` that does nothing.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

AUTOCHECKPOINT_PAGES = 1000
"""SQLite's default ``wal_autocheckpoint``, put back after each deferred commit."""


class PagedCheckpoints:
    """``with PagedCheckpoints(engine) as checkpoints:`` … for each page, apply it inside
    ``with checkpoints.deferred(conn):`` then call ``checkpoints.page_done()``."""

    def __init__(self, engine: Engine, *, enabled: bool = True) -> None:
        database = engine.url.database or ""
        self._path: str | None = None
        in_memory = database in ("", ":memory:") or database.startswith("file:")
        if enabled and engine.dialect.name == "sqlite" and not in_memory:
            self._path = database
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        self._connection: sqlite3.Connection | None = None

    @property
    def active(self) -> bool:
        """Whether checkpoints are taken here rather than in the commits."""
        return self._path is not None

    def __enter__(self) -> PagedCheckpoints:
        if self._path is not None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmsync-wal")
        return self

    @contextmanager
    def deferred(self, conn: Connection) -> Iterator[None]:
        """Inside: ``conn``'s commits leave the log to :meth:`page_done`. The connection's
        own setting is restored on the way out, so the pool never hands out one without it."""
        if self._path is None:
            yield
            return
        driver: Any = conn.connection.driver_connection
        driver.execute("PRAGMA wal_autocheckpoint=0")
        try:
            yield
        finally:
            try:
                driver.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            except sqlite3.Error:
                # a connection that cannot take a pragma is broken: the pool discards it
                conn.invalidate()

    def page_done(self) -> None:
        """Start a checkpoint in the background unless the last one is still running."""
        if self._pool is None or (self._pending is not None and not self._pending.done()):
            return
        self._pending = self._pool.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        """One passive checkpoint. One that fails loses nothing (the log keeps every commit
        and the next checkpoint copies it), so it is logged, not raised."""
        try:
            if self._connection is None:
                assert self._path is not None
                self._connection = sqlite3.connect(self._path, check_same_thread=False)
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint after a page not taken: %s", exc)

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is None:
            return
        try:
            # the last page's log too, so the read leaves no long log behind
            if self._pending is not None:
                self._pending.result()
            self._pool.submit(self._checkpoint).result()
        finally:
            self._pool.shutdown(wait=True)
            self._pool = None
            self._pending = None
            if self._connection is not None:
                self._connection.close()
                self._connection = None
